"""The byte-level encodings RocksDB's files share: varints, fixed-width integers, CRC32C,
internal keys and value types."""

from __future__ import annotations

import struct
from dataclasses import dataclass


class FormatError(ValueError):
    """Bytes that do not follow the format; `offset` is where in the file the reader gave up."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"at byte {offset}: {message}")
        self.reason = message
        self.offset = offset


class UnsupportedFormat(FormatError):
    """Well-formed bytes this reader cannot decode (e.g. a ZSTD block): not damage."""


@dataclass(frozen=True)
class Damage:
    """Where a file stops following its format, and whether that is the normal torn tail a
    crash leaves (`torn`) or damage before the end."""

    file: str
    offset: int
    reason: str
    torn: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "offset": self.offset, "reason": self.reason, "torn": self.torn}


class Reader:
    """A cursor over a bytes object; every read past the end raises FormatError."""

    __slots__ = ("base", "data", "pos")

    def __init__(self, data: bytes, pos: int = 0, base: int = 0) -> None:
        self.data = data
        self.pos = pos
        self.base = base  # file offset of data[0], for messages

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def fail(self, message: str) -> FormatError:
        return FormatError(message, self.base + self.pos)

    def varint(self, bits: int = 64) -> int:
        result = shift = 0
        data, pos = self.data, self.pos
        while True:
            if pos >= len(data):
                raise self.fail("varint runs past the end")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift >= bits + 7:
                raise self.fail(f"varint{bits} too long")
        self.pos = pos
        return result

    def signed_varint(self) -> int:
        raw = self.varint()
        return (raw >> 1) ^ -(raw & 1)

    def fixed32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def fixed64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def byte(self) -> int:
        return self.take(1)[0]

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"{n} bytes wanted, {len(self.data) - self.pos} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def slice(self) -> bytes:
        """A length-prefixed slice (varint32 length, then the bytes)."""
        return self.take(self.varint(32))


def fixed32_at(data: bytes, pos: int) -> int:
    return int(struct.unpack_from("<I", data, pos)[0])


def fixed64_at(data: bytes, pos: int) -> int:
    return int(struct.unpack_from("<Q", data, pos)[0])


# -- CRC32C (Castagnoli), as RocksDB checksums log records and blocks ------------------------------
def _table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32C of `data`, continuing `crc`. Pure Python (no package provides it here): about
    10 MB/s, which is why SST blocks are not checked by default."""
    table = _CRC_TABLE
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_MASK_DELTA = 0xA282EAD8


def unmask_crc(masked: int) -> int:
    """RocksDB stores CRCs rotated and offset, so a CRC of data holding CRCs is not degenerate."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# -- internal keys ---------------------------------------------------------------------------------
# Value types (db/dbformat.h); the names are what kvtool prints.
VALUE_TYPES = {
    0x0: "delete",
    0x1: "put",
    0x2: "merge",
    0x7: "single_delete",
    0xF: "delete_range",
    0x11: "blob_index",
    0x14: "delete_with_timestamp",
    0x16: "put_entity",
    0x18: "put_with_preferred_seqno",
}


def type_name(kind: int) -> str:
    return VALUE_TYPES.get(kind, f"type_{kind:#x}")


@dataclass(frozen=True)
class InternalKey:
    """A user key with the sequence number and value type RocksDB appends (8 bytes, LE)."""

    user_key: bytes
    sequence: int
    kind: int

    @property
    def type_name(self) -> str:
        return type_name(self.kind)

    @classmethod
    def parse(cls, raw: bytes, offset: int | None = None) -> InternalKey:
        if len(raw) < 8:
            raise FormatError(f"internal key of {len(raw)} bytes (at least 8)", offset)
        packed = fixed64_at(raw, len(raw) - 8)
        return cls(raw[:-8], packed >> 8, packed & 0xFF)
