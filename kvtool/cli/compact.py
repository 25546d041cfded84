"""`kvtool compact`: a manual compaction, cancellable, with sizes before and after."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kvtool.cli.completion import column_families
from kvtool.cli.options import DbPath, Force, KeyFormatIn, Quiet, WaitLock
from kvtool.cli.report import StatsFileOption, StatsFormat, StatsOption
from kvtool.engine import Bottommost
from kvtool.formats.codecs import InputFormat

if TYPE_CHECKING:
    from kvtool.ops.compact import ColumnFamilySize, CompactResult, Sizes


def compact(
    db: DbPath,
    start: Annotated[
        str | None,
        typer.Option("--start", help="Compact from this key (inclusive).", metavar="KEY"),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Compact up to this key (exclusive).", metavar="KEY"),
    ] = None,
    key_format: KeyFormatIn = InputFormat.UTF8,
    cf: Annotated[
        list[str] | None,
        typer.Option(
            "--cf",
            help="Column family to compact; repeat for several. Default: all of them.",
            metavar="NAME",
            autocompletion=column_families,
        ),
    ] = None,
    bottommost: Annotated[
        Bottommost,
        typer.Option(
            "--bottommost",
            help="Rewrite the bottommost level too: skip, if-needed (when a compaction filter "
            "is set; RocksDB's default) or force (drops every obsolete version and tombstone).",
            case_sensitive=False,
        ),
    ] = Bottommost.IF_NEEDED,
    io_rate: Annotated[
        str | None,
        typer.Option(
            "--io-rate",
            help="Limit what the compaction writes to SIZE per second (e.g. 20MB), with "
            "RocksDB's rate limiter, to spare the owner application's I/O.",
            metavar="SIZE",
        ),
    ] = None,
    wait_lock: WaitLock = "0s",
    force: Force = False,
    stats: StatsOption = StatsFormat.TEXT,
    stats_file: StatsFileOption = None,
    quiet: Quiet = False,
) -> None:
    """Compact a database or a key range, reclaiming space of old versions.

    Rewrites SST files without the overwritten and deleted records they still hold. Opens the
    database read-write, so it exits 75 at once when another process (the application that owns
    it) holds it; --wait-lock DURATION retries with backoff for that long. Lines on stderr
    announce each column family's compaction when it is requested and when RocksDB reports it
    running; the stats block at the end gives SST bytes, files per level and estimated keys
    before and after. Ctrl-C, SIGTERM or SIGHUP cancels the compaction within about a second:
    RocksDB discards the unfinished output, the database stays intact and readable, and kvtool
    exits 130/143/129. A background error that appears during the compaction exits 74. With
    --io-rate, the OPTIONS file RocksDB writes on open records the adjusted bytes_per_sync and
    writable_file_max_buffer_size (write-buffer tuning, harmless to the owner).

    Examples:

        kvtool compact demo.db

        kvtool compact --cf users --bottommost force --io-rate 20MB demo.db

        kvtool compact -q --stats-file /var/lib/kvtool/c.json --wait-lock 5m db
    """
    from kvtool.cli.report import record_stats
    from kvtool.formats.codecs import decode_text
    from kvtool.formats.units import parse_duration, parse_size
    from kvtool.ops.compact import compact as run

    if quiet:
        import logging

        # -q in cron: a notice such as "waiting for the lock" must not turn a success into mail.
        logging.getLogger("kvtool").setLevel(logging.ERROR)

    def announce(name: str, size: ColumnFamilySize) -> None:
        if not quiet:
            from kvtool.formats.units import format_size

            print(
                f"kvtool: compacting column family {name!r} of {db}: "
                f"{format_size(size.sst_bytes)} in {size.sst_files} SST file(s)",
                file=sys.stderr,
                flush=True,
            )

    def running(name: str) -> None:
        if not quiet:
            print(f"kvtool: compaction of {name!r} running", file=sys.stderr, flush=True)

    result = run(
        db,
        column_families=cf or None,
        start=decode_text(start, key_format, what="--start") if start is not None else None,
        end=decode_text(end, key_format, what="--end") if end is not None else None,
        bottommost=bottommost,
        io_rate=parse_size(io_rate, option="--io-rate") if io_rate is not None else None,
        wait_lock=parse_duration(wait_lock, option="--wait-lock", zero_ok=True),
        on_start=announce,
        on_running=running,
        force=force,
    )
    record_stats(
        f"compact {db}",
        stats_dict(result, start=start, end=end),
        text=stats_text(result, start=start, end=end),
    )
    result.raise_for_status()


def stats_dict(result: CompactResult, *, start: str | None, end: str | None) -> dict[str, Any]:
    return {
        "column_families": result.column_families,
        "completed": result.completed,
        "start": start,
        "end": end,
        "bottommost": result.bottommost,
        "io_rate": result.io_rate,
        "elapsed_s": round(result.elapsed, 3),
        "before": result.before.to_dict(),
        "after": result.after.to_dict(),
        "background_errors_before": result.background_errors_before,
        "background_errors_after": result.background_errors_after,
    }


def stats_text(result: CompactResult, *, start: str | None, end: str | None) -> dict[str, Any]:
    from kvtool.formats.units import format_size

    before, after = result.before, result.after
    change = (
        f" ({(after.sst_bytes - before.sst_bytes) / before.sst_bytes:+.1%})"
        if before.sst_bytes
        else ""
    )
    return {
        "status": result.status,
        "column_families": ", ".join(result.column_families),
        "range": f"[{start or 'first'}, {end or 'last'})" if start or end else "all",
        "bottommost": result.bottommost,
        "io_rate": f"{format_size(result.io_rate)}/s" if result.io_rate else "unlimited",
        "SST_bytes": f"{format_size(before.sst_bytes)} -> {format_size(after.sst_bytes)}{change}",
        "SST_files": f"{before.sst_files} -> {after.sst_files}",
        "estimated_keys": f"{before.estimated_keys:,} -> {after.estimated_keys:,}",
        "levels_before": _levels(before),
        "levels_after": _levels(after),
        "elapsed": f"{result.elapsed:.2f} s",
        "background_errors": f"{result.background_errors_before} -> "
        f"{result.background_errors_after}",
    }


def _levels(sizes: Sizes) -> str:
    from kvtool.formats.units import format_size

    parts = [f"L{lv.level}: {lv.files} ({format_size(lv.bytes)})" for lv in sizes.levels()]
    return ", ".join(parts) or "no SST files"


def register(app: typer.Typer) -> None:
    app.command("compact")(compact)
