"""Block decompression for the codecs a reader can get without native RocksDB: Snappy and LZ4
(through cramjam's native decoders, or decoded here when cramjam is missing: both are small
formats), zlib and bzip2 (the standard library). ZSTD and XPRESS blocks are reported as
unreadable, never guessed at."""

from __future__ import annotations

import bz2
import zlib
from types import ModuleType

from kvtool.ondisk.coding import FormatError, Reader, UnsupportedFormat

_native: ModuleType | None
try:
    # Decoding a Snappy block in Python costs ~30 ns a byte, 60x cramjam's: it was most of
    # `du --sample`'s reading time (bench/bench_du.py). The Python decoders below stay as the
    # fallback for a platform without its wheel and as the tests' independent check of it.
    import cramjam as _native
except ImportError:  # pragma: no cover - cramjam is a dependency; kept for odd platforms
    _native = None

# Compression type byte of a block trailer (include/rocksdb/compression_type.h).
COMPRESSION_NAMES = {
    0x0: "NoCompression",
    0x1: "Snappy",
    0x2: "Zlib",
    0x3: "BZip2",
    0x4: "LZ4",
    0x5: "LZ4HC",
    0x6: "Xpress",
    0x7: "ZSTD",
}
READABLE = frozenset({0x0, 0x1, 0x2, 0x3, 0x4, 0x5})


def compression_name(kind: int) -> str:
    return COMPRESSION_NAMES.get(kind, f"unknown({kind})")


def decompress(kind: int, data: bytes, *, format_version: int, offset: int = 0) -> bytes:
    """The contents of a block stored with compression `kind`. Since table format_version 2,
    zlib, bzip2 and LZ4 blocks start with their decompressed size (varint32)."""
    if kind == 0:
        return data
    if kind not in READABLE:
        raise UnsupportedFormat(
            f"{compression_name(kind)} blocks cannot be decompressed without native "
            "RocksDB (kvtool reads Snappy, LZ4, zlib and bzip2)",
            offset,
        )
    if kind == 1:
        if _native is not None:
            return _native_snappy(data, offset)
        return snappy_decompress(data, offset)
    expected: int | None = None
    if format_version >= 2 and kind in (0x2, 0x3, 0x4, 0x5, 0x7):
        reader = Reader(data, base=offset)
        expected = reader.varint(32)
        data = data[reader.pos :]
    try:
        if kind == 0x2:
            out = zlib.decompressobj(-15).decompress(data)  # raw deflate, any window size
        elif kind == 0x3:
            out = bz2.decompress(data)
        elif kind in (0x4, 0x5):
            if expected is None:  # format_version < 2: a fixed32 size header
                reader = Reader(data, base=offset)
                expected = reader.fixed32()
                data = data[4:]
            if _native is not None:
                out = _native_lz4(data, expected, offset)
            else:
                out = lz4_block_decompress(data, expected, offset)
        else:
            raise UnsupportedFormat(f"{compression_name(kind)} blocks are not read", offset)
    except (zlib.error, OSError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(
            f"{compression_name(kind)} block does not decompress: {exc}", offset
        ) from None
    if expected is not None and len(out) != expected:
        raise FormatError(
            f"{compression_name(kind)} block decompressed to {len(out)} bytes, "
            f"its header says {expected}",
            offset,
        )
    return out


def _native_snappy(data: bytes, offset: int) -> bytes:
    assert _native is not None
    try:
        return bytes(_native.snappy.decompress_raw(data))
    except _native.DecompressionError as exc:
        raise FormatError(f"Snappy block does not decompress: {exc}", offset) from None


def _native_lz4(data: bytes, size: int, offset: int) -> bytes:
    assert _native is not None
    try:
        return bytes(_native.lz4.decompress_block(data, output_len=size))
    except _native.DecompressionError as exc:
        raise FormatError(f"LZ4 block does not decompress: {exc}", offset) from None


def snappy_decompress(data: bytes, offset: int = 0) -> bytes:
    """Snappy's raw format: the decompressed length (varint), then literals and back-copies.
    The loop keeps the output length in a local (this is the hot path of `du --sample`)."""
    reader = Reader(data, base=offset)
    size = reader.varint(32)
    out = bytearray()
    olen = 0
    pos, end = reader.pos, len(data)
    try:
        while pos < end:
            tag = data[pos]
            pos += 1
            kind = tag & 3
            if kind == 0:
                length = tag >> 2
                if length >= 60:
                    extra = length - 59
                    length = int.from_bytes(data[pos : pos + extra], "little")
                    pos += extra
                length += 1
                if pos + length > end:
                    raise FormatError("snappy literal runs past the block", offset + pos)
                out += data[pos : pos + length]
                pos += length
                olen += length
                continue
            if kind == 1:
                length = ((tag >> 2) & 7) + 4
                distance = ((tag >> 5) << 8) | data[pos]
                pos += 1
            elif kind == 2:
                length = (tag >> 2) + 1
                distance = data[pos] | (data[pos + 1] << 8)
                pos += 2
            else:
                length = (tag >> 2) + 1
                distance = int.from_bytes(data[pos : pos + 4], "little")
                pos += 4
            start = olen - distance
            if distance >= length and start >= 0:
                out += out[start : start + length]
            else:
                _copy_back(out, distance, length, offset + pos)
            olen += length
    except IndexError:
        raise FormatError("snappy element runs past the block", offset + pos) from None
    if olen != size:
        raise FormatError(f"snappy block gave {olen} bytes, its header says {size}", offset)
    return bytes(out)


def lz4_block_decompress(data: bytes, size: int, offset: int = 0) -> bytes:
    """An LZ4 block (no frame): sequences of literals and back-references."""
    out = bytearray()
    pos, end = 0, len(data)
    while pos < end:
        token = data[pos]
        pos += 1
        literals = token >> 4
        if literals == 15:
            while True:
                if pos >= end:
                    raise FormatError("lz4 literal length runs past the block", offset + pos)
                more = data[pos]
                pos += 1
                literals += more
                if more != 255:
                    break
        if pos + literals > end:
            raise FormatError("lz4 literals run past the block", offset + pos)
        out += data[pos : pos + literals]
        pos += literals
        if pos >= end:
            break  # the last sequence has literals only
        distance = data[pos] | (data[pos + 1] << 8) if pos + 1 < end else 0
        pos += 2
        length = token & 15
        if length == 15:
            while True:
                if pos >= end:
                    raise FormatError("lz4 match length runs past the block", offset + pos)
                more = data[pos]
                pos += 1
                length += more
                if more != 255:
                    break
        _copy_back(out, distance, length + 4, offset + pos)
        if len(out) > size:
            break
    return bytes(out)


def _copy_back(out: bytearray, distance: int, length: int, where: int) -> None:
    if distance <= 0 or distance > len(out):
        raise FormatError(f"back-reference {distance} bytes before {len(out)}", where)
    start = len(out) - distance
    if distance >= length:
        out += out[start : start + length]
    else:  # overlapping: the copy repeats the last `distance` bytes
        while length > 0:
            chunk = out[start : start + min(distance, length)]
            out += chunk
            length -= len(chunk)
            start += len(chunk)
