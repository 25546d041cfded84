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
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import pickle
import select
import signal
import stat
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, NoReturn

from kvtool import errors
from kvtool.engine import Bounds, Database, Entry, KeyOrder, LiveFile, OpenMode, key_order, open_db
from kvtool.engine.ondisk import sst_bytes
from kvtool.errors import STOP_SIGNALS, ExitCode
from kvtool.formats.jsonl import Render
from kvtool.stream import ReadSpec, ScanStats, Stopper, StopRequested, count_steps

WORKERS = 2  # measured on 2 cores; more workers than cores only adds switching
MIN_SST_BYTES = 64 << 20  # below this one process is about as fast (startup dominates)
CHUNK_RECORDS = 50_000  # about 7 MB of JSON Lines at 140 bytes a record
BUFFER_LIMIT = 32 << 20  # bytes a worker renders ahead of its turn
_BATCH = 1024
_POLL = 0.05  # seconds between the parent's checks for signals and the deadline
_REAP_WAIT = 5.0  # seconds a stopped worker gets to end before it is killed

Chunk = Bounds
_LEN = struct.Struct(">I")
# Parent to worker: b"c" take chunk N, b"t" write chunk N now, b"e" no chunks left, b"x" stop.
_COMMAND = struct.Struct(">ci")
_first, _second = itemgetter(0), itemgetter(1)


def worker_count(workers: int | None, db_path: Path, spec: ReadSpec) -> int:
    """The one worker policy of export and count, once a caller's own reasons for one process
    are ruled out: `workers` when given (1 or less: one process), else WORKERS on a machine with
    two cores or more and MIN_SST_BYTES of SST files; one process where workers cannot split the
    range (see `range_workers_apply`) or cannot fork."""
    if (workers is not None and workers <= 1) or not hasattr(os, "fork"):
        return 1
    if workers is None and ((os.cpu_count() or 1) < 2 or sst_bytes(db_path) < MIN_SST_BYTES):
        return 1
    if not range_workers_apply(db_path, spec):
        return 1
    return workers or WORKERS


def range_workers_apply(db_path: Path, spec: ReadSpec) -> bool:
    """Whether range workers can read `spec`: the range is not empty and the key order is known
    (workers split the range at keys that only a known order can sort). The order comes from
    the OPTIONS file: the parent never opens the database before it forks."""
    order = key_order(db_path, spec.krange.cf)
    return order.known and not order.is_empty(spec.krange.bounds(order))


def _between(a: bytes, b: bytes, parts: int) -> list[bytes]:
    """Up to `parts - 1` keys spread between `a` and `b`, reading the 8 bytes after their common
    prefix as a number. Only a hint of where records lie: any keys are correct split points."""
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    low = int.from_bytes(a[prefix : prefix + 8].ljust(8, b"\0"), "big")
    high = int.from_bytes(b[prefix : prefix + 8].ljust(8, b"\0"), "big")
    if high - low < parts:
        return []
    head = a[:prefix]
    return [head + (low + (high - low) * i // parts).to_bytes(8, "big") for i in range(1, parts)]


def effective_bounds(spec: ReadSpec, order: KeyOrder) -> Bounds:
    """The range's bounds in `order` with `after` folded in."""
    bounds = spec.krange.bounds(order)
    if spec.after is not None:
        bounds = order.after(bounds, spec.after, reverse=spec.krange.reverse)
    return bounds


def plan_chunks(
    files: Sequence[LiveFile], spec: ReadSpec, order: KeyOrder, *, target: int = CHUNK_RECORDS
) -> list[Chunk]:
    """The range cut into chunks of about `target` records, in output order; keys sort in
    `order` (the column family's key order: a file's smallest key is smallest in it).

    Cut points are the SST files' first keys and keys spread inside each file by its entry
    count; chunk sizes follow the data only as well as those hints do, never correctness.
    Inner chunk edges are plain [lower, upper) keys; the range's own edges keep their kind.
    """
    bounds = effective_bounds(spec, order)
    cf = spec.krange.cf
    cuts: set[bytes] = set()
    for f in files:
        if f.column_family not in (cf, None) or not f.smallest_key:
            continue
        cuts.add(f.smallest_key)
        parts = math.ceil(f.entries / target)
        if parts > 1:
            low, high = sorted((f.smallest_key, f.largest_key))
            cuts.update(_between(low, high, parts))
    lt = order.lt
    lower, upper = bounds.lower, bounds.upper
    inside = order.sorted(
        c for c in cuts if (lower is None or lt(lower, c)) and (upper is None or lt(c, upper))
    )
    if not inside:
        return [bounds]
    chunks = [Bounds(lower, inside[0], bounds.lower_open)]
    chunks += [Bounds(a, b) for a, b in itertools.pairwise(inside)]
    chunks.append(Bounds(inside[-1], upper, upper_closed=bounds.upper_closed))
    return chunks[::-1] if spec.krange.reverse else chunks


# -- messages between workers and the parent ------------------------------------------------------
def _send(fd: int, message: Any) -> None:
    data = pickle.dumps(message)
    _write_all(fd, _LEN.pack(len(data)) + data)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _parse_wchar(io: bytes) -> int:
    """The `wchar` figure of a /proc/.../io text (-1 if absent)."""
    for line in io.splitlines():
        if line.startswith(b"wchar:"):
            return int(line.split()[1])
    return -1


def _dead_wchar(pid: int) -> int:
    """What a worker's main thread wrote in all, read after it died and before it is reaped."""
    try:
        with open(f"/proc/{pid}/task/{pid}/io", "rb") as f:
            return _parse_wchar(f.read())
    except OSError:
        return -1


def _framed_size(message: Any) -> int:
    return _LEN.size + len(pickle.dumps(message))


class _Inbox:
    """Framed messages from one worker's status pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.closed = False

    def read(self) -> list[Any]:
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.closed = True
        self.buffer += chunk
        out = []
        while len(self.buffer) >= _LEN.size:
            (size,) = _LEN.unpack_from(self.buffer)
            if len(self.buffer) < _LEN.size + size:
                break
            out.append(pickle.loads(self.buffer[_LEN.size : _LEN.size + size]))
            self.buffer = self.buffer[_LEN.size + size :]
        return out


# -- the worker -----------------------------------------------------------------------------------
@dataclass
class _Job:
    db_path: Path
    spec: ReadSpec
    render: Render | None  # None: count the chunks instead
    out_fd: int
    workers: int
    where: str


class _Stop(Exception):
    """The parent asked this worker to stop."""


@dataclass
class _Part:
    """One rendered batch (whole records) and its stats: the unit a worker writes and reports."""

    data: bytes
    records: int
    key_bytes: int
    value_bytes: int
    first: bytes
    last: bytes


@dataclass
class _Written:
    """What a chunk (or the first part of one) holds: rendered batches waiting to be written."""

    parts: list[_Part] = field(default_factory=list)
    size: int = 0


class _Worker:
    """One forked worker: takes chunks from the parent, reads and renders each, and writes each
    when the parent gives it that chunk's turn (once every earlier chunk is written).

    It does not wait for a turn to read on: finished chunks wait in memory while it reads the
    next, up to BUFFER_LIMIT bytes; only then does it wait. The chunk that holds the turn is
    written as it is read.
    """

    def __init__(self, job: _Job, index: int, commands: int, status: int) -> None:
        self.job, self.index = job, index
        self.commands, self.status = commands, status
        self.stop = False
        self.parent = os.getppid()
        self.inbox = b""
        self.assigned: int | None = None
        self.no_more = False
        self.current: int | None = None  # the chunk being read
        self.turn: int | None = None  # the chunk of ours that may be written now
        self.waiting: dict[int, _Written] = {}  # read chunks waiting for their turn
        self.buffered = 0
        self.io_fd: int | None = None  # /proc/self/task/TID/io, for `wchar` (see the module doc)

    def _note_stop(self, signum: int, frame: Any) -> None:
        # Never raises: a batch being written is finished (a blocked write too), never torn.
        self.stop = True

    def _wchar(self) -> int:
        """Bytes this thread has written so far, by the kernel's count (-1 if unknown)."""
        if self.io_fd is None:
            return -1
        try:
            return _parse_wchar(os.pread(self.io_fd, 4096, 0))
        except OSError:
            return -1

    def _check(self) -> None:
        if self.stop or os.getppid() != self.parent:
            raise _Stop

    def _poll(self, block: bool) -> None:
        """Act on the parent's commands; with `block`, wait for at least one."""
        while True:
            self._check()
            ready, _, _ = select.select([self.commands], [], [], _POLL if block else 0)
            if ready:
                data = os.read(self.commands, 4096)
                if not data:
                    raise _Stop
                self.inbox += data
            handled = False
            while len(self.inbox) >= _COMMAND.size:
                kind, number = _COMMAND.unpack_from(self.inbox)
                self.inbox = self.inbox[_COMMAND.size :]
                handled = True
                if kind == b"x":
                    raise _Stop
                if kind == b"c":
                    self.assigned = number
                elif kind == b"e":
                    self.no_more = True
                elif kind == b"t":
                    self._grant(number)
            if handled or not block:
                return

    def _grant(self, number: int) -> None:
        if number in (self.current, self.assigned):  # being read, or about to be
            self.turn = number
            return
        chunk = self.waiting.pop(number)
        self.buffered -= chunk.size
        self._write(number, chunk, final=True)

    def _write(self, number: int, chunk: _Written, *, final: bool) -> None:
        """Write the chunk's batches in order, each announced before and reported after it is
        written; a stop between two batches ends the chunk there (the parent has the cursor)."""
        parts = chunk.parts
        for i, part in enumerate(parts):
            if self.stop:
                raise _Stop
            last = final and i == len(parts) - 1
            before = self._wchar()
            _send(
                self.status, ("writing", number, part.first, part.records, len(part.data), before)
            )
            _write_all(self.job.out_fd, part.data)
            _send(
                self.status,
                (
                    "wrote",
                    number,
                    last,
                    part.records,
                    part.key_bytes,
                    part.value_bytes,
                    1,
                    part.last,
                    len(part.data),
                ),
            )
        if final and not parts:
            _send(self.status, ("wrote", number, True, 0, 0, 0, 0, None, 0))

    def run(self) -> NoReturn:
        code = 0
        try:
            for sig in STOP_SIGNALS:  # the parent decides how to stop
                signal.signal(sig, signal.SIG_IGN)
            signal.signal(signal.SIGUSR1, self._note_stop)
            with contextlib.suppress(OSError):
                self.io_fd = os.open(f"/proc/self/task/{os.getpid()}/io", os.O_RDONLY)
            self._run()
        except _Stop:
            pass
        except BrokenPipeError:
            _send(self.status, ("closed",))
        except OSError as exc:
            message = f"writing {self.job.where}: {exc.strerror or exc}"
            _send(self.status, ("error", "StorageError", message, None))
        except errors.KvtoolError as exc:
            _send(self.status, ("error", type(exc).__name__, exc.message, exc.hint))
        except BaseException as exc:  # a bug: report it, never return into the parent's code
            code = 1
            with contextlib.suppress(BaseException):
                _send(self.status, ("bug", f"{type(exc).__name__}: {exc}"))
        finally:
            os._exit(code)

    def _run(self) -> None:
        job = self.job
        spec = job.spec
        with open_db(job.db_path, OpenMode.READ_ONLY) as db:
            chunks = plan_chunks(db.live_files(), spec, db.key_order(spec.krange.cf))
            estimate = db.property("rocksdb.estimate-num-keys", spec.krange.cf)
            _send(self.status, ("ready", db.sequence_number(), chunks, estimate))
            while True:
                while self.assigned is None and not self.no_more:
                    self._poll(block=True)
                if self.assigned is None:
                    break
                number, self.assigned = self.assigned, None
                if job.render is None:
                    _send(self.status, ("counted", self._count(db, chunks[number])))
                else:
                    self._chunk(db, number, chunks[number])
                while self.buffered >= BUFFER_LIMIT:
                    self._poll(block=True)
                _send(self.status, ("next",))
        while self.waiting:  # the database is closed: only writes are left
            self._poll(block=True)
        _send(self.status, ("done",))

    def _count(self, db: Database, bounds: Chunk) -> int:
        """The records of one chunk (stepped forward: a count has no direction)."""
        total = 0
        with db.bounded(self.job.spec.krange.cf, bounds) as it:
            it.seek_to_first()
            self._check()
            for n in count_steps(it):
                total += n
                self._check()
        return total

    def _chunk(self, db: Database, number: int, bounds: Chunk) -> None:
        spec, render = self.job.spec, self.job.render
        assert render is not None
        reverse = spec.krange.reverse
        self.current = number
        chunk = _Written()
        try:
            with db.bounded(spec.krange.cf, bounds) as it:
                if reverse:
                    it.seek_to_last()
                else:
                    it.seek_to_first()
                while True:
                    self._check()
                    batch: list[Entry]
                    if spec.keys_only:
                        batch = [(k, b"") for k in it.read_keys(_BATCH, reverse=reverse)]
                    elif spec.columns:  # every column of wide-column entities
                        batch = it.read_entries(_BATCH, reverse=reverse)
                    else:
                        batch = list(it.read_batch(_BATCH, reverse=reverse))
                    if not batch:
                        break
                    data = render(batch)
                    chunk.parts.append(
                        _Part(
                            data,
                            len(batch),
                            sum(map(len, map(_first, batch))),
                            sum(map(len, map(_second, batch))),
                            batch[0][0],
                            batch[-1][0],
                        )
                    )
                    chunk.size += len(data)
                    self.buffered += len(data)
                    self._poll(block=False)
                    while self.turn != number and self.buffered >= BUFFER_LIMIT:
                        self._poll(block=True)
                    if self.turn == number:
                        self._write(number, chunk, final=False)
                        self.buffered -= chunk.size
                        chunk = _Written()
        except _Stop:
            raise  # what was read and not yet written is dropped: the cursor is before it
        self.current = None
        if self.turn == number:
            self.buffered -= chunk.size
            self._write(number, chunk, final=True)
        else:
            self.waiting[number] = chunk


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
    counted: int = 0  # count_parallel: records in the chunks counted
    plan: list[Chunk] = field(default_factory=list)
    sequence: int = -1  # the workers' common view
    torn: _Torn | None = None
    cut: bool = False  # the output ends in a record cut in half (could not be mended)


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
) -> ParallelResult | None:
    """Export `spec` with `workers` forked processes writing to `out_fd` in key order.

    Returns None, having written nothing, when the workers' views differ (a writer changed the
    database between their opens): the caller then exports in one process.
    """
    crew = _Crew()
    try:
        base: int | None = os.lseek(out_fd, 0, os.SEEK_CUR) if out_fd >= 0 else None
    except OSError:  # a pipe or a terminal: no offset
        base = None
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
                    job = _Job(db_path, spec, render, out_fd, workers, where)
                    _Worker(job, index, commands_r, status_w).run()
                finally:
                    os._exit(1)
            os.close(status_w)
            os.close(commands_r)
            crew.add(pid, _Inbox(status_r), commands_w)
        result = _coordinate(crew, stopper, stats, started, progressed, ordered=render is not None)
    except BaseException:
        crew.end(hurry=True)
        raise
    crew.end()
    if result is not None and result.torn is not None and render is not None:
        _mend(db_path, spec, render, out_fd, base, result)
    return result


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
        reverse = spec.krange.reverse
        with db.bounded(spec.krange.cf, r.plan[torn.number]) as it:
            if reverse:
                it.seek_for_prev(torn.first)
            else:
                it.seek(torn.first)
            batch: list[Entry]
            if spec.keys_only:
                batch = [(k, b"") for k in it.read_keys(torn.records, reverse=reverse)]
            else:
                batch = it.read_entries(torn.records, reverse=reverse)
    if not batch or batch[0][0] != torn.first:
        return
    data = render(batch)
    if len(data) != torn.size:
        return
    _write_all(out_fd, memoryview(data)[torn.written :])
    r.cut = False
    r.output_bytes += len(data)
    r.stats.add(batch)


def count_parallel(
    db_path: Path, spec: ReadSpec, *, workers: int, stopper: Stopper
) -> ParallelResult | None:
    """Count `spec`'s records with `workers` forked processes, chunks side by side; the total is
    `counted`. None when the workers' views differ (the caller counts in one process)."""
    return export_parallel(
        db_path, spec, None, -1, workers=workers, where="", stopper=stopper, stats=ScanStats()
    )


class _Crew:
    """The parent's side of the workers: pids, status pipes, command pipes."""

    def __init__(self) -> None:
        self.pids: list[int] = []  # not yet reaped
        self.pid_of: dict[int, int] = {}  # status fd -> pid
        self.inboxes: dict[int, _Inbox] = {}  # by status fd
        self.commands: dict[int, int] = {}  # status fd -> command fd

    def add(self, pid: int, inbox: _Inbox, commands: int) -> None:
        self.pids.append(pid)
        self.pid_of[inbox.fd] = pid
        self.inboxes[inbox.fd] = inbox
        self.commands[inbox.fd] = commands

    def reap(self, worker: int) -> int:
        """Wait for the worker whose status pipe has ended; its wait status."""
        pid = self.pid_of[worker]
        if pid not in self.pids:
            return 0
        self.pids.remove(pid)  # never signal a reaped pid: the number may be reused
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 0

    def fds(self) -> list[int]:
        return [*self.inboxes, *self.commands.values()]

    def command(self, worker: int, kind: bytes, number: int = 0) -> None:
        with contextlib.suppress(BrokenPipeError):  # the worker has gone: its status says why
            _write_all(self.commands[worker], _COMMAND.pack(kind, number))

    def stop(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)

    def end(self, *, hurry: bool = False) -> None:
        """Stop and reap every worker. `hurry` (the parent is being interrupted) asks twice, which
        also ends a write blocked on a reader that stopped reading; a worker still there after
        `_REAP_WAIT` seconds is killed."""
        self.stop()
        if hurry:
            self.stop()
        deadline = time.monotonic() + _REAP_WAIT
        for pid in self.pids:
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(pid, os.WNOHANG) == (0, 0):
                    if time.monotonic() > deadline:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                        break
                    time.sleep(0.01)
        for fd in self.fds():
            os.close(fd)
        self.pids.clear()
        self.inboxes.clear()
        self.commands.clear()


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
    crew: _Crew,
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
        readable, _, _ = select.select(open_fds, [], [], _POLL)
        for fd in readable:
            inbox = crew.inboxes[fd]
            for message in inbox.read():
                kind = message[0]
                if kind in ("done", "closed", "error", "bug"):
                    last_word.add(fd)
                if kind == "writing":
                    writing[fd] = (message, _framed_size(message))
                elif kind == "ready":
                    ready[fd] = (message[1], message[2], message[3])
                elif kind == "next":
                    hand_out(fd)
                elif kind == "wrote":
                    writing.pop(fd, None)
                    _, number, final, records, kb, vb, pages, last, size = message
                    stats.records += records
                    stats.key_bytes += kb
                    stats.value_bytes += vb
                    stats.pages += pages
                    result.output_bytes += size
                    if last is not None:
                        stats.last_key = last  # writes come in output order
                    if progressed is not None and records:
                        progressed(records)
                    if final:
                        turn = number + 1
                        if turn in owner:
                            crew.command(owner[turn], b"t", turn)
                elif kind == "counted":
                    result.counted += message[1]
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
                total = _dead_wchar(crew.pid_of[fd]) if announced is not None else -1
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
