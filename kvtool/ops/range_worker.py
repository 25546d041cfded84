"""A forked range worker's side (see kvtool.ops.export_parallel): the pipe protocol both sides
speak, the worker's main, and `Mode`, the strategy that says what a chunk produces."""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from kvtool.engine import Database, OpenMode, open_db
from kvtool.errors import STOP_SIGNALS, KvtoolError
from kvtool.ops.range_plan import BUFFER_LIMIT, CHUNK_RECORDS, plan_chunks
from kvtool.stream import ReadSpec

if TYPE_CHECKING:
    from kvtool.ops.range_coordinator import Coordinator

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
    workers: int


class Stop(Exception):
    """The parent asked this worker to stop."""


class Mode:
    """What range workers make of their chunks (a strategy): the worker half reads a chunk and
    reports what it made of it; the parent half (see kvtool.ops.range_coordinator) takes those
    reports. One object of it is built in the parent and inherited by every forked worker. The
    machinery around it (commands, stops, errors, dead workers, one view) is not its concern.
    """

    chunk_records = CHUNK_RECORDS  # records a chunk holds (about): the plan's target
    # Chunks are written in turn: the parent grants chunk j's worker the turn (`grant`) once
    # chunk j - 1 is written (the parent half calls `Coordinator.passed`).
    ordered = False
    # A worker that dies stops the run with exit 74 and a cursor; else it fails the run.
    resumable = True

    # -- in a worker
    def begin(self, worker: Worker) -> None:
        """Set up in the forked worker, before the database opens."""

    def plan(self, db: Database, spec: ReadSpec, workers: int = 1) -> list[Any]:
        """The chunks for `workers`, in output order (equal in workers that see one view: the
        parent compares them)."""
        order = db.key_order(spec.krange.cf)
        files = db.live_files()
        return plan_chunks(files, spec, order, target=self.chunk_records, workers=workers)

    def estimate(self, db: Database, spec: ReadSpec) -> str | None:
        """The database's estimate of the records read (for progress; None: none)."""
        return db.property("rocksdb.estimate-num-keys", spec.krange.cf)

    def chunk(self, worker: Worker, db: Database, number: int, bounds: Any) -> None:
        """Read chunk `number` and report it (`worker.send`); `worker.check()` raises Stop when
        the parent asks to stop."""
        raise NotImplementedError

    def grant(self, worker: Worker, number: int) -> None:
        """Chunk `number` (assigned to this worker) may be written now (ordered modes)."""
        raise NotImplementedError

    def held(self) -> int:
        """Bytes made ahead of their turn: the worker takes no chunk while BUFFER_LIMIT are."""
        return 0

    def pending(self) -> bool:
        """Whether chunks are left to write once the database is closed."""
        return False

    def failure(self, exc: OSError) -> str:
        """The message of an OSError the worker met."""
        return str(exc)

    # -- in the parent
    def take(self, run: Coordinator, worker: int, message: tuple[Any, ...]) -> None:
        """A message of this mode's kinds from `worker` (its status fd)."""
        raise NotImplementedError(message[0])

    def lost(self, run: Coordinator, worker: int, pid: int) -> None:
        """`worker`'s status pipe ended; its process `pid` is not yet reaped."""


class Worker:
    """One forked worker's main: takes the chunks the parent hands it and gives each to the mode;
    acts on the parent's commands; reports how it ended, and never returns into the parent's
    code (`run` ends the process)."""

    def __init__(self, job: Job, mode: Mode, commands: int, status: int) -> None:
        self.job, self.mode = job, mode
        self.commands, self.status = commands, status
        self.stop = False
        self.parent = os.getppid()
        self.inbox = b""
        self.assigned: int | None = None
        self.no_more = False

    def _note_stop(self, _signum: int, _frame: Any) -> None:
        # Never raises: a batch being written is finished (a blocked write too), never torn.
        self.stop = True

    def send(self, message: tuple[Any, ...]) -> None:
        send(self.status, message)

    def check(self) -> None:
        if self.stop or os.getppid() != self.parent:
            raise Stop

    def poll(self, block: bool) -> None:
        """Act on the parent's commands; with `block`, wait for at least one."""
        while True:
            self.check()
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
                    self.mode.grant(self, number)
            if handled or not block:
                return

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` (pacing), waking at once when the parent asks to stop."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.check()
            time.sleep(min(left, POLL))

    def run(self) -> NoReturn:
        code = 0
        try:
            for sig in STOP_SIGNALS:  # the parent decides how to stop
                signal.signal(sig, signal.SIG_IGN)
            signal.signal(signal.SIGUSR1, self._note_stop)
            self.mode.begin(self)
            self._run()
        except Stop:
            pass
        except BrokenPipeError:
            send(self.status, ("closed",))
        except OSError as exc:
            send(self.status, ("error", "StorageError", self.mode.failure(exc), None))
        except KvtoolError as exc:
            send(self.status, ("error", type(exc).__name__, exc.message, exc.hint))
        except BaseException as exc:  # a bug: report it, never return into the parent's code
            code = 1
            with contextlib.suppress(BaseException):
                send(self.status, ("bug", f"{type(exc).__name__}: {exc}"))
        finally:
            os._exit(code)

    def _run(self) -> None:
        job, mode = self.job, self.mode
        with open_db(job.db_path, OpenMode.READ_ONLY) as db:
            chunks = mode.plan(db, job.spec, job.workers)
            estimate = mode.estimate(db, job.spec)
            send(self.status, ("ready", db.sequence_number(), chunks, estimate))
            while True:
                while self.assigned is None and not self.no_more:
                    self.poll(block=True)
                if self.assigned is None:
                    break
                number, self.assigned = self.assigned, None
                mode.chunk(self, db, number, chunks[number])
                while mode.held() >= BUFFER_LIMIT:
                    self.poll(block=True)
                send(self.status, ("next",))
        while mode.pending():  # the database is closed: only writes are left
            self.poll(block=True)
        send(self.status, ("done",))
