"""Parallel export: forked range workers read and render chunks of the range side by side and
write them to the output in key order, taking turns; the parent only coordinates.

Why processes: rocksdict holds the GIL while it steps, so threads do not read in parallel.
Why fork before any open: RocksDB starts threads when a database opens, and a process that
forks with threads running may hang in the child; so in parallel mode the parent never opens the
database. Each worker opens it READ_ONLY itself.

One point in time: a READ_ONLY open is a static view, but two opens see the same data only if
nothing was written between them (a live writer). Every worker reports its view's sequence
number and chunk plan (derived from the same SST files); the run goes ahead only if all agree,
before a byte is written. Otherwise `export_parallel` returns None and the caller exports in one
process.

Order: the parent hands out chunks (in output order) to whichever worker asks, and gives chunk
j's worker the turn to write once chunk j - 1 is written. A worker reads on while its finished
chunks wait for their turn, holding at most about `BUFFER_LIMIT` bytes; the chunk that has the
turn is written as it is read. Stops (deadline, signals) and errors: the parent tells every
worker to stop (SIGUSR1 and a command); the worker with the turn finishes the batch it is writing
(never cutting one, however many signals come: a slow reader would get a torn record) and
reports it; the others write nothing. The output is thus always a prefix of the range in order,
ending at a record boundary, and the parent's stats name its last key (the cursor).

A worker that dies (`kill -9`, the OOM killer) is noticed at once: its status pipe ends without a
last word. The run stops with exit 74 and a cursor. If it died in the middle of writing a batch,
the parent learns how many bytes of it reached the output from the kernel's count of the dead
thread's writes (`wchar` in /proc/PID/task/PID/io, taken by the worker just before the write)
and completes the batch itself, re-reading it from the same view of the database; a regular file
is cut back to the last whole batch instead. So even then no record is torn.

Here: that JSON Lines mode (`WriteInTurn`), the results and the mending. The same workers count
a range (`count_parallel`, ops.count.Count: each chunk's count and last key), write Parquet parts
(ops.export_parquet_parallel) or, for exact `du`, plan their own chunks and reduce each to a
partial the parent merges (ops.du_exact). The machinery is ops.range_worker (the worker, and
`Mode`, what a chunk makes) and ops.range_coordinator (the parent's side).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvtool import errors
from kvtool.engine import Bounds, Database, OpenMode, open_db
from kvtool.formats.jsonl import Render
from kvtool.ops.range_coordinator import Coordinator, run_workers
from kvtool.ops.range_plan import BUFFER_LIMIT, Chunk
from kvtool.ops.range_worker import (
    Mode,
    Stop,
    Worker,
    dead_wchar,
    framed_size,
    parse_wchar,
    write_fd,
)
from kvtool.stream import (
    ReadSpec,
    ScanStats,
    Stopper,
    StopRequested,
    read_stage,
)
from kvtool.stream.pipeline import Batch


# -- the modes ------------------------------------------------------------------------------------
@dataclass
class Part:
    """One rendered batch (whole records) and its stats: the unit a worker writes and reports."""

    data: bytes
    stats: ScanStats  # the batch's records; `last_key` is its last
    first: bytes  # where the parent re-reads the batch if a worker dies writing it

    @classmethod
    def of(cls, batch: Batch, data: bytes) -> Part:
        stats = ScanStats()
        stats.add(batch)
        return cls(data, stats, batch[0][0])


@dataclass
class Written:
    """What a chunk (or the first part of one) holds: rendered batches waiting to be written."""

    parts: list[Part] = field(default_factory=list)
    size: int = 0


class WriteInTurn(Mode):
    """JSON Lines: each chunk rendered, and written to one fd when the parent gives it the turn
    (once every earlier chunk is written).

    A worker does not wait for a turn to read on: finished chunks wait in memory while it reads
    the next, up to BUFFER_LIMIT bytes; only then does it wait. The chunk that holds the turn is
    written as it is read.
    """

    ordered = True

    def __init__(
        self,
        render: Render,
        out_fd: int,
        where: str,
        stats: ScanStats,
        progressed: Callable[[int], None] | None,
    ) -> None:
        self.render, self.out_fd, self.where = render, out_fd, where
        # in a worker
        self.current: int | None = None  # the chunk being read
        self.turn: int | None = None  # the chunk of ours that may be written now
        self.waiting: dict[int, Written] = {}  # read chunks waiting for their turn
        self.buffered = 0
        self.io_fd: int | None = None  # /proc/self/task/TID/io, for `wchar` (see the module doc)
        # in the parent
        self.stats, self.progressed = stats, progressed
        self.output_bytes = 0
        self.writing: dict[int, tuple[Any, int]] = {}  # worker -> its announced write, framed
        self.torn: _Torn | None = None

    def begin(self, worker: Worker) -> None:
        with contextlib.suppress(OSError):
            self.io_fd = os.open(f"/proc/self/task/{os.getpid()}/io", os.O_RDONLY)

    def failure(self, exc: OSError) -> str:
        return f"writing {self.where}: {exc.strerror or exc}"

    def held(self) -> int:
        return self.buffered

    def pending(self) -> bool:
        return bool(self.waiting)

    def _wchar(self) -> int:
        """Bytes this thread has written so far, by the kernel's count (-1 if unknown)."""
        if self.io_fd is None:
            return -1
        try:
            return parse_wchar(os.pread(self.io_fd, 4096, 0))
        except OSError:
            return -1

    def grant(self, worker: Worker, number: int) -> None:
        if number in (self.current, worker.assigned):  # being read, or about to be
            self.turn = number
            return
        chunk = self.waiting.pop(number)
        self.buffered -= chunk.size
        self._write(worker, number, chunk, final=True)

    def _write(self, worker: Worker, number: int, chunk: Written, *, final: bool) -> None:
        """Write the chunk's batches in order, each announced before and reported after it is
        written; a stop between two batches ends the chunk there (the parent has the cursor)."""
        parts = chunk.parts
        for i, part in enumerate(parts):
            if worker.stop:
                raise Stop
            last = final and i == len(parts) - 1
            before = self._wchar()
            records = part.stats.records
            worker.send(("writing", number, part.first, records, len(part.data), before))
            write_fd(self.out_fd, part.data)
            worker.send(("wrote", number, last, part.stats, len(part.data)))
        if final and not parts:
            worker.send(("wrote", number, True, ScanStats(), 0))

    def chunk(self, worker: Worker, db: Database, number: int, bounds: Chunk) -> None:
        self.current = number
        chunk = Written()
        # The plan folded the spec's `after` into the chunks' bounds.
        spec = dataclasses.replace(worker.job.spec, after=None)
        with read_stage(db, spec, bounds) as batches:
            # A Stop drops what was read and not yet written: the cursor is before it.
            for batch in batches:
                worker.check()
                part = Part.of(batch, self.render(batch))
                chunk.parts.append(part)
                chunk.size += len(part.data)
                self.buffered += len(part.data)
                worker.poll(block=False)
                while self.turn != number and self.buffered >= BUFFER_LIMIT:
                    worker.poll(block=True)
                if self.turn == number:
                    self._write(worker, number, chunk, final=False)
                    self.buffered -= chunk.size
                    chunk = Written()
        self.current = None
        if self.turn == number:
            self.buffered -= chunk.size
            self._write(worker, number, chunk, final=True)
        else:
            self.waiting[number] = chunk

    def take(self, run: Coordinator, worker: int, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "writing":
            self.writing[worker] = (message, framed_size(message))
        elif kind == "wrote":
            self.writing.pop(worker, None)
            _, number, final, part, size = message
            self.stats.merge(part)  # writes come in output order: its last key is the last
            self.output_bytes += size
            if self.progressed is not None and part.records:
                self.progressed(part.records)
            if final:
                run.passed(number)
        else:
            super().take(run, worker, message)

    def lost(self, run: Coordinator, worker: int, pid: int) -> None:
        announced = self.writing.pop(worker, None)
        if announced is None:
            return
        # Read what the dead thread wrote before it is reaped: then /proc forgets it.
        total = dead_wchar(pid)
        (_, number, first, records, size, before), framed = announced
        known = total >= 0 and before >= 0
        written = total - before - framed if known else -1
        self.torn = _Torn(number, first, records, size, written)


# -- the parent -----------------------------------------------------------------------------------
@dataclass
class _Torn:
    """A batch a worker was writing when it died: `written` of its `size` bytes reached the
    output (-1: unknown)."""

    number: int
    first: bytes
    records: int
    size: int
    written: int


@dataclass
class ParallelResult:
    stats: ScanStats
    output_bytes: int
    stopped: StopRequested | None = None
    closed: bool = False
    error: errors.KvtoolError | None = None
    # count_parallel: chunk number -> (records counted, the last one's key, whether the chunk
    # was counted to its end); a stopped worker reports how far it got
    counts: dict[int, tuple[int, bytes | None, bool]] = field(default_factory=dict)
    plan: list[Chunk] = field(default_factory=list)
    sequence: int = -1  # the workers' common view
    torn: _Torn | None = None
    cut: bool = False  # the output ends in a record cut in half (could not be mended)

    def count_prefix(self) -> tuple[int, bytes | None]:
        """What count_parallel counted as a prefix of the scan: the chunks counted to their end
        in output order, then what was counted of the first one that was not; and the key of
        the last record of that prefix (None: nothing), after which the rest of a stopped count
        begins. Counts of later chunks are left out: a cursor resumes after a prefix only."""
        total, last = 0, None
        for number in range(len(self.plan)):
            if number not in self.counts:
                break
            n, key, complete = self.counts[number]
            total += n
            last = key if key is not None else last
            if not complete:
                break
        return total, last


def export_parallel(
    db_path: Path,
    spec: ReadSpec,
    render: Render | None,
    out_fd: int,
    *,
    workers: int,
    where: str,
    stopper: Stopper,
    stats: ScanStats,
    started: Callable[[int | None], None] | None = None,
    progressed: Callable[[int], None] | None = None,
) -> ParallelResult | None:
    """Export `spec` with `workers` forked processes writing to `out_fd` in key order.

    Returns None, having written nothing, when the workers' views differ (a writer changed the
    database between their opens): the caller then exports in one process.
    """
    if render is None:  # the old spelling of count_parallel
        return _counted(db_path, spec, workers, stopper)
    mode = WriteInTurn(render, out_fd, where, stats, progressed)
    base = _offset(out_fd)
    run = run_workers(
        db_path,
        spec,
        mode,
        workers=workers,
        stopper=stopper,
        started=(lambda estimate, _sequence: started(estimate)) if started else None,
    )
    if run is None:
        return None
    result = _result(run, stats)
    result.output_bytes, result.torn = mode.output_bytes, mode.torn
    if result.torn is not None:
        _mend(db_path, spec, render, out_fd, base, result)
    return result


def _result(run: Coordinator, stats: ScanStats) -> ParallelResult:
    r = ParallelResult(stats, 0, run.stopped, run.closed, run.error)
    r.plan, r.sequence = run.plan, run.sequence
    return r


def _offset(fd: int) -> int | None:
    """Where the workers' output starts in a regular file (None for a pipe or a terminal)."""
    if fd < 0:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:  # `>> FILE`: writes go to its end
            return os.fstat(fd).st_size
        return os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return None


def _mend(
    db_path: Path, spec: ReadSpec, render: Render, out_fd: int, base: int | None, r: ParallelResult
) -> None:
    """A worker died writing a batch: end the output at a record boundary again (module doc)."""
    torn, r.torn = r.torn, None
    assert torn is not None
    if torn.written == 0:
        return
    with contextlib.suppress(OSError):
        if base is not None and stat.S_ISREG(os.fstat(out_fd).st_mode):
            end = base + r.output_bytes  # a file: cut it back to the last whole batch
            os.ftruncate(out_fd, end)
            os.lseek(out_fd, end, os.SEEK_SET)
            return
    r.cut = True
    if torn.written < 0:
        return
    with open_db(db_path, OpenMode.READ_ONLY) as db:
        if db.sequence_number() != r.sequence:
            return  # another view: its batch could differ from the one cut
        # The batch as the worker read it: `records` records of its chunk from `first` on.
        order = db.key_order(spec.krange.cf)
        start = (
            Bounds(upper=torn.first, upper_closed=True)
            if spec.krange.reverse
            else Bounds(lower=torn.first)
        )
        bounds = order.intersect(r.plan[torn.number], start)
        again = dataclasses.replace(spec, after=None, batch_size=torn.records)
        with read_stage(db, again, bounds) as batches:
            batch = next(batches, [])
    if not batch or batch[0][0] != torn.first:
        return
    data = render(batch)
    if len(data) != torn.size:
        return
    write_fd(out_fd, memoryview(data)[torn.written :])
    r.cut = False
    r.output_bytes += len(data)
    r.stats.add(batch)


def count_parallel(
    db_path: Path, spec: ReadSpec, *, workers: int, stopper: Stopper
) -> ParallelResult | None:
    """Count `spec`'s records with `workers` forked processes, chunks side by side (`rate`
    shared among them); the total is `count_prefix()`. None when the workers' views differ (the
    caller counts in one process)."""
    return _counted(db_path, spec, workers, stopper)


def _counted(
    db_path: Path, spec: ReadSpec, workers: int, stopper: Stopper
) -> ParallelResult | None:
    from kvtool.ops.count import Count  # not imported by an export

    mode = Count()
    run = run_workers(db_path, spec, mode, workers=workers, stopper=stopper)
    if run is None:
        return None
    result = _result(run, ScanStats())
    result.counts = mode.counts
    return result
