"""The parent's side of range workers: forks them, hands out chunks (and turns, for an ordered
mode), stops them, notices errors and workers that die, and goes ahead only once all agree on one
view of the database (see kvtool.ops.export_parallel); what the chunks produce is the mode's."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kvtool import errors
from kvtool.engine.damage import LEFTOVER_NOTES
from kvtool.errors import ExitCode
from kvtool.ops.range_plan import Chunk
from kvtool.ops.range_worker import COMMAND, POLL, Inbox, Job, Mode, Worker, write_fd
from kvtool.stream import ReadSpec, Stopper, StopRequested

REAP_WAIT = 5.0  # seconds a stopped worker gets to end before the parent's Crew kills it

# Called once the workers agree on a view: the database's estimate of its records (None if it
# has none) and the view's sequence number.
Started = Callable[[int | None, int], None]


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


def run_workers(
    db_path: Path,
    spec: ReadSpec,
    mode: Mode,
    *,
    workers: int,
    stopper: Stopper,
    started: Started | None = None,
) -> Coordinator | None:
    """Read `spec` with `workers` forked processes, each chunk made by `mode`; how the run
    ended, or None, having made nothing, when the workers' views of the database differ."""
    crew = Crew()
    try:
        for index in range(workers):
            status_r, status_w = os.pipe()
            commands_r, commands_w = os.pipe()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the worker: never returns into the parent's code
                try:
                    # Every worker opens the database: the first says what its open notes.
                    LEFTOVER_NOTES.muted = LEFTOVER_NOTES.muted or index > 0
                    os.close(status_r)
                    os.close(commands_w)
                    for fd in crew.fds():
                        os.close(fd)
                    Worker(Job(db_path, spec, workers), mode, commands_r, status_w).run()
                finally:
                    os._exit(1)
            os.close(status_w)
            os.close(commands_r)
            crew.add(pid, Inbox(status_r), commands_w)
        run = Coordinator(crew, mode)
        agreed = run.drive(stopper, started)
    except BaseException:
        crew.end(hurry=True)
        raise
    crew.end()
    return run if agreed else None


def error_named(name: str, message: str, hint: str | None) -> errors.KvtoolError:
    """The error a worker reported by its class name (a stop or bad input is never one)."""
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.KvtoolError)) or cls in (
        errors.StoppedError,
        errors.BadInputError,
    ):
        cls = errors.KvtoolError
    return cls(message, hint=hint)


class Coordinator:
    """The parent's loop over the workers' status pipes, and how the run ended."""

    def __init__(self, crew: Crew, mode: Mode) -> None:
        self.crew, self.mode = crew, mode
        self.plan: list[Chunk] = []
        self.sequence = -1  # the workers' common view
        self.stopped: StopRequested | None = None
        self.error: errors.KvtoolError | None = None
        self.closed = False  # the output's reader went away
        # A stop came before the workers' views were compared, and they differ.
        self.disagreed = False
        self.workers = len(crew.pid_of)
        self.next_chunk = 0
        self.turn = 0  # the chunk that may write now (ordered modes)
        self.owner: dict[int, int] = {}  # chunk -> worker (status fd)
        self.finished = 0  # workers that said "done"
        self.last_word: set[int] = set()  # workers that said how they ended
        self.ended: set[int] = set()

    @property
    def going(self) -> bool:
        """Nothing has stopped or failed the run."""
        return self.error is None and self.stopped is None and not self.closed

    def halt(self) -> None:
        self.crew.stop()
        for worker in self.crew.inboxes:
            self.crew.command(worker, b"x")

    def fail(self, error: errors.KvtoolError) -> None:
        """The run fails with `error` (the first one wins) and every worker stops."""
        if self.error is None:
            self.error = error
        self.halt()

    def hand_out(self, worker: int) -> None:
        number = self.next_chunk
        if number >= len(self.plan) or not self.going:
            self.crew.command(worker, b"e")
            return
        self.owner[number] = worker
        self.crew.command(worker, b"c", number)
        if self.mode.ordered and number == self.turn:
            self.crew.command(worker, b"t", number)
        self.next_chunk += 1

    def passed(self, number: int) -> None:
        """Chunk `number` is written: the next chunk's worker may write it (ordered modes)."""
        self.turn = number + 1
        if self.turn in self.owner:
            self.crew.command(self.owner[self.turn], b"t", self.turn)

    def drive(self, stopper: Stopper, started: Started | None) -> bool:
        """Run until every worker has ended; False (the workers halted) when their views of the
        database differ."""
        ready: dict[int, tuple[int, list[Chunk], str | None]] = {}
        compared = False
        while True:
            if self.going:
                try:
                    stopper.check()
                except StopRequested as exc:
                    self.stopped = exc
                    self.halt()
            inboxes = self.crew.inboxes
            open_fds = [fd for fd, inbox in inboxes.items() if not inbox.closed]
            if not open_fds:
                break
            readable, _, _ = select.select(open_fds, [], [], POLL)
            for fd in readable:
                for message in inboxes[fd].read():
                    if message[0] == "ready":
                        ready[fd] = (message[1], message[2], message[3])
                    else:
                        self._take(fd, message)
                if inboxes[fd].closed and fd not in self.ended:
                    self._ended(fd)
            if not compared and len(ready) == self.workers:
                compared = True
                views = {(seq, tuple(plan)) for seq, plan, _ in ready.values()}
                if len(views) != 1:
                    self.halt()
                    if self.going:
                        return False
                    self.disagreed = True
                    continue
                sequence, plan, estimate = next(iter(ready.values()))
                self.plan, self.sequence = list(plan), sequence
                if started is not None:
                    started(int(estimate) if estimate and estimate.isdigit() else None, sequence)
                for worker in list(inboxes):
                    self.hand_out(worker)
        incomplete = self.mode.ordered and self.turn < len(self.plan)
        if self.going and (self.finished < self.workers or incomplete):
            self.error = errors.KvtoolError("a worker process ended without reporting")
        return True

    def _take(self, worker: int, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind in ("done", "closed", "error", "bug"):
            self.last_word.add(worker)
        if kind == "next":
            self.hand_out(worker)
        elif kind == "done":
            self.finished += 1
        elif kind == "closed":
            self.closed = True
            self.halt()
        elif kind == "error":
            self.fail(error_named(message[1], message[2], message[3]))
        elif kind == "bug":
            self.fail(errors.KvtoolError(f"a worker process failed: {message[1]}"))
        else:
            self.mode.take(self, worker, message)

    def _ended(self, worker: int) -> None:
        """`worker`'s status pipe ended: reap it; one that died without a last word (killed,
        e.g. by the OOM killer) stops the run with exit 74 (or fails it: see Mode.resumable)."""
        self.ended.add(worker)
        pid = self.crew.pid_of[worker]
        self.mode.lost(self, worker, pid)
        status = self.crew.reap(worker)
        if worker in self.last_word or not (os.WIFSIGNALED(status) or os.WEXITSTATUS(status)):
            return
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
        if not self.going:
            pass
        elif self.mode.resumable:  # what was made is kept, with where to resume
            self.stopped = StopRequested(ExitCode.IO_ERROR, message)
        else:
            self.error = errors.StorageError(message)
        self.halt()
