"""The Python library: one function per kvtool operation, thin keyword-argument wrappers over
kvtool.ops that run in the calling process, change no process-wide setting and release every
native handle before they return (or, for a record stream, when it is closed or dropped).

`from kvtool import scan, export, count, ...` reaches these (kvtool/__init__.py loads this module
on first use). docs/library.md shows them at work. Errors are the exceptions of kvtool.errors,
each with the `exit_code` the command line would exit with.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, Generic, Literal, TypeVar, cast, overload

from kvtool.engine import DEFAULT_CF, Bottommost, Entity
from kvtool.formats.records import FieldFormat
from kvtool.formats.writers import OutputFormat
from kvtool.ops.checkpoint import CheckpointResult
from kvtool.ops.choices import ImportMode, OnError
from kvtool.ops.compact import CompactResult
from kvtool.ops.count import CountResult
from kvtool.ops.delete_range import DeleteRangeResult
from kvtool.ops.diff import DiffResult
from kvtool.ops.export import ExportResult
from kvtool.ops.importer import ImportStats
from kvtool.ops.info import DbInfo
from kvtool.ops.verify import VerifyResult
from kvtool.stream.keyrange import KeyRange
from kvtool.stream.source import ReadSpec

__all__ = [
    "CheckpointResult",
    "CompactResult",
    "CountResult",
    "DbInfo",
    "DeleteRangeResult",
    "DiffResult",
    "Entity",
    "ExportResult",
    "ImportStats",
    "RecordStream",
    "VerifyResult",
    "checkpoint",
    "column_families",
    "compact",
    "count",
    "delete",
    "delete_range",
    "diff",
    "export",
    "get",
    "import_records",
    "info",
    "put",
    "scan",
    "verify",
]

PathLike = str | os.PathLike[str]
Key = bytes | str  # a str is its UTF-8 bytes
Value = bytes | str
FieldFormatName = Literal["auto", "utf8", "hex", "base64", "json"]
V = TypeVar("V", bound="bytes | Entity")


def _bytes(data: Key | None) -> bytes | None:
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    raise TypeError(f"a key or value is bytes or str, not {type(data).__name__}")


def _spec(
    *,
    cf: str,
    prefix: Key | None,
    start: Key | None,
    end: Key | None,
    reverse: bool,
    after: str | None,
    limit: int | None,
    keys_only: bool = False,
    timeout: float | None = None,
    rate: float | None = None,
    columns: bool = True,
) -> ReadSpec:
    if limit is not None and limit < 0:
        raise ValueError("limit must be 0 or more")
    krange = KeyRange.build(
        cf=cf, prefix=_bytes(prefix), start=_bytes(start), end=_bytes(end), reverse=reverse
    )
    spec = ReadSpec(
        krange=krange,
        limit=limit,
        keys_only=keys_only,
        timeout=timeout,
        rate=rate,
        columns=columns,
    )
    return spec.with_cursor(after)  # a cursor of another range is a UsageError


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
    spec = _spec(
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


def get(db: PathLike, key: Key, *, cf: str | None = None) -> bytes:
    """The value stored under `key`; KeyNotFoundError (exit code 1) when there is none."""
    from kvtool.ops.kv import get_value

    found = _bytes(key)
    assert found is not None
    return get_value(Path(db), found, cf=cf)


def put(
    db: PathLike,
    key: Key,
    value: Value,
    *,
    cf: str | None = None,
    wait_lock: float = 0.0,
) -> None:
    """Store `value` under `key`. A database another process holds raises DatabaseBusyError at
    once, or after retrying for up to `wait_lock` seconds."""
    from kvtool.ops.kv import put_value

    k, v = _bytes(key), _bytes(value)
    assert k is not None and v is not None
    put_value(Path(db), k, v, cf=cf, wait_lock=wait_lock)


def delete(db: PathLike, key: Key, *, cf: str | None = None, wait_lock: float = 0.0) -> bool:
    """Delete `key`; returns whether it was there."""
    from kvtool.ops.kv import delete_key

    k = _bytes(key)
    assert k is not None
    return delete_key(Path(db), k, cf=cf, wait_lock=wait_lock)


def delete_range(
    db: PathLike,
    start: Key,
    end: Key,
    *,
    cf: str = DEFAULT_CF,
    dry_run: bool = False,
    wait_lock: float = 0.0,
) -> DeleteRangeResult:
    """Delete the keys of [start, end) and say how many there were (`dry_run`: only count)."""
    from kvtool.ops.delete_range import delete_range as run

    s, e = _bytes(start), _bytes(end)
    assert s is not None and e is not None
    return run(Path(db), s, e, cf=cf, dry_run=dry_run, wait_lock=wait_lock)


def count(
    db: PathLike,
    *,
    prefix: Key | None = None,
    start: Key | None = None,
    end: Key | None = None,
    after: str | None = None,
    limit: int | None = None,
    cf: str = DEFAULT_CF,
    estimate: bool = False,
    timeout: float | None = None,
    workers: int = 1,
) -> CountResult:
    """The exact number of records in a range (`estimate`: RocksDB's estimate for the whole
    column family). Counted in the calling process unless `workers` > 1 asks for that many
    forked processes (as `kvtool count --workers N`)."""
    from kvtool.ops.count import count_records

    spec = _spec(
        cf=cf,
        prefix=prefix,
        start=start,
        end=end,
        reverse=False,
        after=after,
        limit=limit,
        timeout=timeout,
    )
    return count_records(Path(db), spec, estimate=estimate, workers=max(workers, 1))


def _binary(output: IO[bytes] | IO[str]) -> BinaryIO:
    """A binary stream for `output`: itself, or the buffer under a text stream (flushed first,
    so what was printed before comes first)."""
    if isinstance(output, io.TextIOBase):
        output.flush()
        buffer = getattr(output, "buffer", None)
        if buffer is None:
            raise TypeError("a text stream without a binary buffer: pass a binary stream")
        return cast(BinaryIO, buffer)
    return cast(BinaryIO, output)


def export(
    db: PathLike,
    output: PathLike | IO[bytes] | IO[str],
    *,
    format: Literal["jsonl", "csv", "tsv"] = "jsonl",
    key_format: FieldFormatName = "auto",
    value_format: FieldFormatName = "auto",
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
    workers: int = 1,
) -> ExportResult:
    """Write the records of a range to a file (a path) or a stream, as `kvtool export` does.

    A file is written beside its final name and renamed once complete. A run that `timeout`
    stopped returns with `stopped` set and `cursor` to resume (`after=result.cursor`); call
    `result.raise_for_status()` to have that as a StoppedError. Read in the calling process
    unless `workers` > 1 asks for forked range workers.
    """
    from kvtool.ops.export import export as run

    spec = _spec(
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
    )
    if isinstance(output, (str, os.PathLike)):
        path, out = Path(output), None
    else:
        path, out = None, _binary(output)
    if format not in ("jsonl", "csv", "tsv"):
        raise ValueError(f"format must be jsonl, csv or tsv, not {format!r}")
    return run(
        Path(db),
        spec,
        out=out,
        path=path,
        fmt=OutputFormat(format),
        key_format=FieldFormat(key_format),
        value_format=FieldFormat(value_format),
        workers=max(workers, 1),
    )


class _Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def diff(
    a: PathLike,
    b: PathLike,
    output: IO[bytes] | IO[str] | None = None,
    *,
    prefix: Key | None = None,
    start: Key | None = None,
    end: Key | None = None,
    reverse: bool = False,
    keys_only: bool = False,
    cf: str = DEFAULT_CF,
    key_format: FieldFormatName = "auto",
    value_format: FieldFormatName = "auto",
    timeout: float | None = None,
) -> DiffResult:
    """Compare two databases record by record: how many records were added (only in `b`),
    removed (only in `a`), changed and the same. With `output`, one JSON line per difference
    is written to it, as `kvtool diff` prints them."""
    from kvtool.ops.diff import diff as run

    spec = _spec(
        cf=cf,
        prefix=prefix,
        start=start,
        end=end,
        reverse=reverse,
        after=None,
        limit=None,
        keys_only=keys_only,
        timeout=timeout,
    )
    out = _binary(output) if output is not None else io.BufferedWriter(_Discard())
    return run(
        Path(a),
        Path(b),
        spec,
        out,
        key_format=FieldFormat(key_format),
        value_format=FieldFormat(value_format),
    )


def _json_lines(records: Iterable[tuple[Key, Value]]) -> Iterator[bytes]:
    """`(key, value)` pairs as the JSON Lines `import` reads, both fields in hex: byte-exact."""
    import orjson

    dumps, nl = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for key, value in records:
        k, v = _bytes(key), _bytes(value)
        assert k is not None and v is not None
        yield dumps({"key": k.hex(), "value": v.hex()}, option=nl)


def import_records(
    db: PathLike,
    records: Iterable[tuple[Key, Value]] | PathLike | IO[bytes],
    *,
    create: bool = False,
    cf: str = DEFAULT_CF,
    mode: Literal["batch", "sst"] = "batch",
    key_format: Literal["auto", "utf8", "hex", "base64"] = "auto",
    value_format: FieldFormatName = "auto",
    skip_bad_lines: bool = False,
    batch_records: int = 10_000,
    wait_lock: float = 0.0,
) -> ImportStats:
    """Load records into a database, as `kvtool import` does: from `(key, value)` pairs (bytes
    or str), or from the JSON Lines `export` writes (a path, or a binary stream).

    `create` creates a missing database or column family. `mode="sst"` sorts the records into
    SST files ingested at once (all or nothing). A bad JSON line raises BadInputError naming
    its line number and what was committed before it, unless `skip_bad_lines`.
    """
    from kvtool.ops.importer import ImportOptions
    from kvtool.ops.importer import import_records as run

    options = ImportOptions(
        key_format=FieldFormat(key_format),
        value_format=FieldFormat(value_format),
        mode=ImportMode(mode),
        on_error=OnError.SKIP if skip_bad_lines else OnError.STOP,
        batch_records=batch_records,
        cf=cf,
        create=create,
        wait_lock=wait_lock,
    )
    if isinstance(records, (str, os.PathLike)):
        with open(records, "rb") as stream:
            return run(Path(db), stream, options)
    if hasattr(records, "read"):
        return run(Path(db), records, options)  # type: ignore[arg-type]
    hexed = replace(options, key_format=FieldFormat.HEX, value_format=FieldFormat.HEX)
    lines = _json_lines(records)
    return run(Path(db), lines, hexed)  # type: ignore[arg-type]


def verify(db: PathLike, *, digest: bool = False) -> VerifyResult:
    """Read every record of every column family with checksums verified. Corruption does not
    raise: the result's `ok` is false and `failure` says where (`raise_for_status()` raises
    it). `digest` adds a SHA-256 of the contents, equal for two copies of the same data."""
    from kvtool.ops.verify import verify as run

    return run(Path(db), digest=digest)


def checkpoint(db: PathLike, dest: PathLike, *, wait_lock: float = 0.0) -> CheckpointResult:
    """A consistent copy of the database in the new directory `dest`, hard-linked where it can
    be. It needs the read-write handle: a database another process holds raises
    DatabaseBusyError."""
    from kvtool.ops.checkpoint import checkpoint as run

    return run(Path(db), Path(dest), wait_lock=wait_lock)


def compact(
    db: PathLike,
    *,
    column_families: list[str] | None = None,
    start: Key | None = None,
    end: Key | None = None,
    bottommost: Literal["skip", "if-needed", "force"] = "if-needed",
    io_rate: int | None = None,
    wait_lock: float = 0.0,
) -> CompactResult:
    """Compact [start, end) (everything by default) of the column families (all by default).
    The result carries the sizes before and after; `raise_for_status()` raises if it failed.
    A KeyboardInterrupt cancels RocksDB's compaction (the database stays intact: unfinished work
    is discarded) and then reaches the caller."""
    from kvtool.ops.compact import compact as run

    result = run(
        Path(db),
        column_families=column_families,
        start=_bytes(start),
        end=_bytes(end),
        bottommost=Bottommost(bottommost),
        io_rate=io_rate,
        wait_lock=wait_lock,
    )
    if result.interrupted is not None:
        # Only a KeyboardInterrupt gets here in a library caller's process (no kvtool signal
        # handlers): the compaction is cancelled, and the interrupt goes on to the caller.
        raise KeyboardInterrupt
    return result


def info(db: PathLike) -> DbInfo:
    """What the database is: versions, column families, sizes, and what needs attention."""
    from kvtool.ops.info import describe

    return describe(Path(db))


def column_families(db: PathLike) -> list[str]:
    """The names of the database's column families."""
    from kvtool.ops.cf import list_column_families

    return list_column_families(Path(db))
