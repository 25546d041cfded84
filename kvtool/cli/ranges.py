"""Turning the shared range options into a `KeyRange`/`ReadSpec` (imports kept cheap)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kvtool.formats.records import KeyFormat
    from kvtool.stream.source import ReadSpec


def read_spec(
    *,
    cf: str,
    prefix: str | None,
    start: str | None,
    end: str | None,
    reverse: bool,
    key_format: KeyFormat,
    limit: int | None = None,
    keys_only: bool = False,
    after: str | None = None,
    rate: float | None = None,
    bytes_rate: str | None = None,
    timeout: str | None = None,
) -> ReadSpec:
    """The ReadSpec the range options describe; bad spellings are usage errors (exit 2)."""
    from kvtool.formats.codecs import decode_text
    from kvtool.formats.units import parse_duration, parse_size
    from kvtool.stream.keyrange import KeyRange
    from kvtool.stream.source import ReadSpec

    spelling = "utf8" if key_format.value == "auto" else key_format.value

    def key(text: str | None, option: str) -> bytes | None:
        if text is None:
            return None
        return decode_text(text, spelling, what=option)

    krange = KeyRange.build(
        cf=cf,
        prefix=key(prefix, "--prefix"),
        start=key(start, "--start"),
        end=key(end, "--end"),
        reverse=reverse,
    )
    spec = ReadSpec(
        krange=krange,
        limit=limit,
        keys_only=keys_only,
        rate=rate,
        # `is not None`: an empty --timeout '' is a mistake to refuse, not "no timeout".
        bytes_rate=(
            float(parse_size(bytes_rate, option="--bytes-rate")) if bytes_rate is not None else None
        ),
        timeout=parse_duration(timeout, option="--timeout") if timeout is not None else None,
    )
    if after is None:
        return spec
    from kvtool.stream.cursor import read_token

    return spec.with_cursor(read_token(after))
