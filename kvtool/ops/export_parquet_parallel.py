"""Parquet export by range workers: forked processes read chunks of the range side by side, each
chunk written as its own part files; the parent hands out chunks and, at the end, lists in the
manifest the longest run of chunks from the start of the range that are whole, in key order.

Unlike JSON Lines (kvtool.ops.export_parallel) no turn-taking is needed: a chunk's parts are
files of their own (`chunk-NNNNN-KKK.parquet`, renamed to the dataset's `part-NNNNN.parquet`
in key order by the parent). One point in time as there: each worker opens the database itself
(the parent never opens it before forking) and reports its view's sequence number and chunk
plan; the run goes ahead only if all agree, else `export_parquet_parallel` returns None, having
written nothing, and the caller exports in one process.

Stops (deadline, signals) and errors: the parent tells every worker to stop (SIGUSR1, checked
between batches); each closes the part it is writing, so every chunk holds a prefix of its
records in complete files. The dataset then keeps chunks 0..j-1 whole and chunk j's prefix, and
deletes the parts of later chunks: the cursor is after the last record kept, and a resume adds
exactly the rest. A worker that dies (`kill -9`) leaves its open part as `.inprogress`; the
parent deletes it and stops with exit 74 and that cursor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from kvtool import errors
from kvtool.engine import OpenMode, open_db
from kvtool.errors import STOP_SIGNALS, ExitCode, KvtoolError
from kvtool.formats.dataset import Dataset
from kvtool.formats.parquet import PartSchema
from kvtool.formats.parts import Part, PartSeries
from kvtool.ops.range_plan import Chunk, plan_chunks
from kvtool.ops.range_worker import COMMAND, POLL, Crew, Inbox, send
from kvtool.stream import ReadSpec, ScanStats, Stopper, StopRequested, read_stage

# Records a chunk holds (about): a part file of 25-30 MB of the benchmark's 114-byte records,
# and enough chunks on a large database for two workers to finish together.
CHUNK_RECORDS = 250_000


@dataclass
class _Chunk:
    parts: list[Part] = field(default_factory=list)
    stats: ScanStats | None = None  # set when the worker has ended the chunk
    whole: bool = False  # every record of the chunk is in `parts`


@dataclass
class ParallelOutcome:
    """How the workers ended: the chunks' parts (kept or not yet), a stop, an error."""

    chunks: dict[int, _Chunk] = field(default_factory=dict)
    plan: list[Chunk] = field(default_factory=list)
    sequence: int = -1
    stopped: StopRequested | None = None
    error: KvtoolError | None = None


@dataclass
class _Job:
    db_path: Path
    spec: ReadSpec
    schema: PartSchema
    root: Path
    part_bytes: int
    partition_by_prefix: int | None


class _Stop(Exception):
    pass


class _Worker:
    """One forked worker: reads the chunks the parent hands it and writes each as part files."""

    def __init__(self, job: _Job, commands: int, status: int) -> None:
        self.job, self.commands, self.status = job, commands, status
        self.stop = False
        self.parent = os.getppid()
        self.inbox = b""

    def _note_stop(self, signum: int, frame: Any) -> None:
        self.stop = True

    def _check(self) -> None:
        if self.stop or os.getppid() != self.parent:
            raise _Stop

    def _command(self) -> tuple[bytes, int]:
        while len(self.inbox) < COMMAND.size:
            self._check()
            ready, _, _ = select.select([self.commands], [], [], POLL)
            if ready:
                data = os.read(self.commands, 4096)
                if not data:
                    raise _Stop
                self.inbox += data
        kind, number = COMMAND.unpack_from(self.inbox)
        self.inbox = self.inbox[COMMAND.size :]
        if kind == b"x":
            raise _Stop
        return kind, number

    def run(self) -> NoReturn:
        code = 0
        try:
            for sig in STOP_SIGNALS:  # the parent decides how to stop
                signal.signal(sig, signal.SIG_IGN)
            signal.signal(signal.SIGUSR1, self._note_stop)
            self._run()
        except _Stop:
            pass
        except OSError as exc:
            send(self.status, ("error", "StorageError", f"writing parts: {exc}", None))
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
            order = db.key_order(spec.krange.cf)
            plan = plan_chunks(db.live_files(), spec, order, target=CHUNK_RECORDS)
            estimate = db.property("rocksdb.estimate-num-keys", spec.krange.cf)
            send(self.status, ("ready", db.sequence_number(), plan, estimate))
            while True:
                send(self.status, ("next",))
                kind, number = self._command()
                if kind != b"c":
                    break
                self._chunk(db, number, plan[number])
        send(self.status, ("done",))

    def _chunk(self, db: Any, number: int, bounds: Chunk) -> None:
        job = self.job
        count = 0

        def name() -> str:
            nonlocal count
            count += 1
            return f"chunk-{number:05d}-{count:03d}.parquet"

        def closed(part: Part) -> None:
            send(self.status, ("part", number, part))

        series = PartSeries(
            job.root,
            job.schema,
            name=name,
            closed=closed,
            part_bytes=job.part_bytes,
            partition_by_prefix=job.partition_by_prefix,
        )
        stats = ScanStats()
        spec = dataclasses.replace(job.spec, after=None)  # the plan folded `after` in
        try:
            with read_stage(db, spec, bounds) as batches:
                for batch in batches:
                    if self.stop or os.getppid() != self.parent:
                        break
                    series.write(batch)
                    stats.add(batch)
                else:
                    series.close()
                    send(self.status, ("chunk", number, stats, True))
                    return
        except BaseException:
            series.discard()
            raise
        series.close()  # stopped: the records read so far, in complete files
        send(self.status, ("chunk", number, stats, False))
        raise _Stop


def export_parquet_parallel(
    db_path: Path,
    spec: ReadSpec,
    schema: PartSchema,
    root: Path,
    *,
    workers: int,
    stopper: Stopper,
    part_bytes: int,
    partition_by_prefix: int | None,
    started: Callable[[int | None, int], None] | None = None,
    progressed: Callable[[int], None] | None = None,
) -> ParallelOutcome | None:
    """Write `spec` as chunk part files under `root` with `workers` forked processes; None when
    their views differ (nothing written)."""
    job = _Job(db_path, spec, schema, root, part_bytes, partition_by_prefix)
    crew = Crew()
    try:
        for _ in range(workers):
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
                    _Worker(job, commands_r, status_w).run()
                finally:
                    os._exit(1)
            os.close(status_w)
            os.close(commands_r)
            crew.add(pid, Inbox(status_r), commands_w)
        outcome = _coordinate(crew, stopper, started, progressed)
    except BaseException:
        crew.end(hurry=True)
        raise
    crew.end()
    return outcome


def _coordinate(
    crew: Crew,
    stopper: Stopper,
    started: Callable[[int | None, int], None] | None,
    progressed: Callable[[int], None] | None,
) -> ParallelOutcome | None:
    out = ParallelOutcome()
    ready: dict[int, tuple[int, list[Chunk], str | None]] = {}
    asking: list[int] = []
    next_chunk = 0
    going = False
    last_word: set[int] = set()

    def halt() -> None:
        crew.stop()
        for worker in crew.inboxes:
            crew.command(worker, b"x")

    def hand_out(worker: int) -> None:
        nonlocal next_chunk
        if next_chunk >= len(out.plan) or out.error or out.stopped:
            crew.command(worker, b"e")
            return
        out.chunks[next_chunk] = _Chunk()
        crew.command(worker, b"c", next_chunk)
        next_chunk += 1

    while True:
        if out.stopped is None and out.error is None:
            try:
                stopper.check()
            except StopRequested as exc:
                out.stopped = exc
                halt()
        open_fds = [fd for fd, inbox in crew.inboxes.items() if not inbox.closed]
        if not open_fds:
            break
        readable, _, _ = select.select(open_fds, [], [], POLL)
        for fd in readable:
            inbox = crew.inboxes[fd]
            for message in inbox.read():
                kind = message[0]
                if kind in ("done", "error", "bug"):
                    last_word.add(fd)
                if kind == "ready":
                    ready[fd] = (message[1], message[2], message[3])
                elif kind == "next":
                    if going:
                        hand_out(fd)
                    else:
                        asking.append(fd)
                elif kind == "part":
                    _, number, part = message
                    out.chunks[number].parts.append(part)
                    if progressed is not None:
                        progressed(part.records)
                elif kind == "chunk":
                    _, number, stats, whole = message
                    out.chunks[number].stats = stats
                    out.chunks[number].whole = whole
                elif kind in ("error", "bug") and out.error is None:
                    if kind == "bug":
                        out.error = KvtoolError(f"a worker process failed: {message[1]}")
                    else:
                        out.error = _error(message[1], message[2], message[3])
                    halt()
            if inbox.closed:
                status = crew.reap(fd)
                died = os.WIFSIGNALED(status) or os.WEXITSTATUS(status)
                if fd not in last_word and died and out.error is None and out.stopped is None:
                    how = (
                        f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
                        if os.WIFSIGNALED(status)
                        else f"ended with exit code {os.WEXITSTATUS(status)}"
                    )
                    out.stopped = StopRequested(
                        ExitCode.IO_ERROR, f"worker process {crew.pid_of[fd]} {how}"
                    )
                    halt()
        if not going and len(ready) == len(crew.pid_of):
            going = True
            views = {(seq, tuple(plan)) for seq, plan, _ in ready.values()}
            if len(views) != 1:
                halt()
                return None
            out.sequence, plan, estimate = next(iter(ready.values()))
            out.plan = list(plan)
            if started is not None:
                started(int(estimate) if estimate and estimate.isdigit() else None, out.sequence)
            for worker in asking:
                hand_out(worker)
            asking.clear()
    return out


def _error(name: str, message: str, hint: str | None) -> KvtoolError:
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, KvtoolError)) or cls in (
        errors.StoppedError,
        errors.BadInputError,
    ):
        cls = KvtoolError
    return cls(message, hint=hint)


def keep_prefix(dataset: Dataset, outcome: ParallelOutcome, stats: ScanStats) -> bool:
    """List in `dataset` the parts of the chunks from the range's start that are whole, then the
    first unfinished chunk's parts (a prefix of its records); delete every other chunk file.
    Adds the kept records to `stats`; returns whether the whole range was kept."""
    whole = True
    for number in range(len(outcome.plan)):
        chunk = outcome.chunks.get(number)
        if not whole or chunk is None:
            whole = False
            break
        for part in chunk.parts:
            path = dataset.root / part.path
            dataset.adopt(path, part)
            stats.records += part.records
            stats.last_key = bytes.fromhex(part.last_key)
        if chunk.stats is not None:
            stats.key_bytes += chunk.stats.key_bytes
            stats.value_bytes += chunk.stats.value_bytes
            stats.pages += chunk.stats.pages
        whole = chunk.whole
        if not whole:
            break
    kept = {p.path for p in dataset.parts}
    for path in [*dataset.root.rglob("chunk-*")]:
        if str(path.relative_to(dataset.root)) not in kept:
            with contextlib.suppress(OSError):
                path.unlink()
    return whole
