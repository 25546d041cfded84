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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvtool.engine import Database
from kvtool.errors import KvtoolError
from kvtool.formats.dataset import Dataset
from kvtool.formats.parquet import PartSchema
from kvtool.formats.parts import Part, PartSeries
from kvtool.ops.range_coordinator import Coordinator, run_workers
from kvtool.ops.range_plan import Chunk
from kvtool.ops.range_worker import Mode, Stop, Worker
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


class WriteParts(Mode):
    """Parquet: each chunk written as part files of its own, each reported when closed; a stop
    closes the part being written, so a chunk holds a prefix of its records in whole files."""

    chunk_records = CHUNK_RECORDS

    def __init__(
        self,
        schema: PartSchema,
        root: Path,
        part_bytes: int,
        partition_by_prefix: int | None,
        progressed: Callable[[int], None] | None,
    ) -> None:
        self.schema, self.root = schema, root
        self.part_bytes, self.partition_by_prefix = part_bytes, partition_by_prefix
        self.progressed = progressed
        self.chunks: dict[int, _Chunk] = {}  # in the parent: what the workers reported

    def failure(self, exc: OSError) -> str:
        return f"writing parts: {exc}"

    def chunk(self, worker: Worker, db: Database, number: int, bounds: Chunk) -> None:
        count = 0

        def name() -> str:
            nonlocal count
            count += 1
            return f"chunk-{number:05d}-{count:03d}.parquet"

        def closed(part: Part) -> None:
            worker.send(("part", number, part))

        series = PartSeries(
            self.root,
            self.schema,
            name=name,
            closed=closed,
            part_bytes=self.part_bytes,
            partition_by_prefix=self.partition_by_prefix,
        )
        stats = ScanStats()
        spec = dataclasses.replace(worker.job.spec, after=None)  # the plan folded `after` in
        try:
            with read_stage(db, spec, bounds) as batches:
                for batch in batches:
                    worker.check()
                    series.write(batch)
                    stats.add(batch)
            series.close()
        except Stop:
            series.close()  # the records read so far, in complete files
            worker.send(("chunk", number, stats, False))
            raise
        except BaseException:
            series.discard()
            raise
        worker.send(("chunk", number, stats, True))

    def take(self, run: Coordinator, worker: int, message: tuple[Any, ...]) -> None:
        kind, number = message[0], message[1]
        chunk = self.chunks.setdefault(number, _Chunk())
        if kind == "part":
            part = message[2]
            chunk.parts.append(part)
            if self.progressed is not None:
                self.progressed(part.records)
        elif kind == "chunk":
            chunk.stats, chunk.whole = message[2], message[3]
        else:
            super().take(run, worker, message)


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
    mode = WriteParts(schema, root, part_bytes, partition_by_prefix, progressed)
    run = run_workers(db_path, spec, mode, workers=workers, stopper=stopper, started=started)
    if run is None or run.disagreed:  # the views differ (even after a stop): nothing written
        return None
    return ParallelOutcome(mode.chunks, run.plan, run.sequence, run.stopped, run.error)


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
