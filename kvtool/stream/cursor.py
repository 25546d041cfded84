"""`Cursor`: the opaque, versioned, checksummed token naming where a scan stopped, bound to its
range; and reading one back from the command line or a file (`--after @FILE`)."""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from kvtool.errors import UsageError
from kvtool.stream.keyrange import KeyRange

# Token layout (then base64url without padding, behind a "kv2." tag so a token is recognisable):
#   version (1 byte) | flags (1 byte: bit 0 = reverse) | range fingerprint (8) | last key (rest)
#   | checksum (8 bytes: BLAKE2b-64 of everything before it)
# The checksum is why version 2 exists: a version-1 token cut by a terminal, a shell or a mouse
# decoded to another key and resumed somewhere else. Any cut or changed character now fails the
# checksum (a false accept needs a 2**-64 collision).
_VERSION = 2
_TAG = "kv2."
_OLD_TAG = "kv1."
_HEADER = struct.Struct(">BB8s")
_CHECKSUM_BYTES = 8
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _checksum(raw: bytes) -> bytes:
    import hashlib  # here, not at start-up: only a cursor needs a checksum

    return hashlib.blake2b(raw, digest_size=_CHECKSUM_BYTES, person=b"kvtool-cursor").digest()


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
        raw += _checksum(raw)
        return _TAG + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Parse a token; a malformed, cut or changed one is a usage error (exit 2)."""
        text = token.strip()
        if text.startswith(_OLD_TAG):
            raise _bad(
                token,
                "it is a version-1 cursor (kvtool before cursors carried a checksum), which "
                "kvtool no longer accepts because a cut one resumed at another key",
                hint="run the command again without --after, or from the start of what is missing "
                "(--start KEY)",
            )
        if not text.startswith(_TAG):
            raise _bad(token, "it is not a kvtool cursor")
        body = text[len(_TAG) :]
        if not _BASE64URL.fullmatch(body) or len(body) % 4 == 1:
            raise _bad(token, "it is not valid base64url (cut or changed?)")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise _bad(token, "it is not valid base64url (cut or changed?)") from None
        if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != body:
            # The last character's unused low bits: another spelling of the same bytes.
            raise _bad(token, "it is not the canonical spelling (changed?)")
        if len(raw) < _HEADER.size + _CHECKSUM_BYTES:
            raise _bad(token, "it is truncated")
        payload, checksum = raw[:-_CHECKSUM_BYTES], raw[-_CHECKSUM_BYTES:]
        if _checksum(payload) != checksum:
            raise _bad(token, "its checksum does not match: it was cut or changed")
        version, flags, fingerprint = _HEADER.unpack_from(payload)
        if version != _VERSION:
            raise _bad(token, f"it has version {version}, this kvtool reads version {_VERSION}")
        if flags & ~1:
            raise _bad(token, "it has unknown flags")
        return cls(key=payload[_HEADER.size :], reverse=bool(flags & 1), fingerprint=fingerprint)

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


# A token inside any text: a saved stderr ("next: kvtool scan ... --after kv2...", "resume with
# --after kv2..."), a --stats-file or a FILE.partial.cursor (JSON), or the bare token.
_TOKEN_IN_TEXT = re.compile(r"kv\d+\.[A-Za-z0-9_-]*")


def read_token(argument: str) -> str:
    """The cursor an `--after` argument names: the token itself, or `@FILE` to read it from FILE.

    FILE may hold the bare token, a `--stats-file`, the `FILE.partial.cursor` a stopped
    `export -o FILE` writes, or the saved stderr of the run that printed it: the one token in it
    is used (none, or two different ones, is a usage error). A token for a huge key is too long
    for a command line (the kernel's limit on one argument is 128 KiB), hence the file.
    """
    if not argument.startswith("@"):
        return argument
    name = argument[1:]
    try:
        text = Path(name).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(
            f"--after @{name}: cannot read the cursor file: {exc.strerror or exc}",
            hint="give the token itself or @FILE naming a file that holds it",
        ) from None
    found: set[str] = set(_TOKEN_IN_TEXT.findall(text))
    if not found:
        raise UsageError(
            f"--after @{name}: the file holds no cursor",
            hint="the run that wrote it completed (cursor null), or it is not kvtool's",
        )
    if len(found) > 1:
        raise UsageError(
            f"--after @{name}: the file holds {len(found)} different cursors",
            hint="keep only the one to resume from",
        )
    return found.pop()


def _bad(
    token: str, why: str, *, hint: str = "pass the token exactly as kvtool printed it"
) -> UsageError:
    shown = token if len(token) <= 40 else token[:37] + "..."
    return UsageError(f"--after: {shown!r} is not a valid cursor: {why}", hint=hint)
