"""Which SST files outside the recovered version lose nothing: what a crash leaves between a
flush or compaction writing its output file and the MANIFEST edit that adds it, and inputs a
recorded compaction replaced before they were deleted (docs/design.md, Engine facts 11).

Measured on RocksDB 9.8 (rocksdict) and 6.14: the first read-write open deletes every SST file
its version does not reference. For the output of an unrecorded flush that loses nothing (the
WAL it came from is still live, since the same lost edit would have retired it), and for the
output of an unrecorded compaction neither (its inputs are still in the version). The file
number tells nothing: a flush's output and a file whose recorded edit was lost are both numbered
at or past the MANIFEST's `next_file_number`, or both below it when another job's edit came in
between. So the check is on the records: a file loses nothing when each of its records is in
what recovery keeps, a WAL it replays or a live SST file of the same column family.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kvtool.engine.ondisk import file_number
from kvtool.ondisk.coding import Damage, FormatError, type_name
from kvtool.ondisk.logfile import LogRecord, read_log
from kvtool.ondisk.manifest import (
    ColumnFamilyState,
    Version,
    VersionEdit,
    current_manifest,
    read_edits,
    replay,
)
from kvtool.ondisk.sst import UNKNOWN_CF_ID, TableReader
from kvtool.ondisk.writebatch import parse_batch

# Types whose newest record decides a read on its own: a copy of one at the same or a later
# sequence number reads the same (compaction to the last level zeroes sequence numbers, so an
# unrecorded compaction output holds its inputs' records at sequence 0). A merge operand, a
# single delete or a range deletion must be found as it is: one more of them changes reads.
_DECISIVE = frozenset({"put", "delete", "put_entity"})
# Past this many records an unreferenced file is not checked (its digests are held in memory:
# about 130 bytes each) and is taken for lost data, as before this check.
RECORD_LIMIT = 1_000_000
_BYTEWISE = "leveldb.BytewiseComparator"


@dataclass
class _Needed:
    """The records of one unreferenced file not yet found elsewhere, as digests."""

    decisive: dict[bytes, int] = field(default_factory=dict)  # (key, type, value) -> max seq
    exact: set[bytes] = field(default_factory=set)  # (key, seq, type, value)
    low: bytes | None = None
    high: bytes | None = None
    newest: int = 0

    def add(self, key: bytes, seq: int, kind: str, value: bytes) -> None:
        self.newest = max(self.newest, seq)
        if kind in _DECISIVE:
            digest = _digest(key, kind, value)
            self.decisive[digest] = max(seq, self.decisive.get(digest, 0))
        else:
            self.exact.add(_digest(key, kind, value, seq))
        ends = (key, value) if kind == "delete_range" else (key,)
        self.low = min((self.low, *ends)) if self.low is not None else min(ends)
        self.high = max((self.high, *ends)) if self.high is not None else max(ends)

    def offer(self, key: bytes, seq: int, kind: str, value: bytes) -> None:
        if kind in _DECISIVE:
            digest = _digest(key, kind, value)
            if seq >= self.decisive.get(digest, seq + 1):
                del self.decisive[digest]
        elif self.exact:
            self.exact.discard(_digest(key, kind, value, seq))

    @property
    def done(self) -> bool:
        return not self.decisive and not self.exact


def _digest(key: bytes, kind: str, value: bytes, seq: int = -1) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(b"%d:%s:%d:%d:" % (len(key), kind.encode(), seq, len(value)))
    h.update(key)
    h.update(value)
    return h.digest()


@dataclass
class History:
    """What the MANIFEST records: the version it adds up to (kvtool's own reader) and the files
    its edits retired (compaction inputs, files of a dropped column family)."""

    version: Version
    retired: set[int]

    def live(self) -> set[int]:
        return {n for cf in self.version.column_families.values() for n in _numbers(cf)}


def _numbers(cf: ColumnFamilyState) -> set[int]:
    return {n for files in cf.levels.values() for n in files}


def _edits(path: Path) -> Iterator[VersionEdit]:
    """The edits before any damage: RocksDB recovers no further."""
    for item in read_edits(path):
        if isinstance(item, Damage):
            return
        yield item


def _retire(edits: Iterable[VersionEdit], retired: set[int]) -> list[VersionEdit]:
    added: dict[int, set[int]] = {}
    kept = []
    for edit in edits:
        kept.append(edit)
        retired.update(number for _level, number in edit.deleted)
        added.setdefault(edit.column_family, set()).update(f.number for f in edit.added)
        if edit.column_family_drop:
            retired.update(added.pop(edit.column_family, set()))
    return kept


def read_history(db_dir: Path, older_dir: Path | None = None) -> History | None:
    """The MANIFEST that `db_dir/CURRENT` names, and the deletions older MANIFESTs of
    `older_dir` record (an owner that crashed after writing a new MANIFEST and before deleting
    the old one leaves both); None when the current one cannot be read."""
    retired: set[int] = set()
    try:
        manifest = current_manifest(db_dir)
        edits = _retire(_edits(manifest), retired)
    except (OSError, FormatError):
        return None
    try:
        older = [older_dir / n for n in os.listdir(older_dir)] if older_dir is not None else []
    except OSError:
        older = []
    for path in older:
        if path.name.startswith("MANIFEST-") and path.name != manifest.name:
            try:
                _retire(_edits(path), retired)
            except (OSError, FormatError):
                continue  # it only ever retires files: one unread retires none
    version, _ = replay(iter(edits))
    return History(version, retired)


def loses_nothing(db_dir: Path, table: Path, history: History) -> bool:
    """Whether every record of the unreferenced `table` is in what recovery keeps of `db_dir`:
    a WAL it replays for the table's column family, or a live SST file of that family. A file
    that cannot be read, an external file (ingested: its data is nowhere else), one of an
    unknown column family, or one past RECORD_LIMIT is not shown to lose nothing."""
    try:
        with TableReader(table) as reader:
            props = reader.table
            if "rocksdb.external_sst_file.version" in props.properties:
                return False
            cf_id = props.prop_int("rocksdb.column.family.id")
            entries = (props.prop_int("rocksdb.num.entries") or 0) + (
                props.prop_int("rocksdb.num.range-deletions") or 0
            )
            cf = history.version.column_families.get(cf_id) if cf_id is not None else None
            if cf is None or cf_id == UNKNOWN_CF_ID or entries > RECORD_LIMIT:
                return False
            needed = _Needed()
            for record in reader.records():
                k = record.key
                needed.add(k.user_key, k.sequence, type_name(k.kind), record.value)
        # A compaction's output holds nothing newer than the live files (its inputs): those
        # first, so that a large WAL is not read for it; a flush's output is newer.
        flushed = max(
            (e.largest_seqno or 0 for files in cf.levels.values() for e in files.values()),
            default=0,
        )
        sources = [_offer_wals, _offer_tables]
        if needed.newest <= flushed:
            sources.reverse()
        for offer in sources:
            if not needed.done:
                offer(db_dir, cf, needed)
    except (OSError, FormatError):
        return False
    return needed.done


def _offer_wals(db_dir: Path, cf: ColumnFamilyState, needed: _Needed) -> None:
    """The records of the WALs recovery replays into `cf` (numbered from its log number on),
    each up to its first damage (where recovery stops)."""
    wals = [n for n in os.listdir(db_dir) if n.endswith(".log") and file_number(n) >= 0]
    for name in sorted(wals, key=file_number):
        if file_number(name) < cf.log_number:
            continue
        for item in read_log(db_dir / name):
            if not isinstance(item, LogRecord):
                break
            try:
                batch = parse_batch(item.data, item.offset)
            except FormatError:
                break
            for op in batch.ops:
                if op.cf == cf.id and op.sequence is not None and op.key is not None:
                    needed.offer(op.key, op.sequence, op.op, op.value or b"")
            if needed.done:
                return


def _offer_tables(db_dir: Path, cf: ColumnFamilyState, needed: _Needed) -> None:
    """The records of `cf`'s live SST files; in a bytewise order, only files whose key range
    meets the records still needed."""
    bytewise = cf.comparator in (None, _BYTEWISE)
    low, high = needed.low, needed.high
    for level in sorted(cf.levels):
        for number, entry in sorted(cf.levels[level].items()):
            outside = (
                low is not None
                and high is not None
                and (entry.largest.user_key < low or entry.smallest.user_key > high)
            )
            if bytewise and outside:
                continue
            with TableReader(db_dir / f"{number:06d}.sst") as reader:
                for record in reader.records():
                    k = record.key
                    needed.offer(k.user_key, k.sequence, type_name(k.kind), record.value)
            if needed.done:
                return
