"""`kvtool property`: one RocksDB property of a database, by name."""

from __future__ import annotations

from typing import Annotated

import typer

from kvtool.cli.options import ColumnFamily, DbPath


def property_(
    db: DbPath,
    name: Annotated[
        str | None,
        typer.Argument(
            help="Property name, e.g. rocksdb.stats, rocksdb.estimate-num-keys, "
            "rocksdb.levelstats, rocksdb.sstables, rocksdb.aggregated-table-properties.",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    cf: ColumnFamily = "default",
    tables: Annotated[
        bool,
        typer.Option(
            "--tables",
            help="Instead of NAME: each live SST file's table properties (the MANIFEST's "
            "current version), one JSON line per file, read from the files.",
        ),
    ] = False,
) -> None:
    """Print a RocksDB property of a database (rocksdb.stats included).

    Opens the database read-only (nothing in its directory is written; a live writer is not
    disturbed) and prints what RocksDB answers for NAME in the column family. A property
    RocksDB does not know exits 1. --tables prints every live SST file's table properties
    (what `du` sums per level) as JSON Lines.

    Examples:

        kvtool property demo.db rocksdb.stats

        kvtool property demo.db rocksdb.estimate-num-keys --cf users

        kvtool property demo.db --tables | jq -c '{file, level, entries, deletions}'
    """
    from kvtool.errors import UsageError
    from kvtool.ops.inspect import read_property, table_properties

    if tables == (name is not None):
        raise UsageError("give a property NAME or --tables (not both)")
    if tables:
        from kvtool.cli.ondisk_out import encoders, write_lines

        key, _ = encoders("auto", "auto")
        write_lines(table_properties(db, key))
        return
    assert name is not None
    typer.echo(read_property(db, name, cf).rstrip("\n"))


def register(app: typer.Typer) -> None:
    app.command("property")(property_)
