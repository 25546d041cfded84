"""Byte codecs: how keys and values are spelled on the command line and in records."""

from __future__ import annotations

import base64
import binascii
import enum

from kvtool.errors import UsageError


class InputFormat(str, enum.Enum):
    """How a key or value given on the command line is spelled."""

    UTF8 = "utf8"
    HEX = "hex"
    BASE64 = "base64"


def decode_text(text: str, fmt: InputFormat | str, *, what: str = "key") -> bytes:
    """Bytes from command-line text in `fmt`; a bad spelling is a usage error (exit 2)."""
    fmt = InputFormat(fmt)
    if fmt is InputFormat.UTF8:
        try:
            return text.encode("utf-8", errors="surrogateescape")
        except UnicodeEncodeError as exc:  # pragma: no cover - surrogateescape round-trips argv
            raise UsageError(f"{what} is not valid UTF-8: {exc}") from None
    if fmt is InputFormat.HEX:
        digits = text[2:] if text[:2].lower() == "0x" else text
        try:
            return bytes.fromhex(digits)
        except ValueError:
            raise UsageError(
                f"{what} {text!r} is not valid hex", hint="use pairs of 0-9a-f, e.g. 6b6579"
            ) from None
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise UsageError(f"{what} {text!r} is not valid base64") from None


def encode_text(data: bytes, fmt: InputFormat | str) -> str:
    """The inverse of `decode_text`, for messages and plain output."""
    fmt = InputFormat(fmt)
    if fmt is InputFormat.HEX:
        return data.hex()
    if fmt is InputFormat.BASE64:
        return base64.b64encode(data).decode("ascii")
    return data.decode("utf-8", errors="backslashreplace")


_NAMED_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(data: bytes, limit: int = 80) -> str:
    """A short, unambiguous rendering of bytes for people (messages, tables): UTF-8 text as the
    text it is (`日本語キー`, `it's`, `Köln`); a backslash, control and other unprintable characters
    and bytes that are not UTF-8 as escapes (`\\\\`, `\\n`, `\\x1b`, `\\xff`), so two keys never
    look alike and the data cannot drive a terminal."""
    text = data.decode("utf-8", errors="surrogateescape")
    if not (text.isprintable() and "\\" not in text):  # the common case needs no escapes
        text = "".join(_escape(ch) for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _escape(ch: str) -> str:
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    if ch.isprintable():  # a lone surrogate (an invalid byte) never is
        return ch
    return "".join(f"\\x{b:02x}" for b in ch.encode("utf-8", errors="surrogateescape"))
