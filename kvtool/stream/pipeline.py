"""The record stream's stages as plain generators of batches (lists of (key, value) records)."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast

from kvtool.engine import EngineIterator, Entry, position
from kvtool.stream.pacing import Clock, Stopper, TokenBucket

# Records: values are bytes, or an Entity where a column-aware read found one.
Batch = list[Entry]

_first, _second = itemgetter(0), itemgetter(1)

# Paced runs hand out slices this many times per second, so waits stay short and even.
_PACED_SLICES_PER_SECOND = 50


# Records a count steps natively between checks for a stop (deadline, signals).
COUNT_STEP = 1 << 16

# A read batch ends at the record that brings its key and value bytes to this (or at its record
# count): with huge values a batch holds a few of them, not `batch_size` (1024 values of 40 MB
# were 40 GB); 100-byte records fill 1024 in 120 KB and never reach it.
BATCH_BYTES = 8 << 20


def count_steps(it: EngineIterator, limit: int | None = None) -> Iterator[int]:
    """The one count loop: the records forward from `it`'s position (the caller places it), up to
    `limit` in all, counted natively COUNT_STEP at a time (a count copies nothing out); yields
    each step's count, so the caller checks for a stop between steps."""
    left = limit
    while left is None or left > 0:
        step = COUNT_STEP if left is None else min(COUNT_STEP, left)
        n = it.count(step)
        if n:
            yield n
        if n < step:
            return
        if left is not None:
            left -= n


def count_step(rate: float | None) -> int:
    """How many records a count steps between checks for a stop: COUNT_STEP, or under `rate`
    (records per second) a fiftieth of a second's worth, so waits stay short and even."""
    if not rate:
        return COUNT_STEP
    return max(1, min(COUNT_STEP, int(rate / _PACED_SLICES_PER_SECOND)))


def count_marked(
    it: EngineIterator, limit: int | None = None, *, reverse: bool = False, step: int = COUNT_STEP
) -> Iterator[tuple[int, bytes]]:
    """`count_steps` that also says where each step ended, so that a count stopped between two
    steps resumes exactly after what it counted (a cursor): yields `(n, last)`, `last` the key
    of the step's last record. The records are counted in the scan's direction (`reverse`) from
    `it`'s position (the caller places it at the range's first record in that direction).

    Each step counts all but one record natively and reads the last one's key out: one key
    copied per step. When the range ends inside a step, its last key is read by a seek to the
    range's end (once per range).
    """
    left = limit
    while left is None or left > 0:
        size = step if left is None else min(step, left)
        n = it.count(size - 1, reverse=reverse)
        last = it.read_keys(1, reverse=reverse) if n == size - 1 else []
        if not last:
            if n:
                yield n, _range_end(it, reverse=reverse)
            return
        yield n + 1, last[0]
        if left is not None:
            left -= n + 1


def _range_end(it: EngineIterator, *, reverse: bool) -> bytes:
    """The key of the last record of `it`'s range in the scan's direction (which holds one)."""
    if reverse:
        it.seek_to_first()
    else:
        it.seek_to_last()
    (key,) = it.read_keys(1, reverse=not reverse)
    return key


def read_batches(
    it: EngineIterator,
    *,
    reverse: bool = False,
    after: bytes | None = None,
    batch_size: int = 1024,
    batch_bytes: int | None = None,
    keys_only: bool = False,
    columns: bool = False,
) -> Generator[Batch, None, None]:
    """Batches from `it` (which we position; the caller owns it and its bounds), after `after`.

    With `columns`, a wide-column entity's value is its `Entity` (every column), not just its
    default column's bytes. With `batch_bytes`, a batch ends at the record that brings its key
    and value bytes to `batch_bytes` (keys-only batches are cut by count alone).
    """
    position(it, reverse=reverse, after=after)
    while True:
        batch: Batch
        if keys_only:
            batch = [(key, b"") for key in it.read_keys(batch_size, reverse=reverse)]
        elif columns:
            batch = it.read_entries(batch_size, reverse=reverse, max_bytes=batch_bytes)
        else:
            batch = cast(Batch, it.read_batch(batch_size, reverse=reverse, max_bytes=batch_bytes))
        if not batch:
            return
        yield batch


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

    def merge(self, other: ScanStats) -> None:
        """Add what `other` counted after what this counted (a range worker's written batch)."""
        self.records += other.records
        self.key_bytes += other.key_bytes
        self.value_bytes += other.value_bytes
        self.pages += other.pages
        self.rate_wait += other.rate_wait
        if other.last_key is not None:
            self.last_key = other.last_key

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
