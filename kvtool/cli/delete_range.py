"""`kvtool delete-range`: remove (or count, with --dry-run) every key of [start, end)."""

from __future__ import annotations

from typing import Annotated

import typer

from kvtool.cli.options import ColumnFamily, DbPath, Force, KeyFormatIn, Quiet, WaitLock
from kvtool.cli.report import StatsFileOption, StatsFormat, StatsOption
from kvtool.formats.codecs import InputFormat


def delete_range(
    db: DbPath,
    start: Annotated[
        str,
        typer.Option(
            "--start", help="First key of the range (inclusive).", show_default=False, metavar="KEY"
        ),
    ],
    end: Annotated[
        str,
        typer.Option(
            "--end",
            help="Key the range stops before (exclusive).",
            show_default=False,
            metavar="KEY",
        ),
    ],
    cf: ColumnFamily = "default",
    key_format: KeyFormatIn = InputFormat.UTF8,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Count the keys it would delete; write nothing."),
    ] = False,
    wait_lock: WaitLock = "0s",
    force: Force = False,
    stats: StatsOption = StatsFormat.TEXT,
    stats_file: StatsFileOption = None,
    quiet: Quiet = False,
) -> None:
    """Delete every key from --start (inclusive) to --end (exclusive).

    Both bounds are required, so a mistyped command cannot empty a database. The keys are
    counted first, then removed with one range tombstone (flushed to an SST file); the stats on
    stderr say how many were deleted. --dry-run opens the database read-only, counts what would
    be deleted, and changes nothing. Takes the database's LOCK (exit 75 if another process
    holds it) and writes with the database's own options (see --force).

    Examples:

        kvtool delete-range --dry-run --start user:1000 --end user:2000 app.db

        kvtool delete-range --start user:1000 --end user:2000 app.db

        kvtool delete-range --cf events --key-format hex --start 00 --end 01 db
    """
    from kvtool.cli.report import record_stats
    from kvtool.formats.codecs import decode_text
    from kvtool.formats.units import parse_duration
    from kvtool.ops.delete_range import delete_range as run

    result = run(
        db,
        decode_text(start, key_format, what="--start"),
        decode_text(end, key_format, what="--end"),
        cf=cf,
        dry_run=dry_run,
        wait_lock=parse_duration(wait_lock, option="--wait-lock", zero_ok=True),
        force=force,
    )
    title = "delete-range --dry-run (nothing deleted)" if dry_run else "delete-range"
    record_stats(title, result.as_dict())


def register(app: typer.Typer) -> None:
    app.command("delete-range")(delete_range)
