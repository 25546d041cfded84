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

The same workers count a range (`count_parallel`: each chunk's count and last key), or, given a
`Tally` (exact `du`, kvtool.ops.du_exact), plan their own chunks and reduce each to a partial
result that the parent merges; both write nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import select
import signal
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvtool import errors
from kvtool.engine import Bounds, OpenMode, open_db
from kvtool.errors import ExitCode
from kvtool.formats.jsonl import Render
from kvtool.ops.range_plan import Chunk, Tally
from kvtool.ops.range_worker import (
    POLL,
    Crew,
    Inbox,
    Job,
    Worker,
    dead_wchar,
    framed_size,
    write_fd,
)
from kvtool.stream import ReadSpec, ScanStats, Stopper, StopRequested, read_stage


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
    partials: dict[int, Any] = field(default_factory=dict)  # a Tally's, by chunk number
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


def _error(name: str, message: str, hint: str | None) -> errors.KvtoolError:
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.KvtoolError)) or cls in (
        errors.StoppedError,
        errors.BadInputError,
    ):
        cls = errors.KvtoolError
    return cls(message, hint=hint)


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
    tally: Tally | None = None,
) -> ParallelResult | None:
    """Export `spec` with `workers` forked processes writing to `out_fd` in key order (or, with
    no `render`, count it; with a `tally`, reduce the tally's chunks to `result.partials`).

    Returns None, having written nothing, when the workers' views differ (a writer changed the
    database between their opens): the caller then exports in one process.
    """
    crew = Crew()
    base = _offset(out_fd)
    try:
        for index in range(workers):
            status_r, status_w = os.pipe()
            commands_r, commands_w = os.pipe()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the worker: never returns into the parent's code
                try:
                    os.close(status_r)
                    os.close(commands_w)
                    for fd in crew.fds():
                        os.close(fd)
                    job = Job(db_path, spec, render, out_fd, workers, where, tally)
                    Worker(job, index, commands_r, status_w).run()
                finally:
                    os._exit(1)
            os.close(status_w)
            os.close(commands_r)
            crew.add(pid, Inbox(status_r), commands_w)
        result = _coordinate(crew, stopper, stats, started, progressed, ordered=render is not None)
    except BaseException:
        crew.end(hurry=True)
        raise
    crew.end()
    if result is not None and result.torn is not None and render is not None:
        _mend(db_path, spec, render, out_fd, base, result)
    return result


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
    return export_parallel(
        db_path, spec, None, -1, workers=workers, where="", stopper=stopper, stats=ScanStats()
    )


def _worker_died(result: ParallelResult, pid: int, status: int, *, ordered: bool) -> None:
    """Record that a worker ended without a word (killed, e.g. by the OOM killer): exit 74."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        how = f"was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    else:
        how = f"ended with exit code {os.WEXITSTATUS(status)}"
    message = f"worker process {pid} {how}"
    if result.error is not None or result.stopped is not None or result.closed:
        return
    if ordered:  # an export keeps what was written and says where to resume
        result.stopped = StopRequested(ExitCode.IO_ERROR, message)
    else:
        result.error = errors.StorageError(message)


def _coordinate(
    crew: Crew,
    stopper: Stopper,
    stats: ScanStats,
    started: Callable[[int | None], None] | None,
    progressed: Callable[[int], None] | None,
    *,
    ordered: bool,
) -> ParallelResult | None:
    result = ParallelResult(stats=stats, output_bytes=0)
    ready: dict[int, tuple[int, Any, str | None]] = {}
    chunks = 0
    next_chunk = 0
    turn = 0  # the chunk that may write now
    owner: dict[int, int] = {}  # chunk -> worker (status fd)
    finished = 0
    going = False
    workers = len(crew.pids)
    last_word: set[int] = set()  # workers that said how they ended
    writing: dict[int, tuple[Any, int]] = {}  # worker -> its announced write, framed size
    ended: set[int] = set()

    def hand_out(worker: int) -> None:
        nonlocal next_chunk
        if next_chunk >= chunks or result.error or result.stopped or result.closed:
            crew.command(worker, b"e")
            return
        owner[next_chunk] = worker
        crew.command(worker, b"c", next_chunk)
        if ordered and next_chunk == turn:
            crew.command(worker, b"t", next_chunk)
        next_chunk += 1

    def halt() -> None:
        crew.stop()
        for worker in crew.inboxes:
            crew.command(worker, b"x")

    while True:
        if result.stopped is None and result.error is None and not result.closed:
            try:
                stopper.check()
            except StopRequested as exc:
                result.stopped = exc
                halt()
        open_fds = [fd for fd, inbox in crew.inboxes.items() if not inbox.closed]
        if not open_fds:
            break
        readable, _, _ = select.select(open_fds, [], [], POLL)
        for fd in readable:
            inbox = crew.inboxes[fd]
            for message in inbox.read():
                kind = message[0]
                if kind in ("done", "closed", "error", "bug"):
                    last_word.add(fd)
                if kind == "writing":
                    writing[fd] = (message, framed_size(message))
                elif kind == "ready":
                    ready[fd] = (message[1], message[2], message[3])
                elif kind == "next":
                    hand_out(fd)
                elif kind == "wrote":
                    writing.pop(fd, None)
                    _, number, final, part, size = message
                    stats.merge(part)  # writes come in output order: its last key is the last
                    result.output_bytes += size
                    if progressed is not None and part.records:
                        progressed(part.records)
                    if final:
                        turn = number + 1
                        if turn in owner:
                            crew.command(owner[turn], b"t", turn)
                elif kind == "counted":
                    _, number, records, last, complete = message
                    result.counts[number] = (records, last, complete)
                elif kind == "reduced":
                    _, number, records, result.partials[number] = message
                    if progressed is not None:
                        progressed(records)
                elif kind == "done":
                    finished += 1
                elif kind == "closed":
                    result.closed = True
                    halt()
                elif kind in ("error", "bug"):
                    if result.error is None:
                        if kind == "bug":
                            result.error = errors.KvtoolError(
                                f"a worker process failed: {message[1]}"
                            )
                        else:
                            result.error = _error(message[1], message[2], message[3])
                    halt()
            if inbox.closed and fd not in ended:
                ended.add(fd)
                announced = writing.pop(fd, None)
                # Read what the dead thread wrote before reaping it: then /proc forgets it.
                total = dead_wchar(crew.pid_of[fd]) if announced is not None else -1
                status = crew.reap(fd)
                if announced is not None:
                    (_, number, first, records, size, before), framed = announced
                    known = total >= 0 and before >= 0
                    written = total - before - framed if known else -1
                    result.torn = _Torn(number, first, records, size, written)
                if fd not in last_word and (os.WIFSIGNALED(status) or os.WEXITSTATUS(status)):
                    _worker_died(result, crew.pid_of[fd], status, ordered=ordered)
                    halt()
        if not going and len(ready) == workers:
            going = True
            views = {(seq, tuple(plan)) for seq, plan, _ in ready.values()}
            if result.error is not None or result.stopped is not None:
                halt()
            elif len(views) != 1:
                halt()
                return None
            else:
                _seq, plan, estimate = next(iter(ready.values()))
                result.plan, result.sequence = list(plan), _seq
                chunks = len(plan)
                if started is not None:
                    started(int(estimate) if estimate and estimate.isdigit() else None)
                for worker in list(crew.inboxes):
                    hand_out(worker)
    complete = result.error is None and result.stopped is None and not result.closed
    if complete and (finished < workers or (ordered and turn < chunks)):
        result.error = errors.KvtoolError("a worker process ended without reporting")
    return result
