"""`kvtool checkpoint`: a consistent, hard-linked copy of a database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kvtool.cli.options import DbPath, Force, Quiet, WaitLock
from kvtool.cli.report import StatsFileOption, StatsFormat, StatsOption


def checkpoint(
    db: DbPath,
    dest: Annotated[
        Path,
        typer.Argument(
            help="New directory for the copy (must not exist).", show_default=False, metavar="DEST"
        ),
    ],
    wait_lock: WaitLock = "0s",
    force: Force = False,
    stats: StatsOption = StatsFormat.TEXT,
    stats_file: StatsFileOption = None,
    quiet: Quiet = False,
) -> None:
    """Write a consistent, hard-linked copy of a database into DEST.

    The copy is taken through a read-write handle, so it includes what the database holds
    only in its WAL. A database held by another process (the application that owns it) is
    therefore refused with exit 75 rather than copied through a read-only handle that would
    silently miss WAL-only data; --wait-lock DURATION retries with backoff for that long.
    On the same filesystem the SST files are hard links (no extra space until the source
    compacts them away); elsewhere they are copied. DEST must not exist (exit 2); its parent
    must. The copy opens in any RocksDB tool that can read the source: its newest OPTIONS
    file is the source's own (RocksDB 9.8 rewrites it at every read-write open; kvtool puts
    the owner's back, in the source and in the copy).

    Examples:

        kvtool checkpoint demo.db /backup/demo-$(date +%F)

        kvtool checkpoint -q --wait-lock 10m /srv/app/db /srv/backup/db-new
    """
    from kvtool.cli.report import absolute, record_stats
    from kvtool.formats.units import format_size, parse_duration
    from kvtool.ops.checkpoint import checkpoint as run

    if quiet:
        import logging

        # -q in cron: a notice such as "waiting for the lock" must not turn a success into mail.
        logging.getLogger("kvtool").setLevel(logging.ERROR)
    result = run(
        db,
        dest,
        wait_lock=parse_duration(wait_lock, option="--wait-lock", zero_ok=True),
        force=force,
    )
    figures = {
        "dest": absolute(result.dest),
        "files": result.files,
        "linked": result.linked,
        "copied": result.copied,
        "bytes": result.bytes,
        "elapsed_s": round(result.elapsed, 3),
    }
    text = {
        "status": "done",
        "copy": result.dest,
        "files": f"{result.files} ({result.linked} hard-linked, {result.copied} copied)",
        "size": format_size(result.bytes),
        "elapsed": f"{result.elapsed:.2f} s",
    }
    record_stats(f"checkpoint {db}", figures, text=text)


def register(app: typer.Typer) -> None:
    app.command("checkpoint")(checkpoint)
