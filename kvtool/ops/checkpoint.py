"""`checkpoint`: a consistent copy of a database, hard-linked, taken through a read-write handle."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from kvtool.engine import OpenMode, open_db
from kvtool.engine.lockfile import lock_holder
from kvtool.errors import DatabaseBusyError, Interrupted, UsageError
from kvtool.stream import SignalGuard

log = logging.getLogger("kvtool")


@dataclass(frozen=True)
class CheckpointResult:
    """The copy: its files, how many share their data with the source (hard links), its size."""

    source: str
    dest: str
    files: int
    linked: int
    copied: int
    bytes: int
    elapsed: float


def checkpoint(
    path: Path, dest: Path, *, wait_lock: float = 0.0, force: bool = False
) -> CheckpointResult:
    """Write a consistent copy of the database at `path` into the new directory `dest`.

    RocksDB flushes the memtable, then hard-links the SST files (copying them when `dest` is on
    another filesystem) and copies the MANIFEST, OPTIONS and live WAL. It needs the read-write
    handle: through a read-only one, data that is still only in the owner's WAL would be left out.
    So a database held by another process is refused (DatabaseBusyError, exit 75), never copied
    partially. `dest` must not exist; its parent must.
    """
    if dest.exists() or dest.is_symlink():
        raise UsageError(f"{dest} already exists", hint="give a new directory for the checkpoint")
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{parent} is not a directory", hint="create the parent directory first")
    started = time.monotonic()
    try:
        db_cm = open_db(path, OpenMode.READ_WRITE, wait_lock=wait_lock, force=force)
    except DatabaseBusyError as exc:
        holder = lock_holder(path)
        by = f"process {holder}" if holder is not None else "another process"
        raise DatabaseBusyError(
            f"{path} is in use by {by}, and a checkpoint needs the read-write handle: one taken "
            "through a read-only handle would miss data that is still only in the owner's WAL"
            + (f" (gave up after waiting {exc.waited:g}s)" if exc.waited else ""),
            hint="retry later or with --wait-lock DURATION, or take the checkpoint from the "
            "owner application",
        ) from None
    # RocksDB writes the copy in one native call, which a signal cannot cut short: the signal is
    # held until the call returns. Then the copy is complete, and a complete copy is reported
    # as such (a stop that left it would make the rerun refuse, since DEST exists); a copy that
    # failed half-way is removed.
    guard = SignalGuard()
    with guard:
        with db_cm as db:  # a signal while opening (or waiting for the lock) stops at once
            guard.begin_hold()  # until the database is released again
            try:
                db.checkpoint(dest)
            except BaseException:
                _remove_partial(dest)
                raise
        signum = guard.end_hold()
    if signum is not None:
        log.warning(
            "%s while the checkpoint was being written; it is complete, so it is kept",
            Interrupted(signum).reason,
        )
    elapsed = time.monotonic() - started
    files = linked = size = 0
    for entry in dest.iterdir():
        if not entry.is_file():
            continue
        st = entry.stat()
        files += 1
        size += st.st_size
        source_file = path / entry.name
        try:
            if os.path.samefile(source_file, entry):
                linked += 1
        except OSError:
            pass
    return CheckpointResult(
        source=str(path),
        dest=str(dest),
        files=files,
        linked=linked,
        copied=files - linked,
        bytes=size,
        elapsed=elapsed,
    )


def _remove_partial(dest: Path) -> None:
    """Remove what a failed checkpoint left: DEST, and RocksDB's `DEST.tmp` work directory."""
    for path in (dest, dest.with_name(dest.name + ".tmp")):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
