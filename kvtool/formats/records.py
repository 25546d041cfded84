"""Field codecs: how a key or value's bytes are carried in a JSON record, and back.

`auto` writes a JSON string when the bytes are valid UTF-8, else `{"base64": "..."}`; `utf8` refuses
invalid bytes; `hex` and `base64` write strings; `json` (values only) embeds the parsed value and is
not byte-exact. Every format but `json` reads back to the exact bytes it was written from.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Callable
from typing import Any

import orjson

from kvtool.errors import BadInputError, UsageError


class FieldFormat(str, enum.Enum):
    AUTO = "auto"
    UTF8 = "utf8"
    HEX = "hex"
    BASE64 = "base64"
    JSON = "json"


Encoder = Callable[[bytes], Any]
Decoder = Callable[[Any], bytes]


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


def _json(data: bytes) -> Any:
    # Parsed and re-serialised (not embedded raw): a raw value could carry a newline into JSONL.
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _auto(data)


_ENCODERS: dict[FieldFormat, Encoder] = {
    FieldFormat.AUTO: _auto,
    FieldFormat.UTF8: _utf8,
    FieldFormat.HEX: bytes.hex,
    FieldFormat.BASE64: _b64,
    FieldFormat.JSON: _json,
}


def encoder(fmt: FieldFormat | str) -> Encoder:
    """The function turning bytes into the JSON-ready field for `fmt`."""
    return _ENCODERS[FieldFormat(fmt)]


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
        return orjson.dumps(value)
    if not isinstance(value, str):
        raise BadInputError(f"{what} must be a string in {fmt.value} format, not {value!r:.60}")
    if fmt is FieldFormat.UTF8:
        return value.encode("utf-8", errors="surrogatepass")
    if fmt is FieldFormat.HEX:
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise BadInputError(f"{what} {value!r:.60} is not valid hex") from None
    return _from_base64(value, what)


def _from_base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise BadInputError(f"{what} {text!r:.60} is not valid base64") from None
