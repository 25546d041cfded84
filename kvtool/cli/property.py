"""`kvtool property`: one RocksDB property of a database, by name."""

from __future__ import annotations

from typing import Annotated

import typer

from kvtool.cli.options import ColumnFamily, DbPath


def property_(
    db: DbPath,
    name: Annotated[
        str,
        typer.Argument(
            help="Property name, e.g. rocksdb.stats, rocksdb.estimate-num-keys, "
            "rocksdb.levelstats, rocksdb.sstables, rocksdb.aggregated-table-properties.",
            metavar="NAME",
            show_default=False,
        ),
    ],
    cf: ColumnFamily = "default",
) -> None:
    """Print a RocksDB property of a database (rocksdb.stats included).

    Opens the database read-only (nothing in its directory is written; a live writer is not
    disturbed) and prints what RocksDB answers for NAME in the column family. A property
    RocksDB does not know exits 1. Per-file table properties: kvtool sst DB/*.sst.

    Examples:

        kvtool property demo.db rocksdb.stats

        kvtool property demo.db rocksdb.estimate-num-keys --cf users
    """
    from kvtool.ops.inspect import read_property

    typer.echo(read_property(db, name, cf).rstrip("\n"))


def register(app: typer.Typer) -> None:
    app.command("property")(property_)
