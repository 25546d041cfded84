"""`kvtool generate`: a synthetic database for trying kvtool and for benchmarks."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from kvtool.cli.options import MAX_COUNT, DbPath, Quiet


def generate(
    db: DbPath,
    keys: Annotated[
        int, typer.Option("--keys", help="Number of records.", min=0, max=MAX_COUNT, metavar="N")
    ] = 100_000,
    value_size: Annotated[
        str,
        typer.Option(
            "--value-size",
            help="Size of each value, e.g. 100, 1KB, 4KiB (0 allowed; RocksDB's limit: 4 GiB - 1).",
            metavar="SIZE",
        ),
    ] = "100",
    seed: Annotated[
        int, typer.Option("--seed", help="Seed: same seed, same data.", metavar="N")
    ] = 0,
    key_prefix: Annotated[
        str, typer.Option("--key-prefix", help="Text every key starts with.", metavar="TEXT")
    ] = "key:",
    quiet: Quiet = False,
) -> None:
    """Create a synthetic database to try kvtool on or to benchmark.

    Writes --keys records: keys are --key-prefix followed by a 12-digit number
    (key:000000000000, key:000000000001, ...), values are --value-size printable bytes drawn
    from --seed, so the same options always give the same data. DB must not exist yet.

    The database is written with table format_version 5, CRC32c block checksums and an
    OPTIONS file that names only options RocksDB 6.14 knows, so RocksDB 6.14 (the
    python-rocksdb API) and plain RocksDB 7.8 tools (ldb, sst_dump) open it too.

    Examples:

        kvtool generate demo.db

        kvtool generate --keys 2000000 --value-size 1KB --seed 7 bench.db
    """
    from kvtool.errors import UsageError
    from kvtool.formats.units import parse_size
    from kvtool.ops.generate import generate as run

    size = parse_size(value_size, option="--value-size", zero_ok=True)
    if size > 2**32 - 1:
        raise UsageError(f"--value-size: {value_size} is over RocksDB's limit of 4 GiB - 1")
    stats = run(db, keys=keys, value_size=size, seed=seed, key_prefix=key_prefix)
    if not quiet:
        rate = stats.records / stats.elapsed if stats.elapsed > 0 else 0.0
        print(
            f"generated {stats.records} records ({stats.key_bytes} key bytes, "
            f"{stats.value_bytes} value bytes) in {stats.elapsed:.2f}s ({rate:,.0f} records/s)",
            file=sys.stderr,
        )


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
