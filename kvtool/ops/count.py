"""`count`: the exact number of records in a range (stepping an iterator natively), or the
engine's estimate for a whole column family; a stopped count names the cursor after what it
counted, so `count --after CURSOR` counts exactly the rest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kvtool.engine import Database, OpenMode, open_db
from kvtool.errors import StoppedError, UsageError
from kvtool.ops.range_plan import Chunk
from kvtool.ops.range_worker import Mode, Stop, Worker
from kvtool.stream import (
    ReadSpec,
    Stopper,
    StopRequested,
    TokenBucket,
    count_marked,
    count_step,
)

if TYPE_CHECKING:
    from kvtool.ops.range_coordinator import Coordinator


@dataclass
class CountResult:
    count: int
    estimated: bool
    elapsed: float
    # Where a stopped count resumes (`--after`); None when it counted the whole range.
    cursor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "estimated": self.estimated,
            "elapsed_s": round(self.elapsed, 3),
        }

    def stats(self) -> dict[str, Any]:
        """The figures of the run for --stats-file: `as_dict()` and the resume cursor."""
        return {**self.as_dict(), "cursor": self.cursor}


class CountStoppedError(StoppedError):
    """A count stopped by a deadline or a signal; `result` holds the records counted so far and
    the cursor after them (`result.cursor`, also `cursor`)."""

    def __init__(self, stop: StopRequested, result: CountResult) -> None:
        resume = (
            f"; resume with --after {result.cursor}"
            if result.cursor
            else "; nothing was counted: run it again"
        )
        super().__init__(
            f"{stop.reason} after counting {result.count} records (the count is incomplete)"
            + resume,
            exit_code=stop.exit_code,
            cursor=result.cursor,
        )
        self.result = result


def count_records(
    db_path: str | Path, spec: ReadSpec, *, estimate: bool = False, workers: int | None = None
) -> CountResult:
    """Count the records of `spec` (honouring `after`, `limit`, `rate`, `timeout` and signals).

    A deadline or a signal raises CountStoppedError (a StoppedError) with the partial count and
    the cursor after the records counted: the same range with `after` set to it counts exactly
    the rest (the two counts add up to the whole).
    `workers` > 1 counts chunks of the range in that many forked processes (as export does,
    kvtool.ops.export_parallel; `rate` is shared among them); None chooses 2 on a multi-core
    machine for a database over 64 MB of SST files. --estimate, --limit and empty ranges are
    counted in one process, and so is a range whose workers' views of the database differ.
    """
    import time

    began = time.monotonic()
    krange = spec.krange
    count = _worker_count(workers, Path(db_path), spec, estimate)
    if count > 1:
        from kvtool.ops.export_parallel import count_parallel

        with Stopper(spec.timeout) as stopper:
            result = count_parallel(Path(db_path), spec, workers=count, stopper=stopper)
        if result is not None:
            if result.error is not None:
                raise result.error
            counted, end = result.count_prefix()
            outcome = CountResult(counted, False, time.monotonic() - began)
            if result.stopped is not None:
                raise CountStoppedError(result.stopped, _resumable(outcome, spec, end))
            return outcome
    with Stopper(spec.timeout) as stopper, open_db(db_path, OpenMode.READ_ONLY) as db:
        if estimate:
            if krange.bounded or spec.after is not None:
                raise UsageError(
                    "--estimate covers a whole column family",
                    hint="drop --prefix/--start/--end/--after, or count exactly",
                )
            value = db.property("rocksdb.estimate-num-keys", krange.cf)
            n = int(value) if value and value.isdigit() else 0
            if spec.limit is not None:
                n = min(n, spec.limit)
            return CountResult(n, True, time.monotonic() - began)
        total = 0
        last: bytes | None = None
        # Counted in the scan's direction over the range cut to what comes after `after` (in
        # the database's key order), so that the records counted are a prefix of the scan and
        # the last one's key is the cursor for the rest.
        order = db.key_order(krange.cf)
        bounds = krange.bounds(order)
        if spec.after is not None:
            bounds = order.after(bounds, spec.after, reverse=krange.reverse)
        if order.is_empty(bounds) or spec.limit == 0:
            return CountResult(0, False, time.monotonic() - began)
        bucket = TokenBucket(spec.rate) if spec.rate else None
        with db.bounded(krange.cf, bounds) as it:
            if krange.reverse:
                it.seek_to_last()
            else:
                it.seek_to_first()
            try:
                # The first step is taken before any check: a stop counts at least that much,
                # so that it has a cursor to print.
                steps = count_marked(
                    it, spec.limit, reverse=krange.reverse, step=count_step(spec.rate)
                )
                for n, key in steps:
                    total, last = total + n, key
                    if bucket is not None:
                        stopper.sleep(bucket.take(n))
                    stopper.check()
            except StopRequested as exc:
                outcome = CountResult(total, False, time.monotonic() - began)
                raise CountStoppedError(exc, _resumable(outcome, spec, last)) from None
    return CountResult(total, False, time.monotonic() - began)


def _resumable(result: CountResult, spec: ReadSpec, last: bytes | None) -> CountResult:
    """`result` with the cursor after `last` (or after where it began, if it counted nothing)."""
    key = last if last is not None else spec.after
    result.cursor = spec.cursor_after(key)
    return result


def _worker_count(workers: int | None, db_path: Path, spec: ReadSpec, estimate: bool) -> int:
    """How many processes count this range (see `count_records`)."""
    if (workers is not None and workers <= 1) or estimate or spec.limit is not None:
        return 1
    from kvtool.ops.range_plan import worker_count

    return worker_count(workers, db_path, spec)


class Count(Mode):
    """Range workers counting (kvtool.ops.export_parallel.count_parallel): each chunk counted in
    the scan's direction, the workers sharing --rate; a worker that dies fails the count."""

    resumable = False

    def __init__(self) -> None:
        # in the parent: chunk number -> (records, the last one's key, counted to its end)
        self.counts: dict[int, tuple[int, bytes | None, bool]] = {}

    def chunk(self, worker: Worker, db: Database, number: int, bounds: Chunk) -> None:
        """Count one chunk and report it, with the key of the last record counted; a stop
        reports how far it got (the parent's cursor resumes there)."""
        spec = worker.job.spec
        reverse = spec.krange.reverse
        total, last = 0, None
        rate = spec.rate / worker.job.workers if spec.rate else None  # the workers share --rate
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
                        worker.sleep(bucket.take(n))
                    worker.check()
            except Stop:
                worker.send(("counted", number, total, last, False))
                raise
        worker.send(("counted", number, total, last, True))

    def take(self, run: Coordinator, worker: int, message: tuple[Any, ...]) -> None:
        if message[0] != "counted":
            super().take(run, worker, message)
        _, number, records, last, complete = message
        self.counts[number] = (records, last, complete)
