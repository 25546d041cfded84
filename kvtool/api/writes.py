"""The library's writing functions: put, delete, delete_range, import_records, checkpoint,
compact. Each opens the database read-write for the call (DatabaseBusyError when another process
holds it, after `wait_lock` seconds of retrying)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Literal

from kvtool.api.common import FieldFormatName, Key, PathLike, Value, as_bytes
from kvtool.engine import DEFAULT_CF, Bottommost
from kvtool.formats.records import FieldFormat
from kvtool.ops.checkpoint import CheckpointResult
from kvtool.ops.choices import ImportMode, OnError
from kvtool.ops.compact import CompactResult
from kvtool.ops.delete_range import DeleteRangeResult
from kvtool.ops.importer import ImportStats


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

    k, v = as_bytes(key), as_bytes(value)
    assert k is not None and v is not None
    put_value(Path(db), k, v, cf=cf, wait_lock=wait_lock)


def delete(db: PathLike, key: Key, *, cf: str | None = None, wait_lock: float = 0.0) -> bool:
    """Delete `key`; returns whether it was there."""
    from kvtool.ops.kv import delete_key

    k = as_bytes(key)
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

    s, e = as_bytes(start), as_bytes(end)
    assert s is not None and e is not None
    return run(Path(db), s, e, cf=cf, dry_run=dry_run, wait_lock=wait_lock)


def _json_lines(records: Iterable[tuple[Key, Value]]) -> Iterator[bytes]:
    """`(key, value)` pairs as the JSON Lines `import` reads, both fields in hex: byte-exact."""
    import orjson

    dumps, nl = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for key, value in records:
        k, v = as_bytes(key), as_bytes(value)
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
        start=as_bytes(start),
        end=as_bytes(end),
        bottommost=Bottommost(bottommost),
        io_rate=io_rate,
        wait_lock=wait_lock,
    )
    if result.interrupted is not None:
        # Only a KeyboardInterrupt gets here in a library caller's process (no kvtool signal
        # handlers): the compaction is cancelled, and the interrupt goes on to the caller.
        raise KeyboardInterrupt
    return result
