"""`compact`: a manual compaction that a signal can cancel, with sizes before and after."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kvtool.engine import DEFAULT_CF, Bottommost, Database, OpenMode, key_order, open_db
from kvtool.errors import (
    STOP_SIGNALS,
    Interrupted,
    KvtoolError,
    StoppedError,
    StorageError,
    UsageError,
)

# How often the main thread wakes while the worker compacts; signals are handled between waits.
_JOIN_POLL = 0.1
# Until RocksDB reports the compaction running, its counter is polled this often.
_RUNNING_POLL = 0.01


@dataclass(frozen=True)
class LevelSize:
    level: int
    files: int
    bytes: int


@dataclass(frozen=True)
class ColumnFamilySize:
    """SST figures of one column family at one moment."""

    name: str
    sst_bytes: int
    sst_files: int
    estimated_keys: int
    levels: list[LevelSize]


@dataclass(frozen=True)
class Sizes:
    """SST figures of the compacted column families at one moment."""

    column_families: list[ColumnFamilySize]

    @property
    def sst_bytes(self) -> int:
        return sum(cf.sst_bytes for cf in self.column_families)

    @property
    def sst_files(self) -> int:
        return sum(cf.sst_files for cf in self.column_families)

    @property
    def estimated_keys(self) -> int:
        return sum(cf.estimated_keys for cf in self.column_families)

    def levels(self) -> list[LevelSize]:
        """Files and bytes per level over all the column families."""
        merged: dict[int, tuple[int, int]] = {}
        for cf in self.column_families:
            for lv in cf.levels:
                files, size = merged.get(lv.level, (0, 0))
                merged[lv.level] = (files + lv.files, size + lv.bytes)
        return [LevelSize(level, f, b) for level, (f, b) in sorted(merged.items())]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sst_bytes": self.sst_bytes,
            "sst_files": self.sst_files,
            "estimated_keys": self.estimated_keys,
            "levels": [asdict(lv) for lv in self.levels()],
            "column_families": [asdict(cf) for cf in self.column_families],
        }


@dataclass
class CompactResult:
    """What `compact` did. `interrupted` names the signal that cancelled it; `failure` is a new
    background error. `raise_for_status()` turns either into the exception the CLI exits with."""

    path: str
    column_families: list[str]
    bottommost: str
    io_rate: int | None
    before: Sizes
    after: Sizes
    elapsed: float = 0.0
    background_errors_before: int = 0
    background_errors_after: int = 0
    completed: list[str] = field(default_factory=list)
    interrupted: int | None = None
    failure: KvtoolError | None = None

    @property
    def status(self) -> str:
        if self.failure is not None:
            return "failed"
        if self.interrupted is not None:
            return f"cancelled by {signal.Signals(self.interrupted).name}"
        return "done"

    def raise_for_status(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.interrupted is not None:
            name = signal.Signals(self.interrupted).name
            code = Interrupted(self.interrupted).exit_code
            raise StoppedError(
                f"compaction interrupted by {name} and cancelled; the database is intact "
                "(work not finished was discarded)",
                exit_code=code,
            )


StartCallback = Callable[[str, ColumnFamilySize], None]
RunningCallback = Callable[[str], None]


def compact(
    path: Path,
    *,
    column_families: list[str] | None = None,
    start: bytes | None = None,
    end: bytes | None = None,
    bottommost: Bottommost = Bottommost.IF_NEEDED,
    io_rate: int | None = None,
    wait_lock: float = 0.0,
    force: bool = False,
    on_start: StartCallback | None = None,
    on_running: RunningCallback | None = None,
) -> CompactResult:
    """Compact [start, end) (everything by default) of the given column families (all by default).

    The native compaction runs in a worker thread so that the calling (main) thread keeps
    handling signals: on Interrupted or KeyboardInterrupt it cancels RocksDB's background work,
    waits for the worker, and returns a result with `interrupted` set. RocksDB discards a
    cancelled compaction's unfinished output; what it finished stays, and the database is intact.
    `compact_range` reports no errors of its own: the DB's `rocksdb.background-errors` counter is
    read before and after, and a new error sets `failure` (a StorageError). `on_start(cf, size)`
    is called as each column family's compaction is requested, `on_running(cf)` once RocksDB
    reports it running (not at all for one that had nothing to do).
    """
    if start is not None and end is not None:
        for cf in column_families or [DEFAULT_CF]:
            if not key_order(Path(path), cf).lt(start, end):
                raise UsageError(
                    "--start must sort before --end in the database's key order",
                    hint="the range is [start, end); `kvtool info` shows the comparator",
                )
    with open_db(
        path, OpenMode.READ_WRITE, wait_lock=wait_lock, io_rate=io_rate, force=force
    ) as db:
        names = _column_families(db, column_families)
        errors_before = _background_errors(db)
        before = _sizes(db, names)
        result = CompactResult(
            path=str(path),
            column_families=names,
            bottommost=bottommost.value,
            io_rate=io_rate,
            before=before,
            after=before,
            background_errors_before=errors_before,
        )
        started = time.monotonic()
        try:
            for name, size in zip(names, before.column_families, strict=True):
                if on_start is not None:
                    on_start(name, size)
                _compact_in_worker(db, name, start, end, bottommost, on_running)
                result.completed.append(name)
        except (Interrupted, KeyboardInterrupt) as exc:
            result.interrupted = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        finally:
            result.elapsed = time.monotonic() - started
        result.after = _sizes(db, names)
        result.background_errors_after = _background_errors(db)
        new_errors = result.background_errors_after - result.background_errors_before
        if new_errors > 0:
            # Closing reports the error itself (RocksDB refuses the closing flush with it),
            # which is the only place its text, naming the file, reaches kvtool.
            detail = f"; RocksDB's LOG in {path} says more"
            try:
                db.close()
            except StorageError as exc:
                detail = f": {exc.detail or exc.message}"
            result.failure = StorageError(
                f"the compaction hit {new_errors} background error(s){detail}",
                hint="run `kvtool verify`; the database stopped accepting writes until reopened",
            )
    return result


def _compact_in_worker(
    db: Database,
    cf: str,
    start: bytes | None,
    end: bytes | None,
    bottommost: Bottommost,
    on_running: RunningCallback | None,
) -> None:
    """Run one compact_range in a thread; on a signal cancel it and wait for the thread.

    Waiting uses an Event, never Thread.join()/is_alive(): on Python < 3.13 an exception raised
    by a signal handler inside join() can mark a running thread as stopped (CPython gh-90882),
    and releasing the database under a worker still inside RocksDB aborts the process.
    """
    failures: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            db.compact_range(start, end, cf, bottommost=bottommost)
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=work, name=f"kvtool-compact-{cf}", daemon=True)
    # Signals are blocked while the thread starts, so that it is either not started or running
    # when a handler raises; the thread inherits the mask, so signals always reach this thread.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    try:
        worker.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        seen = on_running is None
        while not done.wait(_JOIN_POLL if seen else _RUNNING_POLL):
            if not seen and _running_compactions(db) > 0:
                seen = True
                if on_running is not None:
                    on_running(cf)
    except (Interrupted, KeyboardInterrupt):
        _cancel(db, done)
        raise
    finally:
        _wait(done)
        worker.join()
    if failures:
        raise failures[0]


def _cancel(db: Database, done: threading.Event) -> None:
    """Stop RocksDB's background work; a further signal does not skip it."""
    while True:
        try:
            if not done.is_set():
                db.cancel_background_work(True)
            return
        except (Interrupted, KeyboardInterrupt):
            continue


def _wait(done: threading.Event) -> None:
    """Wait for the worker to leave RocksDB: the database cannot be released while it is inside.
    Further signals do not cut this short (after a cancel it takes about 0.1 s)."""
    while True:
        try:
            while not done.wait(_JOIN_POLL):
                pass
            return
        except (Interrupted, KeyboardInterrupt):
            continue


def _column_families(db: Database, wanted: list[str] | None) -> list[str]:
    present = db.column_families
    if not wanted:
        return present
    missing = [name for name in wanted if name not in present]
    if missing:
        raise UsageError(
            f"no column family {missing[0]!r}", hint=f"this database has: {', '.join(present)}"
        )
    return list(dict.fromkeys(wanted))


def _int(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _running_compactions(db: Database) -> int:
    return _int(db.property("rocksdb.num-running-compactions", DEFAULT_CF))


def _background_errors(db: Database) -> int:
    return _int(db.property("rocksdb.background-errors", DEFAULT_CF))


def _sizes(db: Database, names: list[str]) -> Sizes:
    files = db.live_files()
    out: list[ColumnFamilySize] = []
    for name in names:
        by_level: dict[int, list[int]] = {}
        for f in files:
            if f.column_family == name:
                by_level.setdefault(f.level, []).append(f.size)
        levels = [LevelSize(lv, len(sizes), sum(sizes)) for lv, sizes in sorted(by_level.items())]
        out.append(
            ColumnFamilySize(
                name=name,
                sst_bytes=sum(lv.bytes for lv in levels),
                sst_files=sum(lv.files for lv in levels),
                estimated_keys=_int(db.property("rocksdb.estimate-num-keys", name)),
                levels=levels,
            )
        )
    return Sizes(out)
