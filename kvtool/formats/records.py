"""Field codecs: how a key, value or column's bytes are carried in a JSON record, and back.

`auto` writes a JSON string when the bytes are valid UTF-8, else `{"base64": "..."}`; `utf8` refuses
invalid bytes; `hex` and `base64` write strings (`hex` reads a `0x` prefix too). `json` (values
only) embeds a value whose bytes are JSON exactly as orjson writes it, and wraps every other value
as `{"text": "..."}` (UTF-8) or `{"base64": "..."}`; a stored JSON value of either wrapper shape is
wrapped too, so the shapes never mix. Every format reads back to the exact bytes it was written
from (docs/design.md, "Records").
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kvtool.errors import BadInputError, UsageError


class FieldFormat(str, enum.Enum):
    """How a value (or a column's value) is carried in a record: `json` is for values only."""

    AUTO = "auto"
    UTF8 = "utf8"
    HEX = "hex"
    BASE64 = "base64"
    JSON = "json"


class KeyFormat(str, enum.Enum):
    """How a key or column name is carried in a record (the formats of `FieldFormat` but `json`:
    a key must come back byte-exact, and JSON would re-serialise it)."""

    AUTO = "auto"
    UTF8 = "utf8"
    HEX = "hex"
    BASE64 = "base64"


Encoder = Callable[[bytes], Any]

# The keys of the json format's wrappers: an object with exactly one of them, holding a string.
_WRAPPERS = ("text", "base64")


@dataclass
class FieldCounts:
    """What the encoders of one run did that the stats report."""

    not_json: int = 0  # values the json format wrapped instead of embedding


def _auto(data: bytes) -> Any:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"bytes {data[:40]!r} are not valid UTF-8 ({exc.reason})",
            hint="use --key-format/--value-format auto, hex or base64",
        ) from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _is_wrapper(value: Any) -> bool:
    """Whether a parsed JSON value has the shape of the json format's wrappers."""
    if type(value) is not dict or len(value) != 1:
        return False
    ((name, inner),) = value.items()
    return name in _WRAPPERS and type(inner) is str


def _wrap(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def json_encoder(counts: FieldCounts | None = None) -> Encoder:
    """The json format's encoder; it counts the values it wraps in `counts`.

    A value is embedded only when its bytes are exactly what orjson writes for it (compact, no
    escapes orjson would not write, numbers spelled as orjson spells them): import re-serialises
    an embedded value with orjson, so only such bytes come back unchanged. Anything else (not
    JSON, other spacing or spelling, or the shape of a wrapper) is wrapped.
    """
    loads, dumps, error = orjson.loads, orjson.dumps, orjson.JSONDecodeError

    def encode(data: bytes) -> Any:
        try:
            value = loads(data)
        except error:
            value = None
        else:
            if dumps(value) == data and not _is_wrapper(value):
                return value
        if counts is not None:
            counts.not_json += 1
        return _wrap(data)

    return encode


_ENCODERS: dict[FieldFormat, Encoder] = {
    FieldFormat.AUTO: _auto,
    FieldFormat.UTF8: _utf8,
    FieldFormat.HEX: bytes.hex,
    FieldFormat.BASE64: _b64,
    FieldFormat.JSON: json_encoder(),
}


def encoder(fmt: FieldFormat | str, counts: FieldCounts | None = None) -> Encoder:
    """The function turning bytes into the JSON-ready field for `fmt` (json counts into
    `counts` when given)."""
    fmt = FieldFormat(fmt)
    if fmt is FieldFormat.JSON and counts is not None:
        return json_encoder(counts)
    return _ENCODERS[fmt]


def decode_field(value: Any, fmt: FieldFormat | str, *, what: str = "key") -> bytes:
    """Bytes from a record's field written in `fmt`; raises BadInputError when it cannot be."""
    fmt = FieldFormat(fmt)
    if fmt is FieldFormat.AUTO:
        if isinstance(value, str):
            return value.encode("utf-8", errors="surrogatepass")
        if (
            isinstance(value, dict)
            and set(value) == {"base64"}
            and isinstance(value["base64"], str)
        ):
            return _from_base64(value["base64"], what)
        raise BadInputError(f'{what} must be a string or {{"base64": ...}}, not {value!r:.60}')
    if fmt is FieldFormat.JSON:
        if _is_wrapper(value):
            ((name, inner),) = value.items()
            if name == "text":
                return str(inner).encode("utf-8", errors="surrogatepass")
            return _from_base64(inner, what)
        return orjson.dumps(value)
    if not isinstance(value, str):
        raise BadInputError(f"{what} must be a string in {fmt.value} format, not {value!r:.60}")
    if fmt is FieldFormat.UTF8:
        return value.encode("utf-8", errors="surrogatepass")
    if fmt is FieldFormat.HEX:
        digits = value[2:] if value[:2] in ("0x", "0X") else value
        try:
            return bytes.fromhex(digits)
        except ValueError:
            raise BadInputError(f"{what} {value!r:.60} is not valid hex") from None
    return _from_base64(value, what)


def _from_base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise BadInputError(f"{what} {text!r:.60} is not valid base64") from None
