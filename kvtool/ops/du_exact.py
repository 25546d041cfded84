"""Exact `du`: every record of each column family, read by forked range workers side by side
(each reduces its chunks to partial usages the parent merges) or through one read-only open.

The workers (kvtool.ops.range_coordinator, in the mode `UsageTally`) plan chunks over every
column family at once, so one run reads one point in time as one process does: the run goes
ahead only if every worker's view has the same sequence number and plan, else it reads in one
process. A partial is a chunk's groups, value-size histogram and largest-record candidates;
groups and histograms add up, and the largest records are the first `top` of the union by
(bytes descending, key ascending), the order the one-process run keeps (du.Accumulator): the
merged report equals one process's, field by field.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from kvtool.engine import Bounds, Database, OpenMode, open_db
from kvtool.engine.ondisk import sst_bytes
from kvtool.errors import KvtoolError, StoppedError, UsageError
from kvtool.ops.du import (
    Accumulator,
    CfUsage,
    Group,
    Grouping,
    Usage,
    add_up,
    largest_first,
    table_usage,
)
from kvtool.ops.range_coordinator import Coordinator, run_workers
from kvtool.ops.range_plan import MIN_SST_BYTES, WORKERS, plan_chunks
from kvtool.ops.range_worker import Mode, Worker
from kvtool.stream import KeyRange, ReadSpec, Stopper, StopRequested

BATCH = 4096  # records an exact read takes from the engine at a time

# (index of the column family in the run, its groups as {prefix: (records, key bytes, value
# bytes)}, value-size buckets, largest-record candidates)
Partial = tuple[
    int, dict[bytes, tuple[int, int, int]], dict[int, int], list[tuple[int, bytes, int]]
]
TallyChunk = tuple[int, str, Bounds]  # (index of the column family, its name, bounds)


def exact_usage(
    db_path: Path,
    grouping: Grouping,
    *,
    cfs: list[str] | None = None,
    top: int = 10,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> Usage:
    """Read every record of each column family (`cfs`, default all): with `workers` forked
    processes (None: 2 on a multi-core machine for a database over 64 MB of SST files, as
    `count` chooses; 1: one process), or in one process when the workers' views differ.
    A deadline or a stop signal raises StoppedError: a stopped run has no report."""
    try:
        with Stopper() as stopper:
            out = None
            count = worker_count(workers, db_path)
            if count > 1:
                out = parallel_usage(db_path, grouping, cfs, top, count, stopper, progress)
            if out is None:
                out = _one_process(db_path, grouping, cfs, top, stopper, progress)
            tables, notes = table_usage(db_path)
            stopper.check()  # a signal that came after the last read stops the run too
    except StopRequested as exc:
        raise StoppedError(
            f"{exc.reason} before du read every record: no report (it would be incomplete)",
            exit_code=exc.exit_code,
        ) from None
    return Usage(db_path, "exact", None, out, tables, notes=notes)


def worker_count(workers: int | None, db_path: Path) -> int:
    """`workers` when given (1 or less: one process), else WORKERS on a machine with two cores
    or more and MIN_SST_BYTES of SST files (the rule of export and count); 1 without fork."""
    if (workers is not None and workers <= 1) or not hasattr(os, "fork"):
        return 1
    if workers is None and ((os.cpu_count() or 1) < 2 or sst_bytes(db_path) < MIN_SST_BYTES):
        return 1
    return workers or WORKERS


def _one_process(
    db_path: Path,
    grouping: Grouping,
    cfs: list[str] | None,
    top: int,
    stopper: Stopper,
    progress: Callable[[int], None] | None,
) -> list[CfUsage]:
    group_of = grouping.function()
    out: list[CfUsage] = []
    with open_db(db_path, OpenMode.READ_ONLY) as db:
        for name in _names(db, cfs):
            usage = CfUsage(name)
            known = db.key_order(name).known
            acc = Accumulator(usage, group_of, top, lexicographic=known)
            with db.iterator(name) as it:
                it.seek_to_first()
                # Every column of an entity: its bytes are what export writes (read_batch
                # would give only its default column, 0 bytes for most entities).
                while batch := it.read_entries(BATCH):
                    n = acc.add(batch)
                    if progress is not None:
                        progress(n)
                    stopper.check()
            acc.finish()
            add_up(usage)
            out.append(usage)
    return out


def _names(db: Database, cfs: list[str] | None) -> list[str]:
    for name in cfs or ():
        if name not in db.column_families:
            raise UsageError(f"no column family {name!r}")
    return cfs or db.column_families


class UsageTally(Mode):
    """What range workers make of `du`'s chunks: chunks of every column family, each reduced to
    a Partial sent to the parent; a worker that dies fails the run (there is no cursor)."""

    resumable = False

    def __init__(
        self,
        cfs: list[str] | None,
        grouping: Grouping,
        top: int,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.cfs, self.grouping, self.top = cfs, grouping, top
        self.progress = progress
        self.partials: dict[int, Partial] = {}  # in the parent, by chunk number

    def plan(
        self, db: Database, spec: ReadSpec | None = None, workers: int = 1
    ) -> list[TallyChunk]:
        """(index, column family, bounds) of each chunk; a column family whose key order
        kvtool cannot sort is one chunk. The last column family's last chunks are cut finer
        for `workers` (see plan_chunks)."""
        files = db.live_files()
        chunks: list[TallyChunk] = []
        names = _names(db, self.cfs)
        for index, name in enumerate(names):
            order = db.key_order(name)
            if not order.known:
                chunks.append((index, name, Bounds()))
                continue
            cf_spec = ReadSpec(krange=KeyRange(cf=name))
            tail = workers if index == len(names) - 1 else 1
            cuts = plan_chunks(files, cf_spec, order, workers=tail)
            chunks += [(index, name, bounds) for bounds in cuts]
        return chunks

    def estimate(self, db: Database, spec: ReadSpec) -> str | None:
        return None

    def chunk(self, worker: Worker, db: Database, number: int, bounds: TallyChunk) -> None:
        worker.send(("reduced", number, *self.reduce(db, bounds, worker.check)))

    def reduce(
        self, db: Database, chunk: TallyChunk, check: Callable[[], None]
    ) -> tuple[int, Partial]:
        """(records read, the chunk's partial); `check()` raises when the worker must stop."""
        index, name, bounds = chunk
        usage = CfUsage(name)
        known = db.key_order(name).known
        acc = Accumulator(usage, self.grouping.function(), self.top, lexicographic=known)
        records = 0
        with db.bounded(name, bounds) as it:
            it.seek_to_first()
            while batch := it.read_entries(BATCH):  # every column, as in _one_process
                records += acc.add(batch)
                check()
        acc.finish()
        groups = {p: (g.records, g.key_bytes, g.value_bytes) for p, g in usage.groups.items()}
        return records, (index, groups, usage.value_sizes, usage.largest)

    def take(self, run: Coordinator, worker: int, message: tuple[Any, ...]) -> None:
        if message[0] != "reduced":
            super().take(run, worker, message)
        _, number, records, self.partials[number] = message
        if self.progress is not None:
            self.progress(records)


def parallel_usage(
    db_path: Path,
    grouping: Grouping,
    cfs: list[str] | None,
    top: int,
    workers: int,
    stopper: Stopper,
    progress: Callable[[int], None] | None,
) -> list[CfUsage] | None:
    """Every column family's usage from `workers` forked processes; None when their views of
    the database differ (the caller reads in one process). Raises StopRequested on a stop and
    the workers' error on a failure (a killed worker: StorageError, exit 74)."""
    tally = UsageTally(cfs, grouping, top, progress)
    run = run_workers(db_path, ReadSpec(), tally, workers=workers, stopper=stopper)
    if run is None:
        return None
    if run.error is not None:
        raise run.error
    if run.stopped is not None:
        raise run.stopped
    plan = cast(list[TallyChunk], run.plan)
    if len(tally.partials) != len(plan):  # never seen: the workers said they were done
        raise KvtoolError("a worker process ended without reporting every chunk")
    usages: dict[int, CfUsage] = {}
    for number, (index, name, _) in enumerate(plan):
        usage = usages.setdefault(index, CfUsage(name))
        merge(usage, tally.partials[number])
    for usage in usages.values():
        usage.largest.sort(key=largest_first)
        del usage.largest[top:]
        add_up(usage)
    return [usages[i] for i in sorted(usages)]


def merge(usage: CfUsage, partial: Partial) -> None:
    """Add a chunk's partial to its column family's usage (the largest records stay all
    candidates: the caller keeps the first `top`)."""
    _, groups, sizes, largest = partial
    mine = usage.groups
    for prefix, (records, key_bytes, value_bytes) in groups.items():
        group = mine.get(prefix)
        if group is None:
            group = mine[prefix] = Group()
        group.records += records
        group.key_bytes += key_bytes
        group.value_bytes += value_bytes
    for bucket, n in sizes.items():
        usage.value_sizes[bucket] = usage.value_sizes.get(bucket, 0) + n
    usage.largest.extend(largest)
