"""JSON Lines rendering of record batches: one `{"key": ..., "value": ...}` object per line."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from kvtool.formats.records import FieldFormat, encoder

Record = tuple[bytes, bytes]
Render = Callable[[Sequence[Record]], bytes]

_NL = orjson.OPT_APPEND_NEWLINE


def jsonl_renderer(
    key_format: FieldFormat | str = FieldFormat.AUTO,
    value_format: FieldFormat | str = FieldFormat.AUTO,
    *,
    keys_only: bool = False,
) -> Render:
    """A function turning a batch into its JSON Lines bytes (each line ends with a newline).

    The common case (auto/auto, all valid UTF-8) decodes and dumps in one comprehension per batch;
    a batch holding any invalid UTF-8 falls back to the per-field codecs.
    """
    kf, vf = FieldFormat(key_format), FieldFormat(value_format)
    if kf is FieldFormat.JSON:
        raise ValueError("keys cannot use the json format")
    ek, ev = encoder(kf), encoder(vf)
    dumps = orjson.dumps
    join = b"".join

    if keys_only:

        def render_keys(batch: Sequence[Record]) -> bytes:
            return join([dumps({"key": ek(k)}, option=_NL) for k, _ in batch])

        if kf is not FieldFormat.AUTO:
            return render_keys

        def render_keys_auto(batch: Sequence[Record]) -> bytes:
            try:
                return join([dumps({"key": k.decode()}, option=_NL) for k, _ in batch])
            except UnicodeDecodeError:
                return render_keys(batch)

        return render_keys_auto

    def render(batch: Sequence[Record]) -> bytes:
        return join([dumps({"key": ek(k), "value": ev(v)}, option=_NL) for k, v in batch])

    if kf is FieldFormat.AUTO and vf is FieldFormat.AUTO:

        def render_auto(batch: Sequence[Record]) -> bytes:
            try:
                return join(
                    [dumps({"key": k.decode(), "value": v.decode()}, option=_NL) for k, v in batch]
                )
            except UnicodeDecodeError:
                return render(batch)

        return render_auto
    return render
