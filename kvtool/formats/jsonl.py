"""JSON Lines rendering of record batches: one `{"key": ..., "value": ...}` object per line, and
`{"key": ..., "columns": [{"name": ..., "value": ...}, ...]}` for a wide-column entity."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any, cast

import orjson

from kvtool.engine.base import Entity, Entry
from kvtool.formats.records import Encoder, FieldCounts, FieldFormat, encoder

Record = Entry
Render = Callable[[Sequence[Record]], bytes]

_NL = orjson.OPT_APPEND_NEWLINE

# Bytes that a JSON string must escape (orjson writes every other byte of valid UTF-8 as it is).
_ESCAPED = bytes(range(0x20)) + b'"\\'
_flatten = chain.from_iterable


def _plain(fields: bytes) -> bool:
    """Whether `fields` (a batch's fields run together) is ASCII with nothing to escape.

    Such fields are JSON strings as they stand, so a batch can be laid into a line template
    with one `%` instead of a decode and a dumps per record (about a third less time per
    record, bench/bench_export.py); the output is byte-identical to orjson's. ASCII only: a
    run of non-ASCII fields could be valid UTF-8 together while one field alone is not.
    """
    return fields.isascii() and len(fields.translate(None, _ESCAPED)) == len(fields)


@lru_cache(maxsize=32)
def _repeat(line: bytes, n: int) -> bytes:
    """`line * n`, made once per batch size (batches are mostly one size)."""
    return line * n


@lru_cache(maxsize=32)
def _repeat_text(line: str, n: int) -> str:
    return line * n


# Formats whose text never needs JSON escaping: their fields go into templates as they come.
_SAFE = (FieldFormat.HEX, FieldFormat.BASE64)


def columns_field(entity: Entity, en: Encoder, ev: Encoder) -> list[dict[str, Any]]:
    """An entity's `"columns"` field: `{"name": N, "value": V}` objects in name order (what jq's
    `from_entries` reads), names spelled in the key format, values in the value format."""
    return [{"name": en(name), "value": ev(value)} for name, value in entity.columns]


def jsonl_renderer(
    key_format: FieldFormat | str = FieldFormat.AUTO,
    value_format: FieldFormat | str = FieldFormat.AUTO,
    *,
    keys_only: bool = False,
    counts: FieldCounts | None = None,
) -> Render:
    """A function turning a batch into its JSON Lines bytes (each line ends with a newline).

    The common case (auto, a batch of plain ASCII fields) is laid into a line template with one
    `%`; other valid UTF-8 is decoded and dumped in one comprehension per batch; a batch holding
    any invalid UTF-8 falls back to the per-field codecs. A batch holding an entity fails the
    fast paths' bytes operations (TypeError) and falls back the same way, so plain batches pay
    nothing for entities. `counts` collects what the json value format wrapped.
    """
    kf, vf = FieldFormat(key_format), FieldFormat(value_format)
    if kf is FieldFormat.JSON:
        raise ValueError("keys cannot use the json format")
    ek, ev = encoder(kf), encoder(vf, counts)
    dumps = orjson.dumps
    join = b"".join

    if keys_only:

        def render_keys(batch: Sequence[Record]) -> bytes:
            return join([dumps({"key": ek(k)}, option=_NL) for k, _ in batch])

        if kf in _SAFE:

            def render_keys_safe(batch: Sequence[Record]) -> bytes:
                keys = tuple([ek(k) for k, _ in batch])
                return (_repeat_text('{"key":"%s"}\n', len(keys)) % keys).encode("ascii")

            return render_keys_safe
        if kf is not FieldFormat.AUTO:
            return render_keys

        def render_keys_auto(batch: Sequence[Record]) -> bytes:
            keys = tuple([k for k, _ in batch])
            if _plain(join(keys)):
                return _repeat(b'{"key":"%s"}\n', len(keys)) % keys
            try:
                return join([dumps({"key": k.decode()}, option=_NL) for k in keys])
            except UnicodeDecodeError:
                return render_keys(batch)

        return render_keys_auto

    def render(batch: Sequence[Record]) -> bytes:
        return join(
            [
                dumps({"key": ek(k), "columns": columns_field(v, ek, ev)}, option=_NL)
                if isinstance(v, Entity)
                else dumps({"key": ek(k), "value": ev(v)}, option=_NL)
                for k, v in batch
            ]
        )

    if kf is FieldFormat.AUTO and vf is FieldFormat.AUTO:

        def render_auto(batch: Sequence[Record]) -> bytes:
            fields = tuple(_flatten(batch))
            try:
                joined = join(fields)  # type: ignore[arg-type]  # an Entity raises TypeError
            except TypeError:
                return render(batch)
            if _plain(joined):
                return _repeat(b'{"key":"%s","value":"%s"}\n', len(batch)) % fields
            del joined  # a copy of the batch: not kept while a batch of huge values renders
            try:
                # Every value is bytes here: the join above took them all.
                plain = cast(Sequence[tuple[bytes, bytes]], batch)
                return join(
                    [dumps({"key": k.decode(), "value": v.decode()}, option=_NL) for k, v in plain]
                )
            except UnicodeDecodeError:
                return render(batch)

        return render_auto
    if kf in _SAFE and vf in _SAFE:

        def render_safe(batch: Sequence[Record]) -> bytes:
            # An Entity is not bytes: hex and base64 raise TypeError on it.
            plain = cast(Sequence[tuple[bytes, bytes]], batch)
            try:
                if ek is ev:
                    fields = tuple(map(ek, _flatten(plain)))
                else:
                    fields = tuple(chain.from_iterable([(ek(k), ev(v)) for k, v in plain]))
            except TypeError:
                return render(batch)
            text = _repeat_text('{"key":"%s","value":"%s"}\n', len(batch)) % fields
            return text.encode("ascii")

        return render_safe
    return render
