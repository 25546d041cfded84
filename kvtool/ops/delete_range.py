"""Delete-range: remove every key of [start, end) with one range tombstone, or count them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvtool.engine import BYTEWISE, DEFAULT_CF, Database, KeyOrder, OpenMode, key_order, open_db
from kvtool.errors import UsageError
from kvtool.stream import count_steps


@dataclass(frozen=True)
class DeleteRangeResult:
    """`records` is how many keys the range held: deleted, or with `dry_run` left in place."""

    records: int
    dry_run: bool
    elapsed: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "records_in_range": self.records,
            "deleted": 0 if self.dry_run else self.records,
            "dry_run": self.dry_run,
            "elapsed_s": round(self.elapsed, 3),
        }


def _count(db: Database, start: bytes, end: bytes, cf: str | None) -> int:
    with db.iterator(cf, lower=start, upper=end) as it:
        it.seek(start)
        return sum(count_steps(it))


def _check_order(order: KeyOrder, start: bytes, end: bytes) -> None:
    """[start, end) in the column family's key order (its comparator) must hold keys."""
    if order.known and not order.lt(start, end):
        raise UsageError(
            "--start must sort before --end (the range is [start, end))"
            + ("" if order.kind == "bytewise" else f" in this database's key order, {order.name}")
        )


def delete_range(
    path: Path,
    start: bytes,
    end: bytes,
    *,
    cf: str = DEFAULT_CF,
    dry_run: bool = False,
    wait_lock: float = 0.0,
    force: bool = False,
) -> DeleteRangeResult:
    """Delete the keys of [start, end) (end exclusive) and say how many there were.

    The count and the deletion happen under the database's LOCK, so no other process can add
    keys in between. `dry_run` opens the database read-only, counts, and writes nothing.
    """
    if key_order(path, cf).kind == "bytewise":
        _check_order(BYTEWISE, start, end)  # at once; other orders once a write is allowed
    column = None if cf == DEFAULT_CF else cf
    started = time.monotonic()
    if dry_run:
        with open_db(path, OpenMode.READ_ONLY) as db:
            _check_order(db.key_order(column), start, end)
            count = _count(db, start, end, column)
        return DeleteRangeResult(count, True, time.monotonic() - started)
    with open_db(path, OpenMode.READ_WRITE, wait_lock=wait_lock, force=force) as db:
        _check_order(db.key_order(column), start, end)
        count = _count(db, start, end, column)
        if count:
            db.delete_range(start, end, column)
            # Persist the tombstone in an SST now: it is what other tools and copies will read.
            db.flush(column)
    return DeleteRangeResult(count, False, time.monotonic() - started)
