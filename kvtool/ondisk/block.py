"""A table's blocks as stored: block handles, and the prefix-compressed entries of a block with
the restart array that ends it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kvtool.ondisk.coding import FormatError, Reader, fixed32_at


@dataclass(frozen=True)
class BlockHandle:
    """Where a block is in its file (its trailer follows it)."""

    offset: int
    size: int


def block_handle(value: bytes, offset: int) -> BlockHandle:
    reader = Reader(value, base=offset)
    return BlockHandle(reader.varint(), reader.varint())


def block_entries(
    block: bytes, offset: int, *, delta_values: bool = False
) -> Iterator[tuple[bytes, bytes, bool]]:
    """(key, value, at a restart point) for each entry of a block. Keys are prefix-compressed
    against the previous key; the restart array at the end lists where a full key starts. An
    index block with delta-encoded values stores no value length: the value runs to the next
    entry's header, which the value's own varints delimit."""
    n = len(block)
    if n < 4:
        raise FormatError(f"block of {n} bytes", offset)
    packed = fixed32_at(block, n - 4)
    restarts = packed & 0x7FFFFFFF
    end = n - 4
    if packed >> 31:  # a data block hash index sits between the restarts and the footer
        if n < 6:
            raise FormatError("block too short for its hash index", offset)
        end -= 2 + (block[n - 6] | (block[n - 5] << 8))
    restarts_at = end - 4 * restarts
    if restarts == 0 or restarts_at < 0:
        raise FormatError(f"block has {restarts} restart points in {n} bytes", offset)
    restart_points = {fixed32_at(block, restarts_at + 4 * i) for i in range(restarts)}
    reader = Reader(block[:restarts_at], base=offset)
    key = b""
    while not reader.at_end():
        start = reader.pos
        shared = reader.varint(32)
        unshared = reader.varint(32)
        if delta_values:
            if shared > len(key):
                raise reader.fail("key shares more bytes than the previous key has")
            key = key[:shared] + reader.take(unshared)
            at = reader.pos
            restart = start in restart_points
            # offset+size at a restart, a signed size delta elsewhere (then maybe a first key).
            if restart:
                reader.varint()
                reader.varint()
            else:
                reader.signed_varint()
            yield key, reader.data[at : reader.pos], restart
            continue
        value_length = reader.varint(32)
        if shared > len(key):
            raise reader.fail("key shares more bytes than the previous key has")
        key = key[:shared] + reader.take(unshared)
        yield key, reader.take(value_length), start in restart_points


def data_entries(block: bytes, offset: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of each entry of a data block: `block_entries` with one-byte varints read in
    line (nearly every header field is under 128), the hot loop of `--records` and `du`."""
    n = len(block)
    if n < 4:
        raise FormatError(f"block of {n} bytes", offset)
    packed = fixed32_at(block, n - 4)
    end = n - 4
    if packed >> 31:
        if n < 6:
            raise FormatError("block too short for its hash index", offset)
        end -= 2 + (block[n - 6] | (block[n - 5] << 8))
    limit = end - 4 * (packed & 0x7FFFFFFF)
    if not packed & 0x7FFFFFFF or limit < 0:
        raise FormatError(f"block has {packed & 0x7FFFFFFF} restart points in {n} bytes", offset)
    data = block
    pos = 0
    key = b""
    while pos < limit:
        start = pos
        if data[pos] < 128 and pos + 2 < limit and data[pos + 1] < 128 and data[pos + 2] < 128:
            shared, unshared, vlen = data[pos], data[pos + 1], data[pos + 2]
            pos += 3
        else:
            reader = Reader(data[:limit], pos, base=offset)
            shared, unshared, vlen = reader.varint(32), reader.varint(32), reader.varint(32)
            pos = reader.pos
        stop = pos + unshared + vlen
        if shared > len(key) or stop > limit:
            raise FormatError("entry runs past its block or its key's prefix", offset + start)
        key = key[:shared] + data[pos : pos + unshared]
        yield key, data[pos + unshared : stop]
        pos = stop
