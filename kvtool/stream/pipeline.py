"""The record stream's stages as plain generators of batches (lists of (key, value) records)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from kvtool.engine import EngineIterator, Record, position
from kvtool.stream.pacing import Clock, Stopper, TokenBucket

Batch = list[Record]

_first, _second = itemgetter(0), itemgetter(1)

# Paced runs hand out slices this many times per second, so waits stay short and even.
_PACED_SLICES_PER_SECOND = 50


def read_batches(
    it: EngineIterator,
    *,
    reverse: bool = False,
    after: bytes | None = None,
    batch_size: int = 1024,
    keys_only: bool = False,
    lower: bytes | None = None,
    upper: bytes | None = None,
) -> Iterator[Batch]:
    """Batches of [lower, upper) from `it` (which we position), strictly after `after`.

    The caller owns `it`. The bounds are enforced here as well as in the iterator: rocksdict
    0.3.29 ignores `iterate_lower_bound` (seek_to_first and prev() run past it), so the first
    seek goes to the bound and each batch is cut where it crosses one (one compare per batch).
    """
    if after is not None:
        position(it, reverse=reverse, after=after)
    elif not reverse and lower is not None:
        it.seek(lower)
    elif reverse and upper is not None:
        position(it, reverse=True, after=upper)  # the last key strictly before `upper`
    else:
        position(it, reverse=reverse, after=None)
    # The bound the scan runs towards; `outside(key)` is monotonic along the scan.
    stop = lower if reverse else upper
    while True:
        if keys_only:
            keys = it.read_keys(batch_size, reverse=reverse)
            batch = [(key, b"") for key in keys]
        else:
            batch = it.read_batch(batch_size, reverse=reverse)
        if not batch:
            return
        if stop is not None:
            last = batch[-1][0]
            if (last < stop) if reverse else (last >= stop):
                cut = bisect_left(batch, True, key=_outside(stop, reverse))
                if cut:
                    yield batch[:cut]
                return
        yield batch


def _outside(stop: bytes, reverse: bool) -> Callable[[Record], bool]:
    if reverse:
        return lambda record: record[0] < stop
    return lambda record: record[0] >= stop


def limited(batches: Iterable[Batch], limit: int | None) -> Iterator[Batch]:
    """At most `limit` records in all."""
    if limit is None:
        yield from batches
        return
    left = limit
    if left <= 0:
        return
    for batch in batches:
        if len(batch) >= left:
            yield batch[:left]
            return
        left -= len(batch)
        yield batch


def paced(
    batches: Iterable[Batch],
    *,
    records: TokenBucket | None = None,
    data: TokenBucket | None = None,
    stopper: Stopper,
    stats: ScanStats | None = None,
) -> Iterator[Batch]:
    """Slices of each batch, each let through only when the buckets allow (records/s, bytes/s)."""
    if records is None and data is None:
        yield from batches
        return
    for batch in batches:
        size = len(batch)
        step = size
        if records is not None:
            step = min(step, max(1, int(records.rate / _PACED_SLICES_PER_SECOND)))
        if data is not None:
            per_record = max(1.0, sum(len(k) + len(v) for k, v in batch) / size)
            step = min(step, max(1, int(data.rate / _PACED_SLICES_PER_SECOND / per_record)))
        for i in range(0, size, step):
            chunk = batch[i : i + step]
            wait = 0.0
            if records is not None:
                wait = records.take(len(chunk))
            if data is not None:
                wait = max(wait, data.take(sum(len(k) + len(v) for k, v in chunk)))
            if wait > 0:
                began = time.monotonic()
                try:
                    stopper.sleep(wait)
                finally:
                    if stats is not None:
                        stats.rate_wait += time.monotonic() - began
            yield chunk


@dataclass
class ScanStats:
    """What a run read and emitted; `last_key` is the last record the consumer took."""

    records: int = 0
    key_bytes: int = 0
    value_bytes: int = 0
    pages: int = 0
    rate_wait: float = 0.0
    last_key: bytes | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    clock: Clock = field(default=time.monotonic, repr=False)

    def add(self, batch: Batch) -> None:
        if not batch:
            return
        self.records += len(batch)
        self.key_bytes += sum(map(len, map(_first, batch)))
        self.value_bytes += sum(map(len, map(_second, batch)))
        self.pages += 1
        self.last_key = batch[-1][0]

    def finish(self) -> None:
        self.ended = self.clock()

    @property
    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else self.clock()) - self.started

    def as_dict(self, **extra: Any) -> dict[str, Any]:
        elapsed = self.elapsed
        total = self.key_bytes + self.value_bytes
        return {
            "records": self.records,
            "key_bytes": self.key_bytes,
            "value_bytes": self.value_bytes,
            "pages": self.pages,
            "elapsed_s": round(elapsed, 3),
            "records_per_s": round(self.records / elapsed, 1) if elapsed > 0 else 0.0,
            "mb_per_s": round(total / elapsed / 1e6, 3) if elapsed > 0 else 0.0,
            "rate_wait_s": round(self.rate_wait, 3),
            **extra,
        }


def tapped(
    batches: Iterable[Batch], stats: ScanStats, stopper: Stopper | None = None
) -> Generator[Batch, None, None]:
    """Stop here if a stop is due, else hand the batch on and count it once the consumer is back.

    Counting after the `yield` returns means a batch the consumer failed to write is not counted,
    so `stats.last_key` is always the last record really delivered: the resume point.
    """
    for batch in batches:
        if stopper is not None:
            stopper.check()
        yield batch
        stats.add(batch)
