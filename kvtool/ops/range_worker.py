"""One forked range worker (see kvtool.ops.export_parallel): takes chunks from the parent, reads
and renders each, and writes each in its turn; and the pipe protocol both sides speak."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import select
import signal
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from kvtool.engine import Database, OpenMode, open_db
from kvtool.errors import STOP_SIGNALS, KvtoolError
from kvtool.formats.jsonl import Render
from kvtool.ops.range_plan import BUFFER_LIMIT, Chunk, Tally, plan_chunks
from kvtool.stream import ReadSpec, ScanStats, TokenBucket, count_marked, count_step, read_stage
from kvtool.stream.pipeline import Batch

POLL = 0.05  # seconds between the parent's checks for signals and the deadline
LEN = struct.Struct(">I")
COMMAND = struct.Struct(">ci")  # to a worker: c take chunk N, t write N now, e none left, x stop


def send(fd: int, message: Any) -> None:
    data = pickle.dumps(message)
    write_fd(fd, LEN.pack(len(data)) + data)


def write_fd(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def parse_wchar(io: bytes) -> int:
    """The `wchar` figure of a /proc/.../io text (-1 if absent)."""
    for line in io.splitlines():
        if line.startswith(b"wchar:"):
            return int(line.split()[1])
    return -1


def dead_wchar(pid: int) -> int:
    """What a worker's main thread wrote in all, read after it died and before it is reaped."""
    try:
        with open(f"/proc/{pid}/task/{pid}/io", "rb") as f:
            return parse_wchar(f.read())
    except OSError:
        return -1


def framed_size(message: Any) -> int:
    return LEN.size + len(pickle.dumps(message))


class Inbox:
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
        while len(self.buffer) >= LEN.size:
            (size,) = LEN.unpack_from(self.buffer)
            if len(self.buffer) < LEN.size + size:
                break
            out.append(pickle.loads(self.buffer[LEN.size : LEN.size + size]))
            self.buffer = self.buffer[LEN.size + size :]
        return out


# -- the worker -----------------------------------------------------------------------------------
@dataclass
class Job:
    db_path: Path
    spec: ReadSpec
    render: Render | None  # None: count the chunks instead
    out_fd: int
    workers: int
    where: str
    tally: Tally | None = None  # reduce the chunks to partials instead (render is None)


class Stop(Exception):
    """The parent asked this worker to stop."""


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


class Worker:
    """One forked worker: takes chunks from the parent, reads and renders each, and writes each
    when the parent gives it that chunk's turn (once every earlier chunk is written).

    It does not wait for a turn to read on: finished chunks wait in memory while it reads the
    next, up to BUFFER_LIMIT bytes; only then does it wait. The chunk that holds the turn is
    written as it is read.
    """

    def __init__(self, job: Job, index: int, commands: int, status: int) -> None:
        self.job, self.index = job, index
        self.commands, self.status = commands, status
        self.stop = False
        self.parent = os.getppid()
        self.inbox = b""
        self.assigned: int | None = None
        self.no_more = False
        self.current: int | None = None  # the chunk being read
        self.turn: int | None = None  # the chunk of ours that may be written now
        self.waiting: dict[int, Written] = {}  # read chunks waiting for their turn
        self.buffered = 0
        self.io_fd: int | None = None  # /proc/self/task/TID/io, for `wchar` (see the module doc)

    def _note_stop(self, _signum: int, _frame: Any) -> None:
        # Never raises: a batch being written is finished (a blocked write too), never torn.
        self.stop = True

    def _wchar(self) -> int:
        """Bytes this thread has written so far, by the kernel's count (-1 if unknown)."""
        if self.io_fd is None:
            return -1
        try:
            return parse_wchar(os.pread(self.io_fd, 4096, 0))
        except OSError:
            return -1

    def _check(self) -> None:
        if self.stop or os.getppid() != self.parent:
            raise Stop

    def _poll(self, block: bool) -> None:
        """Act on the parent's commands; with `block`, wait for at least one."""
        while True:
            self._check()
            ready, _, _ = select.select([self.commands], [], [], POLL if block else 0)
            if ready:
                data = os.read(self.commands, 4096)
                if not data:
                    raise Stop
                self.inbox += data
            handled = False
            while len(self.inbox) >= COMMAND.size:
                kind, number = COMMAND.unpack_from(self.inbox)
                self.inbox = self.inbox[COMMAND.size :]
                handled = True
                if kind == b"x":
                    raise Stop
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

    def _write(self, number: int, chunk: Written, *, final: bool) -> None:
        """Write the chunk's batches in order, each announced before and reported after it is
        written; a stop between two batches ends the chunk there (the parent has the cursor)."""
        parts = chunk.parts
        for i, part in enumerate(parts):
            if self.stop:
                raise Stop
            last = final and i == len(parts) - 1
            before = self._wchar()
            records = part.stats.records
            send(self.status, ("writing", number, part.first, records, len(part.data), before))
            write_fd(self.job.out_fd, part.data)
            send(self.status, ("wrote", number, last, part.stats, len(part.data)))
        if final and not parts:
            send(self.status, ("wrote", number, True, ScanStats(), 0))

    def run(self) -> NoReturn:
        code = 0
        try:
            for sig in STOP_SIGNALS:  # the parent decides how to stop
                signal.signal(sig, signal.SIG_IGN)
            signal.signal(signal.SIGUSR1, self._note_stop)
            with contextlib.suppress(OSError):
                self.io_fd = os.open(f"/proc/self/task/{os.getpid()}/io", os.O_RDONLY)
            self._run()
        except Stop:
            pass
        except BrokenPipeError:
            send(self.status, ("closed",))
        except OSError as exc:
            message = f"writing {self.job.where}: {exc.strerror or exc}"
            send(self.status, ("error", "StorageError", message, None))
        except KvtoolError as exc:
            send(self.status, ("error", type(exc).__name__, exc.message, exc.hint))
        except BaseException as exc:  # a bug: report it, never return into the parent's code
            code = 1
            with contextlib.suppress(BaseException):
                send(self.status, ("bug", f"{type(exc).__name__}: {exc}"))
        finally:
            os._exit(code)

    def _run(self) -> None:
        job = self.job
        spec = job.spec
        with open_db(job.db_path, OpenMode.READ_ONLY) as db:
            if job.tally is not None:
                chunks, estimate = job.tally.plan(db), None
            else:
                chunks = plan_chunks(db.live_files(), spec, db.key_order(spec.krange.cf))
                estimate = db.property("rocksdb.estimate-num-keys", spec.krange.cf)
            send(self.status, ("ready", db.sequence_number(), chunks, estimate))
            while True:
                while self.assigned is None and not self.no_more:
                    self._poll(block=True)
                if self.assigned is None:
                    break
                number, self.assigned = self.assigned, None
                if job.tally is not None:
                    reduced = job.tally.reduce(db, chunks[number], self._check)
                    send(self.status, ("reduced", number, *reduced))
                elif job.render is None:
                    self._count(db, number, chunks[number])
                else:
                    self._chunk(db, number, chunks[number])
                while self.buffered >= BUFFER_LIMIT:
                    self._poll(block=True)
                send(self.status, ("next",))
        while self.waiting:  # the database is closed: only writes are left
            self._poll(block=True)
        send(self.status, ("done",))

    def _count(self, db: Database, number: int, bounds: Chunk) -> None:
        """Count one chunk in the scan's direction and report it, with the key of the last
        record counted; a stop reports how far it got (the parent's cursor resumes there)."""
        spec = self.job.spec
        reverse = spec.krange.reverse
        total, last = 0, None
        rate = spec.rate / self.job.workers if spec.rate else None  # the workers share --rate
        bucket = TokenBucket(rate) if rate else None
        with db.bounded(spec.krange.cf, bounds) as it:
            if reverse:
                it.seek_to_last()
            else:
                it.seek_to_first()
            try:
                # The first step comes before any check: a stopped chunk counted something.
                for n, key in count_marked(it, reverse=reverse, step=count_step(rate)):
                    total, last = total + n, key
                    if bucket is not None:
                        self._sleep(bucket.take(n))
                    self._check()
            except Stop:
                send(self.status, ("counted", number, total, last, False))
                raise
        send(self.status, ("counted", number, total, last, True))

    def _sleep(self, seconds: float) -> None:
        """Wait `seconds` (pacing), waking at once when the parent asks to stop."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._check()
            time.sleep(min(left, POLL))

    def _chunk(self, db: Database, number: int, bounds: Chunk) -> None:
        render = self.job.render
        assert render is not None
        self.current = number
        chunk = Written()
        # The plan folded the spec's `after` into the chunks' bounds.
        spec = dataclasses.replace(self.job.spec, after=None)
        with read_stage(db, spec, bounds) as batches:
            # A Stop drops what was read and not yet written: the cursor is before it.
            for batch in batches:
                self._check()
                part = Part.of(batch, render(batch))
                chunk.parts.append(part)
                chunk.size += len(part.data)
                self.buffered += len(part.data)
                self._poll(block=False)
                while self.turn != number and self.buffered >= BUFFER_LIMIT:
                    self._poll(block=True)
                if self.turn == number:
                    self._write(number, chunk, final=False)
                    self.buffered -= chunk.size
                    chunk = Written()
        self.current = None
        if self.turn == number:
            self.buffered -= chunk.size
            self._write(number, chunk, final=True)
        else:
            self.waiting[number] = chunk


REAP_WAIT = 5.0  # seconds a stopped worker gets to end before the parent's Crew kills it


class Crew:
    """The parent's side of the workers: pids, status pipes, command pipes."""

    def __init__(self) -> None:
        self.pids: list[int] = []  # not yet reaped
        self.pid_of: dict[int, int] = {}  # status fd -> pid
        self.inboxes: dict[int, Inbox] = {}  # by status fd
        self.commands: dict[int, int] = {}  # status fd -> command fd

    def add(self, pid: int, inbox: Inbox, commands: int) -> None:
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
            write_fd(self.commands[worker], COMMAND.pack(kind, number))

    def stop(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)

    def end(self, *, hurry: bool = False) -> None:
        """Stop and reap every worker; one still there after `REAP_WAIT` seconds is killed.
        `hurry` (the parent failed, or a third signal asked to stop at once) kills them now: a
        worker never abandons a write by itself, so one blocked on a reader that stopped
        reading would wait for it forever."""
        self.stop()
        deadline = time.monotonic() + (0 if hurry else REAP_WAIT)
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
