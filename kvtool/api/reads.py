"""The library's reading functions: get, count, export, diff, verify, info, column_families."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, Any, Literal

from kvtool.api.common import FieldFormatName, Key, PathLike, as_bytes, binary, read_spec
from kvtool.engine import DEFAULT_CF
from kvtool.formats.records import FieldFormat
from kvtool.formats.writers import OutputFormat
from kvtool.ops.count import CountResult
from kvtool.ops.diff import DiffResult
from kvtool.ops.export import ExportResult
from kvtool.ops.info import DbInfo
from kvtool.ops.verify import VerifyResult


def get(db: PathLike, key: Key, *, cf: str | None = None) -> bytes:
    """The value stored under `key`; KeyNotFoundError (exit code 1) when there is none."""
    from kvtool.ops.kv import get_value

    found = as_bytes(key)
    assert found is not None
    return get_value(Path(db), found, cf=cf)


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

    spec = read_spec(
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
    )
    if isinstance(output, (str, os.PathLike)):
        path, out = Path(output), None
    else:
        path, out = None, binary(output)
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

    spec = read_spec(
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
    out = binary(output) if output is not None else io.BufferedWriter(_Discard())
    return run(
        Path(a),
        Path(b),
        spec,
        out,
        key_format=FieldFormat(key_format),
        value_format=FieldFormat(value_format),
    )


def verify(db: PathLike, *, digest: bool = False) -> VerifyResult:
    """Read every record of every column family with checksums verified. Corruption does not
    raise: the result's `ok` is false and `failure` says where (`raise_for_status()` raises
    it). `digest` adds a SHA-256 of the contents, equal for two copies of the same data."""
    from kvtool.ops.verify import verify as run

    return run(Path(db), digest=digest)


def info(db: PathLike) -> DbInfo:
    """What the database is: versions, column families, sizes, and what needs attention."""
    from kvtool.ops.info import describe

    return describe(Path(db))


def column_families(db: PathLike) -> list[str]:
    """The names of the database's column families."""
    from kvtool.ops.cf import list_column_families

    return list_column_families(Path(db))
