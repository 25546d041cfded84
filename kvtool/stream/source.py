"""`ReadSpec` (what a reading command reads), its read stage over a DB, and `record_stream`,
the whole pipeline."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from kvtool.engine import Bounds, Database
from kvtool.stream.cursor import Cursor
from kvtool.stream.keyrange import KeyRange
from kvtool.stream.pacing import Stopper, TokenBucket
from kvtool.stream.pipeline import (
    BATCH_BYTES,
    Batch,
    ScanStats,
    limited,
    paced,
    read_batches,
    tapped,
)


@dataclass(frozen=True)
class ReadSpec:
    """A range, where in it to continue, how much to read and how fast."""

    krange: KeyRange = field(default_factory=KeyRange)
    after: bytes | None = None  # continue strictly after this key
    limit: int | None = None
    keys_only: bool = False
    rate: float | None = None  # records per second
    bytes_rate: float | None = None  # key+value bytes per second
    timeout: float | None = None  # seconds
    batch_size: int = 1024
    # ...or fewer: a batch ends at the record that brings it to this many bytes (huge values).
    batch_bytes: int | None = BATCH_BYTES
    # Read every column of wide-column entities (export, scan, diff); else default columns only.
    columns: bool = True

    def with_cursor(self, token: str | None) -> ReadSpec:
        """This spec continuing after `token` (checked to belong to this range)."""
        if token is None:
            return self
        key = Cursor.decode(token).check(self.krange)
        return ReadSpec(
            krange=self.krange,
            after=key,
            limit=self.limit,
            keys_only=self.keys_only,
            rate=self.rate,
            bytes_rate=self.bytes_rate,
            timeout=self.timeout,
            batch_size=self.batch_size,
            batch_bytes=self.batch_bytes,
            columns=self.columns,
        )

    def cursor_after(self, key: bytes | None) -> str | None:
        return Cursor.after(key, self.krange).encode() if key is not None else None


@contextmanager
def read_stage(
    db: Database, spec: ReadSpec, bounds: Bounds | None = None
) -> Iterator[Iterator[Batch]]:
    """The read stage of every reading run: `spec`'s batches from one iterator over `bounds`
    (default: the spec's range; a range worker passes its chunk, a part of that range, with the
    spec's `after` already folded in) after `spec.after`, `spec.batch_size` records at a time
    (fewer where they reach `spec.batch_bytes`).

    One iterator serves the whole read, so it reads one consistent point in time; it is released
    when the block ends, however it ends.
    """
    krange = spec.krange
    order = db.key_order(krange.cf)
    if bounds is None:
        bounds = krange.bounds(order)
    if order.is_empty(bounds):
        yield iter(())
        return
    with db.bounded(krange.cf, bounds) as it:
        batches = read_batches(
            it,
            reverse=krange.reverse,
            after=spec.after,
            batch_size=spec.batch_size,
            batch_bytes=spec.batch_bytes,
            keys_only=spec.keys_only,
            columns=spec.columns,
        )
        try:
            yield batches
        finally:
            batches.close()


@contextmanager
def record_stream(
    db: Database, spec: ReadSpec, stats: ScanStats, stopper: Stopper
) -> Iterator[Iterator[Batch]]:
    """The batches of `spec` from `db`: read -> limit -> pace -> tap (counts and stop checks)."""
    if spec.limit is not None and spec.limit <= 0:
        yield iter(())
        return
    with read_stage(db, spec) as read:
        batches = limited(read, spec.limit)
        batches = paced(
            batches,
            records=TokenBucket(spec.rate) if spec.rate else None,
            data=TokenBucket(spec.bytes_rate) if spec.bytes_rate else None,
            stopper=stopper,
            stats=stats,
        )
        stream: Generator[Batch, None, None] = tapped(batches, stats, stopper)
        try:
            yield stream
        finally:
            stream.close()
