"""`scan`: one page of a range for people and the cursor of the page after it, or (for the
library) the records of a range one at a time."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kvtool.engine import Entry, OpenMode, open_db
from kvtool.errors import StoppedError
from kvtool.stream import ReadSpec, ScanStats, Stopper, StopRequested, record_stream


@dataclass
class Page:
    """The records of one page; `cursor` continues after it (None: this was the last page)."""

    records: list[Entry]
    cursor: str | None
    stats: dict[str, Any]


def scan_page(db_path: str | Path, spec: ReadSpec, page_size: int = 20) -> Page:
    """Read one page of at most `page_size` records (fewer when `spec.limit` is smaller).

    One record past the page is peeked at, so the last page says it is the last (no cursor).
    """
    size = page_size if spec.limit is None else min(page_size, spec.limit)
    stats = ScanStats()
    records: list[Entry] = []
    with Stopper() as stopper, open_db(db_path, OpenMode.READ_ONLY) as db:
        peek = replace(spec, limit=size + 1, batch_size=size + 1, rate=None, bytes_rate=None)
        with record_stream(db, peek, stats, stopper) as batches:
            try:
                for batch in batches:
                    records.extend(batch)
            except StopRequested as exc:
                raise StoppedError(exc.reason, exit_code=exc.exit_code) from None
    stats.finish()
    more = len(records) > size
    records = records[:size]
    cursor = spec.cursor_after(records[-1][0]) if more and records else None
    result = ScanStats(started=stats.started, ended=stats.ended)
    result.add(records)
    return Page(records=records, cursor=cursor, stats=result.as_dict(cursor=cursor))


@contextmanager
def open_records(db_path: str | Path, spec: ReadSpec) -> Iterator[Iterator[Entry]]:
    """The records of `spec`, one at a time, from one read-only handle and one iterator (one
    point in time) that are released when the block ends, however it ends. A deadline
    (`spec.timeout`) raises StoppedError carrying the cursor after the last record taken."""
    stats = ScanStats()
    with (
        Stopper(spec.timeout) as stopper,
        open_db(db_path, OpenMode.READ_ONLY) as db,
        record_stream(db, spec, stats, stopper) as batches,
    ):

        def records() -> Generator[Entry, None, None]:
            try:
                for batch in batches:
                    yield from batch
            except StopRequested as exc:
                # `tapped` counts a batch once the next is asked for: the last key counted is
                # the end of the last whole batch taken.
                cursor = spec.cursor_after(stats.last_key) or spec.cursor_after(spec.after)
                raise StoppedError(exc.reason, exit_code=exc.exit_code, cursor=cursor) from None

        stream = records()
        try:
            yield stream
        finally:
            stream.close()
