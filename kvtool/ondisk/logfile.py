"""RocksDB's log format, which both write-ahead logs and MANIFESTs use: 32 KiB blocks of
checksummed fragments (FULL, or FIRST, MIDDLE..., LAST) that join into records, and the
recyclable variants that also carry the log's number."""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kvtool.ondisk.coding import Damage, crc32c, fixed32_at, unmask_crc

BLOCK_SIZE = 32768
HEADER = 7  # masked crc (4), length (2), type (1)
RECYCLABLE_HEADER = 11  # ... and the log number (4)

_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_RECYCLABLE = {5: _FULL, 6: _FIRST, 7: _MIDDLE, 8: _LAST}
# Metadata records (compression, user-defined timestamp sizes): checked, then skipped.
_META = {9, 10, 11}


@dataclass(frozen=True)
class LogRecord:
    """One logical record and the file offset of its first fragment."""

    offset: int
    data: bytes


def log_number(path: str | Path) -> int | None:
    """The number in a log's name (`000012.log`, `MANIFEST-000005`), which recycled logs carry."""
    stem = Path(path).name
    digits = stem.rsplit("-", 1)[-1].split(".", 1)[0]
    return int(digits) if digits.isdigit() else None


def read_log(path: str | Path) -> Iterator[LogRecord | Damage]:
    """Every record of a log file, in order, with a Damage wherever the file stops following the
    format. A fragment cut by the end of the file, or a bad one with nothing valid after it, is
    the torn tail a crash leaves (`torn=True`) and ends the log; damage before the end is
    reported and reading resumes at the next block, as RocksDB's reader does."""
    name = str(path)
    with open(path, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            # A pipe (`kvtool wal <(zcat x.log.gz)`): its size is 0 and it cannot be mapped.
            yield from _records(fh.read(), name, log_number(path))
            return
        size = info.st_size
        if size == 0:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield from _records(bytes(data), name, log_number(path))


def _records(data: bytes, name: str, number: int | None) -> Iterator[LogRecord | Damage]:
    size = len(data)
    pos = 0
    pending: list[bytes] = []
    pending_at = -1
    # In a log written in the recyclable format, what follows the last record may be an older
    # log's contents (the file was reused): anything that does not check out ends the log, as
    # RocksDB's reader decides for recycled logs.
    recycled = False

    def damage(at: int, reason: str, end_of_damage: int) -> Damage:
        torn = not _anything_after(data, end_of_damage)
        return Damage(name, at, reason, torn)

    while pos < size:
        left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE
        if left_in_block < HEADER:
            pos += left_in_block  # a block's trailer: too short for a header, zero-filled
            continue
        if pos + HEADER > size:
            yield damage(pos, "record header cut short by the end of the file", size)
            return
        kind = data[pos + 6]
        length = data[pos + 4] | (data[pos + 5] << 8)
        if kind == 0 and length == 0:
            # Preallocated, never written space: the log ends here unless real records follow.
            if not _anything_after(data, pos):
                return
            nxt = pos + left_in_block
            if recycled:
                return
            yield damage(pos, "zeroed bytes inside the log", nxt)
            pos, pending = nxt, []
            continue
        recyclable = kind in _RECYCLABLE or kind == 11
        header = RECYCLABLE_HEADER if recyclable else HEADER
        end = pos + header + length
        if header > left_in_block or end > pos + left_in_block:
            if end > size:
                if not recycled:
                    yield damage(pos, "record cut short by the end of the file", size)
                return
            nxt = pos + left_in_block
            if recycled:
                return
            yield damage(pos, f"record of {length} bytes crosses a block boundary", nxt)
            pos, pending = nxt, []
            continue
        if end > size:
            if not recycled:
                yield damage(pos, "record cut short by the end of the file", size)
            return
        if recyclable:
            owner = fixed32_at(data, pos + 7)
            if number is not None and owner != number & 0xFFFFFFFF:
                return  # a recycled file's old contents: the log ends before them
        expected = unmask_crc(fixed32_at(data, pos))
        if crc32c(data[pos + 6 : end]) != expected:
            # `end` may be garbage: the next block is where reading can resume.
            nxt = min(pos + left_in_block, size)
            if recycled:
                return
            yield damage(pos, "checksum mismatch", nxt)
            pos, pending = nxt, []
            continue
        payload = data[pos + header : end]
        recycled = recycled or recyclable
        here = pos
        pos = end
        if kind in _META:
            continue
        role = _RECYCLABLE.get(kind, kind)
        if role == _FULL:
            if pending:
                yield Damage(name, pending_at, "fragmented record without its last part")
                pending = []
            yield LogRecord(here, payload)
        elif role == _FIRST:
            if pending:
                yield Damage(name, pending_at, "fragmented record without its last part")
            pending, pending_at = [payload], here
        elif role in (_MIDDLE, _LAST):
            if not pending:
                yield Damage(name, here, "fragment without its first part")
                continue
            pending.append(payload)
            if role == _LAST:
                yield LogRecord(pending_at, b"".join(pending))
                pending = []
        else:
            if recycled:
                return
            yield damage(here, f"unknown record type {kind}", pos)
            pending = []
    if pending:
        yield Damage(name, pending_at, "last record cut short by the end of the file", True)


def _anything_after(data: bytes, pos: int) -> bool:
    """Whether any non-zero byte follows `pos` (a crash leaves zeros or nothing)."""
    return bool(data[pos:].strip(b"\0"))
