"""Parsing JSON Lines import input (what `export` writes) into (line number, key, value) records,
with its bad lines raised as `LineError` or counted as skipped."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from kvtool.engine import Entity
from kvtool.errors import BadInputError, UsageError
from kvtool.formats.records import FieldFormat, decode_field
from kvtool.ops.choices import OnError
from kvtool.ops.import_common import (
    ImportOptions,
    ImportStats,
    LineError,
    Progress,
    count_skipped,
)

# What reading a damaged input raises: OSError (including gzip.BadGzipFile), EOFError (a
# truncated .gz), zlib.error (a corrupt deflate stream).
_READ_ERRORS = (OSError, EOFError, zlib.error)


class _Unreadable(Exception):
    """The input cannot be read any further (a damaged .gz, an I/O error)."""


def _readable(lines: Iterable[bytes]) -> Iterator[bytes]:
    """`lines`, with what reading a damaged input raises turned into `_Unreadable`."""
    try:
        yield from lines
    except _READ_ERRORS as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _Unreadable(f"cannot read the input ({reason or type(exc).__name__})") from None


def _fast_path(fmt: FieldFormat) -> Callable[[str], bytes] | None:
    """The C-level decoder for a field that is a plain string in `fmt`, if there is one.

    It may raise ValueError for bad text; the general `decode_field` then says why.
    """
    if fmt in (FieldFormat.AUTO, FieldFormat.UTF8):
        return str.encode  # orjson never yields lone surrogates: always valid UTF-8
    if fmt is FieldFormat.HEX:
        return bytes.fromhex
    return None


def _slow(field: Any, fmt: FieldFormat, what: str = "key") -> bytes:
    return decode_field(field, fmt, what=what)


def _entity(record: dict[str, Any], key_fmt: FieldFormat, value_fmt: FieldFormat) -> Entity:
    """The wide-column entity of a record `{"key": K, "columns": [{"name": N, "value": V}, ...]}`:
    names are spelled in the key format, values in the value format (export's shape)."""
    if "value" in record:
        raise BadInputError('a record has "value" or "columns", not both')
    columns = record["columns"]
    if type(columns) is not list:
        raise BadInputError(f'"columns" must be a list, not {type(columns).__name__}')
    cells: dict[bytes, bytes] = {}
    for column in columns:
        if type(column) is not dict or set(column) != {"name", "value"}:
            raise BadInputError(
                'each of "columns" must be an object {"name": ..., "value": ...}, '
                f"not {column!r:.60}"
            )
        name = decode_field(column["name"], key_fmt, what="column name")
        if name in cells:
            raise BadInputError(f"column name {name!r:.60} appears twice")
        cells[name] = decode_field(column["value"], value_fmt, what="column value")
    return Entity(tuple(sorted(cells.items())))


def parse_records(
    lines: Iterable[bytes],
    options: ImportOptions,
    stats: ImportStats,
    progress: Progress | None = None,
) -> Iterator[tuple[int, bytes, bytes | Entity]]:
    """(line number, key, value) for each record line; blank lines are ignored. The value of a
    wide-column entity's record (`"columns"`) is its `Entity`.

    A bad line raises `LineError` with `--on-error stop`; with skip it is counted in `stats`.
    """
    if options.key_format is FieldFormat.JSON:
        raise UsageError("--key-format json is not supported: keys must be byte-exact")
    key_fmt, value_fmt = options.key_format, options.value_format
    fast_key, fast_value = _fast_path(key_fmt), _fast_path(value_fmt)
    loads = orjson.loads
    skip = options.on_error is OnError.SKIP
    number = 0
    pending_progress = 0
    try:
        for raw in _readable(lines):
            number += 1
            pending_progress += len(raw)
            if progress is not None and pending_progress >= 1 << 20:
                progress(pending_progress)
                pending_progress = 0
            try:
                try:
                    record = loads(raw)
                except orjson.JSONDecodeError as exc:
                    if not raw.strip():
                        continue
                    why = f"{exc.msg} at column {exc.colno}"
                    if not raw.endswith(b"\n"):
                        raise LineError(
                            number,
                            "truncated record: the input ends in the middle of a line "
                            f"without a newline ({why})",
                        ) from None
                    raise LineError(number, f"not valid JSON ({why})") from None
                if type(record) is not dict:
                    raise LineError(
                        number,
                        'a record must be a JSON object {"key": ..., "value": ...}, '
                        f"not {type(record).__name__}",
                    )
                try:
                    key = record["key"]
                    try:
                        key = (
                            fast_key(key) if fast_key and type(key) is str else _slow(key, key_fmt)
                        )
                    except ValueError:
                        key = _slow(key, key_fmt)
                    value: bytes | Entity
                    if "columns" in record:
                        value = _entity(record, key_fmt, value_fmt)
                    else:
                        field = record["value"]
                        try:
                            value = (
                                fast_value(field)
                                if fast_value and type(field) is str
                                else _slow(field, value_fmt, "value")
                            )
                        except ValueError:
                            value = _slow(field, value_fmt, "value")
                except KeyError as exc:
                    raise LineError(number, f'the record has no "{exc.args[0]}" field') from None
                except BadInputError as exc:
                    raise LineError(number, exc.message) from None
            except LineError as exc:
                if not skip:
                    raise
                count_skipped(stats, number, exc.reason)
                continue
            yield number, key, value
    except _Unreadable as exc:
        raise LineError(number + 1, str(exc)) from None
    stats.lines = number
    if progress is not None and pending_progress:
        progress(pending_progress)
