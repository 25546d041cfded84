"""`scan`: the records of a range as a stream that releases its handles however it ends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, overload

from kvtool.api.common import Key, PathLike, read_spec
from kvtool.engine import DEFAULT_CF, Entity
from kvtool.stream.source import ReadSpec

V = TypeVar("V", bound="bytes | Entity")


class RecordStream(Generic[V]):
    """The records of a range as `(key, value)` tuples of bytes, read at one point in time.

    Iterate it directly, or use it as a context manager to say exactly when its handles go:

        with kvtool.scan("db", prefix="user:") as records:
            for key, value in records:
                ...

    The database opens when iteration starts and closes when the records run out, when the
    `with` block ends, on `close()`, or when the stream is dropped (a `break` out of a plain
    `for` loop): no native handle outlives it. `cursor` resumes after the last record taken
    (`scan(..., after=stream.cursor)`).
    """

    def __init__(self, path: PathLike, spec: ReadSpec) -> None:
        self._path = Path(path)
        self._spec = spec
        self._stack: contextlib.ExitStack | None = None
        self._records: Iterator[Any] | None = None
        self._last: bytes | None = None
        self._exhausted = False
        self._closed = False

    @property
    def cursor(self) -> str | None:
        """The cursor after the last record taken (None before the first), to continue with
        `scan(..., after=cursor)`; None once the range ran out."""
        return None if self._exhausted else self._spec.cursor_after(self._last)

    def _open(self) -> Iterator[Any]:
        if self._closed:
            raise ValueError("the record stream is closed")
        if self._records is None:
            from kvtool.ops.scan import open_records

            stack = contextlib.ExitStack()
            try:
                self._records = stack.enter_context(open_records(self._path, self._spec))
            except BaseException:
                stack.close()
                raise
            self._stack = stack
        return self._records

    def __iter__(self) -> Iterator[tuple[bytes, V]]:
        records = self._open()
        taken = 0
        try:
            for record in records:
                self._last = record[0]
                taken += 1
                yield record
            # The range ran out (not the limit: records may follow, and the cursor reaches them).
            limit = self._spec.limit
            self._exhausted = limit is None or taken < limit
        finally:
            self.close()

    def __enter__(self) -> RecordStream[V]:
        self._open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the iterator and the database (safe to call more than once)."""
        self._closed = True
        stack, self._stack, self._records = self._stack, None, None
        if stack is not None:
            stack.close()

    def __del__(self) -> None:
        # Dropped unclosed (a `break` out of a plain loop): release now. At interpreter exit
        # the engine may be gone already; its own exit hook releases what is left.
        with contextlib.suppress(Exception):
            self.close()


@overload
def scan(
    db: PathLike,
    *,
    prefix: Key | None = None,
    start: Key | None = None,
    end: Key | None = None,
    reverse: bool = False,
    after: str | None = None,
    limit: int | None = None,
    keys_only: bool = False,
    cf: str = DEFAULT_CF,
    rate: float | None = None,
    timeout: float | None = None,
    columns: Literal[False] = False,
) -> RecordStream[bytes]: ...


@overload
def scan(
    db: PathLike,
    *,
    prefix: Key | None = None,
    start: Key | None = None,
    end: Key | None = None,
    reverse: bool = False,
    after: str | None = None,
    limit: int | None = None,
    keys_only: bool = False,
    cf: str = DEFAULT_CF,
    rate: float | None = None,
    timeout: float | None = None,
    columns: Literal[True],
) -> RecordStream[bytes | Entity]: ...


def scan(
    db: PathLike,
    *,
    prefix: Key | None = None,
    start: Key | None = None,
    end: Key | None = None,
    reverse: bool = False,
    after: str | None = None,
    limit: int | None = None,
    keys_only: bool = False,
    cf: str = DEFAULT_CF,
    rate: float | None = None,
    timeout: float | None = None,
    columns: bool = False,
) -> RecordStream[bytes] | RecordStream[bytes | Entity]:
    """The records of a range, in the database's key order (see `RecordStream`).

    `prefix`, `start` (inclusive) and `end` (exclusive) choose the keys, `after` (a cursor)
    continues a stopped read, `limit` caps the count, `keys_only` gives b"" values. A
    wide-column entity's value is its default column unless `columns`, which gives its `Entity`.
    `rate` paces the read (records per second); `timeout` (seconds) raises StoppedError, whose
    `cursor` resumes, once it is reached.
    """
    spec = read_spec(
        cf=cf,
        prefix=prefix,
        start=start,
        end=end,
        reverse=reverse,
        after=after,
        limit=limit,
        keys_only=keys_only,
        timeout=timeout,
        rate=rate,
        columns=columns,
    )
    if columns:
        return RecordStream[bytes | Entity](db, spec)
    return RecordStream[bytes](db, spec)
