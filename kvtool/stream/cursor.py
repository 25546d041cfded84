"""`Cursor`: the opaque, versioned token naming where a scan stopped, bound to its range."""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from kvtool.errors import UsageError
from kvtool.stream.keyrange import KeyRange

# Token layout (then base64url without padding, behind a "kv1." tag so a token is recognisable):
#   version (1 byte) | flags (1 byte: bit 0 = reverse) | range fingerprint (8) | last key (rest)
_VERSION = 1
_TAG = "kv1."
_HEADER = struct.Struct(">BB8s")


@dataclass(frozen=True)
class Cursor:
    """The last key a scan emitted, in a range and a direction."""

    key: bytes
    reverse: bool
    fingerprint: bytes

    @classmethod
    def after(cls, key: bytes, krange: KeyRange) -> Cursor:
        return cls(key=key, reverse=krange.reverse, fingerprint=krange.fingerprint())

    def encode(self) -> str:
        raw = _HEADER.pack(_VERSION, 1 if self.reverse else 0, self.fingerprint) + self.key
        return _TAG + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Parse a token; a malformed one is a usage error (exit 2)."""
        text = token.strip()
        if not text.startswith(_TAG):
            raise _bad(token, "it is not a kvtool cursor")
        body = text[len(_TAG) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise _bad(token, "it is not valid base64url") from None
        if len(raw) < _HEADER.size:
            raise _bad(token, "it is truncated")
        version, flags, fingerprint = _HEADER.unpack_from(raw)
        if version != _VERSION:
            raise _bad(token, f"it has version {version}, this kvtool reads version {_VERSION}")
        if flags & ~1:
            raise _bad(token, "it has unknown flags")
        return cls(key=raw[_HEADER.size :], reverse=bool(flags & 1), fingerprint=fingerprint)

    def check(self, krange: KeyRange) -> bytes:
        """The key to continue after, if this cursor belongs to `krange`; else a usage error."""
        if self.reverse != krange.reverse:
            raise UsageError(
                "--after: the cursor is for a "
                + ("reverse" if self.reverse else "forward")
                + " scan, this one is "
                + ("reverse" if krange.reverse else "forward"),
                hint="give the same --reverse as the run that printed it",
            )
        if self.fingerprint != krange.fingerprint():
            raise UsageError(
                "--after: the cursor belongs to another range or column family",
                hint="give the same --cf, --prefix, --start and --end as the run that printed it",
            )
        return self.key


def _bad(token: str, why: str) -> UsageError:
    shown = token if len(token) <= 40 else token[:37] + "..."
    return UsageError(
        f"--after: {shown!r} is not a valid cursor: {why}",
        hint="pass the token exactly as kvtool printed it",
    )
