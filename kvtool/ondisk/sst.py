"""A block-based table (`.sst` file) read on its own: footer, metaindex, table properties, and
the index and data blocks with their internal records."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from kvtool.ondisk.block import BlockHandle, block_entries, block_handle, data_entries
from kvtool.ondisk.coding import (
    FormatError,
    InternalKey,
    Reader,
    UnsupportedFormat,
    crc32c,
    fixed32_at,
    fixed64_at,
    unmask_crc,
)
from kvtool.ondisk.compression import compression_name, decompress

LEGACY_MAGIC = 0xDB4775248B80FB57  # leveldb-compatible footer (format_version 0)
MAGIC = 0x88E241B785F4CFF7
PLAIN_TABLE_MAGIC = 0x8242229663BF9564
LEGACY_PLAIN_TABLE_MAGIC = 0x4F3418EB7A8F13B8
CUCKOO_MAGIC = 0x926789D0C5F17873
LEGACY_FOOTER = 48
FOOTER = 53
TRAILER = 5  # compression type (1) + checksum (4)
_V6_EXTENDED_MAGIC = b"\x3e\x00\x7a\x00"

CHECKSUM_NAMES = {0: "NoChecksum", 1: "CRC32c", 2: "xxHash", 3: "xxHash64", 4: "XXH3"}
INDEX_TYPES = {
    0: "binary_search",
    1: "hash_search",
    2: "two_level",
    3: "binary_search_with_first_key",
}

# Table properties kept as text; the others are varints unless listed below.
_TEXT_PROPERTIES = frozenset(
    {
        "rocksdb.filter.policy",
        "rocksdb.column.family.name",
        "rocksdb.comparator",
        "rocksdb.merge.operator",
        "rocksdb.prefix.extractor.name",
        "rocksdb.property.collectors",
        "rocksdb.compression",
        "rocksdb.compression_options",
        "rocksdb.creating.db.identity",
        "rocksdb.creating.session.identity",
        "rocksdb.creating.host.identity",
        "rocksdb.block.based.table.prefix.filtering",
        "rocksdb.block.based.table.whole.key.filtering",
    }
)
_FIXED32_PROPERTIES = frozenset(
    {"rocksdb.block.based.table.index.type", "rocksdb.external_sst_file.version"}
)
_FIXED64_PROPERTIES = frozenset({"rocksdb.external_sst_file.global_seqno"})
UNKNOWN_CF_ID = 0x7FFFFFFF  # a table written outside a column family (SstFileWriter)


@dataclass(frozen=True)
class Footer:
    format_version: int
    checksum: int
    metaindex: BlockHandle
    index: BlockHandle | None  # format_version 6 keeps it in the metaindex

    @property
    def checksum_name(self) -> str:
        return CHECKSUM_NAMES.get(self.checksum, f"unknown({self.checksum})")


@dataclass(frozen=True)
class SstRecord:
    """One internal record: a range deletion's `value` is its end key."""

    key: InternalKey
    value: bytes
    offset: int  # of its data block


@dataclass
class SstFile:
    path: Path
    size: int
    footer: Footer
    metaindex: dict[str, BlockHandle]
    properties: dict[str, int | str | bytes] = field(default_factory=dict)

    def prop_int(self, name: str) -> int | None:
        value = self.properties.get(name)
        return value if isinstance(value, int) else None

    def prop_text(self, name: str) -> str | None:
        value = self.properties.get(name)
        return value if isinstance(value, str) else None


class TableReader:
    """Reads one table through a read-only memory map; use it as a context manager."""

    def __init__(self, path: str | Path, *, verify_checksums: bool = False) -> None:
        self.path = Path(path)
        self.verify_checksums = verify_checksums
        self._format_version = 2  # until the footer is read: the meta blocks are not compressed
        self._checksum = 0
        self._fh: BinaryIO = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        self._map: mmap.mmap | None = None
        try:
            self.size = os.fstat(self._fh.fileno()).st_size
            if self.size:
                self._map = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
            self.table = self._open()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        self._fh.close()

    def __enter__(self) -> TableReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _bytes(self, offset: int, n: int) -> bytes:
        if self._map is None or offset < 0 or offset + n > self.size:
            raise FormatError(f"block of {n} bytes runs past the end of the file", offset)
        return self._map[offset : offset + n]

    # -- footer, metaindex, properties -------------------------------------------------------------
    def _open(self) -> SstFile:
        if self.size < LEGACY_FOOTER:
            raise FormatError(f"file of {self.size} bytes is too short to be a table", 0)
        magic = fixed64_at(self._bytes(self.size - 8, 8), 0)
        if magic in (PLAIN_TABLE_MAGIC, LEGACY_PLAIN_TABLE_MAGIC, CUCKOO_MAGIC):
            raise UnsupportedFormat("a plain or cuckoo table: kvtool reads block-based tables only")
        footer = self._footer(magic)
        self._format_version, self._checksum = footer.format_version, footer.checksum
        if self.verify_checksums and self._checksum != 1:
            raise UnsupportedFormat(
                f"blocks checksummed with {footer.checksum_name} cannot be verified here "
                "(kvtool verifies CRC32c; `kvtool verify` checks a database natively)"
            )
        if self.verify_checksums and footer.format_version >= 6:
            raise UnsupportedFormat("format_version 6 block checksums cannot be verified here")
        metaindex = {
            key.decode("utf-8", "replace"): block_handle(value, footer.metaindex.offset)
            for key, value, _ in block_entries(
                self.block(footer.metaindex), footer.metaindex.offset
            )
        }
        if footer.index is None:
            index = metaindex.get("rocksdb.index")
            if index is None:
                raise FormatError("the metaindex names no index block", footer.metaindex.offset)
            footer = Footer(footer.format_version, footer.checksum, footer.metaindex, index)
        table = SstFile(self.path, self.size, footer, metaindex)
        handle = metaindex.get("rocksdb.properties")
        if handle is not None:
            table.properties = _properties(self.block(handle), handle.offset)
        return table

    def _footer(self, magic: int) -> Footer:
        if magic == LEGACY_MAGIC:
            start = self.size - LEGACY_FOOTER
            reader = Reader(self._bytes(start, LEGACY_FOOTER), base=start)
            meta = BlockHandle(reader.varint(), reader.varint())
            index = BlockHandle(reader.varint(), reader.varint())
            return Footer(0, 1, meta, index)
        if magic != MAGIC:
            raise FormatError(f"not a RocksDB table (magic {magic:#018x})", self.size - 8)
        if self.size < FOOTER:
            raise FormatError(f"file of {self.size} bytes is too short to be a table", 0)
        start = self.size - FOOTER
        raw = self._bytes(start, FOOTER)
        version = fixed32_at(raw, FOOTER - 12)
        checksum = raw[0]
        if raw[1:5] == _V6_EXTENDED_MAGIC:
            # format_version 6: the metaindex block ends where the footer starts; its size is
            # in the footer and the index handle is in the metaindex.
            meta_size = fixed32_at(raw, 13)
            meta = BlockHandle(start - meta_size - TRAILER, meta_size)
            return Footer(version, checksum, meta, None)
        reader = Reader(raw, 1, base=start)
        meta = BlockHandle(reader.varint(), reader.varint())
        index = BlockHandle(reader.varint(), reader.varint())
        return Footer(version, checksum, meta, index)

    def block(self, handle: BlockHandle) -> bytes:
        """A block's contents, decompressed; with `verify_checksums`, its CRC32c checked first
        (over the stored bytes and the compression type byte, masked as in log records)."""
        raw = self._bytes(handle.offset, handle.size + TRAILER)
        kind = raw[handle.size]
        if self.verify_checksums:
            stored = unmask_crc(fixed32_at(raw, handle.size + 1))
            if crc32c(raw[: handle.size + 1]) != stored:
                raise FormatError(
                    f"checksum mismatch in the block of {handle.size} bytes", handle.offset
                )
        return decompress(
            kind, raw[: handle.size], format_version=self._format_version, offset=handle.offset
        )

    def entries(self, handle: BlockHandle) -> Iterator[tuple[bytes, bytes]]:
        """(internal key, value) of each entry of a data block."""
        return data_entries(self.block(handle), handle.offset)

    def block_compression(self, handle: BlockHandle) -> str:
        return compression_name(self._bytes(handle.offset + handle.size, 1)[0])

    # -- index and data ----------------------------------------------------------------------------
    def data_handles(self) -> Iterator[BlockHandle]:
        """Every data block's handle, in key order (a two-level index is followed down)."""
        table = self.table
        index = table.footer.index
        assert index is not None
        delta = bool(table.prop_int("rocksdb.index.value.is.delta.encoded"))
        with_first_key = table.prop_int("rocksdb.block.based.table.index.type") == 3
        top = self._index_handles(index, delta, with_first_key)
        if table.prop_int("rocksdb.block.based.table.index.type") == 2:
            for partition in top:
                # Partitions and the top level share the value encoding.
                yield from self._index_handles(partition, delta, with_first_key)
        else:
            yield from top

    def data_handles_at(self, positions: list[int]) -> list[BlockHandle]:
        """The handles of the data blocks at these positions (0-based, in key order). A
        one-level index with a restart point per entry (RocksDB's default) is read at those
        entries only; any other index is walked whole."""
        table = self.table
        index = table.footer.index
        assert index is not None
        blocks = table.prop_int("rocksdb.num.data.blocks")
        if table.prop_int("rocksdb.block.based.table.index.type") in (0, 3) and blocks:
            block = self.block(index)
            restarts = fixed32_at(block, len(block) - 4) & 0x7FFFFFFF
            if restarts == blocks:
                delta = bool(table.prop_int("rocksdb.index.value.is.delta.encoded"))
                at = len(block) - 4 - 4 * restarts
                out, reader = [], Reader(block, base=index.offset)
                for i in positions:
                    reader.pos = fixed32_at(block, at + 4 * i)
                    reader.varint(32)  # shared: 0 at a restart point
                    unshared = reader.varint(32)
                    if not delta:
                        reader.varint(32)
                    reader.pos += unshared  # the key (the handle's varints check the bounds)
                    out.append(BlockHandle(reader.varint(), reader.varint()))
                return out
        handles = list(self.data_handles())
        return [handles[i] for i in positions]

    def _index_handles(
        self, handle: BlockHandle, delta: bool, with_first_key: bool
    ) -> Iterator[BlockHandle]:
        block = self.block(handle)
        previous: BlockHandle | None = None
        for _key, value, restart in block_entries(block, handle.offset, delta_values=delta):
            reader = Reader(value, base=handle.offset)
            if not delta or restart or previous is None:
                current = BlockHandle(reader.varint(), reader.varint())
            else:
                size = previous.size + reader.signed_varint()
                current = BlockHandle(previous.offset + previous.size + TRAILER, size)
            previous = current
            yield current

    def records(self) -> Iterator[SstRecord]:
        """Every point record in key order, then the range deletions."""
        for handle in self.data_handles():
            for key, value in self.entries(handle):
                yield SstRecord(InternalKey.parse(key, handle.offset), value, handle.offset)
        yield from self.range_deletions()

    def range_deletions(self) -> Iterator[SstRecord]:
        handle = self.table.metaindex.get("rocksdb.range_del")
        if handle is None:
            return
        for key, value, _ in block_entries(self.block(handle), handle.offset):
            yield SstRecord(InternalKey.parse(key, handle.offset), value, handle.offset)

    def first_and_last(self) -> tuple[InternalKey | None, InternalKey | None]:
        """The smallest and largest point keys: the first and last data blocks' ends."""
        first = last = None
        handles = list(self.data_handles())
        if handles:
            entries = list(block_entries(self.block(handles[0]), handles[0].offset))
            if entries:
                first = InternalKey.parse(entries[0][0], handles[0].offset)
            entries = list(block_entries(self.block(handles[-1]), handles[-1].offset))
            if entries:
                last = InternalKey.parse(entries[-1][0], handles[-1].offset)
        return first, last


def _properties(block: bytes, offset: int) -> dict[str, int | str | bytes]:
    out: dict[str, int | str | bytes] = {}
    for raw_name, value, _ in block_entries(block, offset):
        name = raw_name.decode("utf-8", "replace")
        if name in _TEXT_PROPERTIES:
            out[name] = value.decode("utf-8", "replace")
        elif name in _FIXED32_PROPERTIES and len(value) == 4:
            out[name] = fixed32_at(value, 0)
        elif name in _FIXED64_PROPERTIES and len(value) == 8:
            out[name] = fixed64_at(value, 0)
        else:
            reader = Reader(value)
            try:
                number = reader.varint()
            except FormatError:
                number = None
            out[name] = number if number is not None and reader.at_end() else value
    return out
