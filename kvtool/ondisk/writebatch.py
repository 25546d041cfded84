"""The contents of a write-ahead log record: a WriteBatch (sequence number, count, then tagged
operations, each naming its column family by id)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kvtool.ondisk.coding import FormatError, Reader

# tag: (operation, column family id follows, key/value slices that follow)
_TAGS: dict[int, tuple[str, bool, int]] = {
    0x0: ("delete", False, 1),
    0x1: ("put", False, 2),
    0x2: ("merge", False, 2),
    0x3: ("log_data", False, 1),
    0x4: ("delete", True, 1),
    0x5: ("put", True, 2),
    0x6: ("merge", True, 2),
    0x7: ("single_delete", False, 1),
    0x8: ("single_delete", True, 1),
    0x9: ("begin_prepare", False, 0),
    0xA: ("end_prepare", False, 1),
    0xB: ("commit", False, 1),
    0xC: ("rollback", False, 1),
    0xD: ("noop", False, 0),
    0xE: ("delete_range", True, 2),
    0xF: ("delete_range", False, 2),
    0x10: ("blob_index", True, 2),
    0x11: ("blob_index", False, 2),
    0x12: ("begin_prepare", False, 0),
    0x13: ("begin_unprepare", False, 0),
    0x15: ("commit_with_timestamp", False, 2),
    0x16: ("put_entity", False, 2),
    0x17: ("put_entity", True, 2),
}
# Operations that take a sequence number (the markers and log data do not).
DATA_OPS = frozenset(
    {"put", "delete", "single_delete", "merge", "delete_range", "blob_index", "put_entity"}
)


@dataclass(frozen=True)
class BatchOp:
    """One operation: `key` is the begin key of a delete_range and `value` its end key; a
    put_entity's `value` is the serialized entity (`entity_columns` decodes it)."""

    op: str
    cf: int
    sequence: int | None
    key: bytes | None = None
    value: bytes | None = None


@dataclass(frozen=True)
class Batch:
    sequence: int
    count: int
    size: int
    ops: list[BatchOp] = field(default_factory=list)


def parse_batch(data: bytes, offset: int = 0) -> Batch:
    """Decode a WriteBatch; FormatError names the file offset of what does not parse."""
    reader = Reader(data, base=offset)
    if len(data) < 12:
        raise reader.fail(f"write batch of {len(data)} bytes (header is 12)")
    sequence = reader.fixed64()
    count = reader.fixed32()
    ops: list[BatchOp] = []
    seq = sequence
    while not reader.at_end():
        tag = reader.byte()
        spec = _TAGS.get(tag)
        if spec is None:
            raise FormatError(f"unknown write batch tag {tag:#x}", offset + reader.pos - 1)
        name, has_cf, slices = spec
        cf = reader.varint(32) if has_cf else 0
        parts = [reader.slice() for _ in range(slices)]
        key = parts[0] if parts else None
        value = parts[1] if len(parts) > 1 else None
        if name in DATA_OPS:
            ops.append(BatchOp(name, cf, seq, key, value))
            seq += 1
        else:
            ops.append(BatchOp(name, cf, None, key, value))
    data_ops = sum(1 for o in ops if o.sequence is not None)
    if data_ops != count:
        raise FormatError(f"write batch says {count} operations, holds {data_ops}", offset + 8)
    return Batch(sequence, count, len(data), ops)


def entity_column_bytes(data: bytes, start: int, size: int, base: int = 0) -> int:
    """The bytes of the column names and values (what export writes, and exact du counts) of the
    serialized wide-column entity (version 1) `data[start : start + size]`, read in place: its
    header of lengths, without the values. FormatError for another version or a bad header."""
    reader = Reader(data[: start + size], start, base)
    version = reader.varint(32)
    if version != 1:
        raise reader.fail(f"wide-column entity of serialization version {version}, not 1")
    names = values = 0
    for _ in range(reader.varint(32)):
        name = reader.varint(32)
        reader.pos += name
        names += name
        values += reader.varint(32)
    if reader.pos + values != start + size:
        raise reader.fail("wide-column entity whose column lengths do not add up to its size")
    return names + values


def entity_columns(value: bytes) -> list[tuple[bytes, bytes]] | None:
    """The columns of a serialized wide-column entity (version 1), or None if it is another."""
    try:
        reader = Reader(value)
        if reader.varint(32) != 1:
            return None
        n = reader.varint(32)
        heads = [(reader.slice(), reader.varint(32)) for _ in range(n)]
        columns = [(name, reader.take(size)) for name, size in heads]
        return columns if reader.at_end() else None
    except FormatError:
        return None
