"""`count`: the exact number of records in a range (stepping an iterator natively), or the
engine's estimate for a whole column family."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvtool.engine import OpenMode, open_db
from kvtool.errors import StoppedError, UsageError
from kvtool.stream import ReadSpec, Stopper, StopRequested, count_steps


@dataclass
class CountResult:
    count: int
    estimated: bool
    elapsed: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "estimated": self.estimated,
            "elapsed_s": round(self.elapsed, 3),
        }


def count_records(
    db_path: str | Path, spec: ReadSpec, *, estimate: bool = False, workers: int | None = None
) -> CountResult:
    """Count the records of `spec` (honouring `after`, `limit`, `timeout` and signals).

    A deadline or a signal raises StoppedError with the partial count in its message.
    `workers` > 1 counts chunks of the range in that many forked processes (as export does,
    kvtool.ops.export_parallel); None chooses 2 on a multi-core machine for a database over
    64 MB of SST files. --estimate, --limit and empty ranges are counted in one process, and so
    is a range whose workers' views of the database differ.
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
            if result.stopped is not None:
                raise StoppedError(
                    f"{result.stopped.reason} after counting {result.counted} records "
                    "(the count is incomplete)",
                    exit_code=result.stopped.exit_code,
                )
            return CountResult(result.counted, False, time.monotonic() - began)
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
        # A count does not depend on the direction: always step forward, over the range cut to
        # what comes after `after` in the scan's direction (in the database's key order).
        order = db.key_order(krange.cf)
        bounds = krange.bounds(order)
        if spec.after is not None:
            bounds = order.after(bounds, spec.after, reverse=krange.reverse)
        if order.is_empty(bounds) or spec.limit == 0:
            return CountResult(0, False, time.monotonic() - began)
        with db.bounded(krange.cf, bounds) as it:
            it.seek_to_first()
            try:
                for n in count_steps(it, spec.limit):
                    total += n
                    stopper.check()
            except StopRequested as exc:
                raise StoppedError(
                    f"{exc.reason} after counting {total} records (the count is incomplete)",
                    exit_code=exc.exit_code,
                ) from None
    return CountResult(total, False, time.monotonic() - began)


def _worker_count(workers: int | None, db_path: Path, spec: ReadSpec, estimate: bool) -> int:
    """How many processes count this range (see `count_records`)."""
    if (workers is not None and workers <= 1) or estimate or spec.limit is not None:
        return 1
    from kvtool.ops.range_plan import worker_count

    return worker_count(workers, db_path, spec)
