"""What keeps an output from harming what it must not or from hanging: the database it is read
from (no output inside its directory), a stopped run's output (a resume only from the same
database), the command's own input and output (no stats file over them), and a FIFO with no
reader (waited for between stop checks)."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from kvtool.errors import UsageError


def other_database(saved: Mapping[str, Any], now: str | None) -> str | None:
    """Why a resume cannot join records of the database with IDENTITY `now` to those a stopped
    run read, as its `saved` record says (None: it may). A database without an IDENTITY file
    (a RocksDB 9.8 checkpoint has none until its first read-write open) cannot be told apart
    from any other, so only two databases without one pass; a record from before kvtool kept
    `database_identity` is not checked."""
    if "database_identity" not in saved:
        return None
    was = saved["database_identity"]
    if was == now or (not was and not now):
        return None
    if not now:
        return f"was exported from a database with IDENTITY {was}; this one has no IDENTITY file"
    if not was:
        return f"was exported from a database without an IDENTITY file; this one's is {now}"
    return f"was exported from another database (IDENTITY {was}; this one's is {now})"


def refuse_inside_database(
    path: Path, databases: Iterable[Path | str], *, option: str = "-o"
) -> None:
    """Refuse (exit 2, before any work) an output inside a database directory: a file there
    replaced the database's own (`-o DB/CURRENT` or a `--stats-file DB/MANIFEST-...` left a
    database no RocksDB opens, exit 0), and a new one changes a directory that a read-only
    command must leave as it found it. Symlinks are followed, `/dev/stdout` too (to where it
    leads). A directory that holds no database (no CURRENT or IDENTITY file: a missing or
    mistyped one) is left to the command's own error."""
    real = Path(os.path.realpath(path))
    for database in databases:
        directory = Path(os.path.realpath(database))
        if not any((directory / name).exists() for name in ("CURRENT", "IDENTITY")):
            continue
        if real == directory or directory in real.parents:
            raise UsageError(
                f"{option} {path} is inside the database directory {database}",
                hint="write it outside the database's directory",
            )


def refuse_same_file(stats_file: Path, other: Path, *, what: str, tree: bool = False) -> None:
    """Refuse (exit 2, before any work) a --stats-file that is `other`, the command's own
    output or input (`tree`: or inside that directory): written last, it replaced the export
    it describes (exit 0) or the import's source file. Symlinks and hard links are followed."""
    real, target = Path(os.path.realpath(stats_file)), Path(os.path.realpath(other))
    same = real == target or (tree and target in real.parents)
    if not same:
        with contextlib.suppress(OSError):
            same = os.path.samefile(stats_file, other)
    if same:
        raise UsageError(
            f"--stats-file {stats_file} is {'inside ' if real != target and tree else ''}"
            f"{what} {other}",
            hint="give the stats file a path of its own",
        )


def open_fifo(path: Path, wait_for_reader: Callable[[], None]) -> BinaryIO:
    """Open the FIFO `path` for writing without blocking in the kernel until a reader opens it:
    there the stop signals only take note, so --timeout and SIGTERM went unheard. Until a reader
    comes, `wait_for_reader()` waits a moment (and raises to stop the run)."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            wait_for_reader()
            continue
        os.set_blocking(fd, True)  # a full pipe then waits for the reader, as any write does
        return os.fdopen(fd, "wb", buffering=1 << 20)
