"""The MANIFEST: a log of VersionEdits (files added to and deleted from levels, log numbers,
sequence numbers, column families), and the current version they add up to."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kvtool.ondisk.coding import Damage, FormatError, InternalKey, Reader
from kvtool.ondisk.logfile import LogRecord, read_log

# VersionEdit tags (db/version_edit.h).
_COMPARATOR, _LOG_NUMBER, _NEXT_FILE, _LAST_SEQ, _COMPACT_CURSOR = 1, 2, 3, 4, 5
_DELETED_FILE, _NEW_FILE, _PREV_LOG, _MIN_LOG_TO_KEEP = 6, 7, 9, 10
_NEW_FILE2, _NEW_FILE3, _NEW_FILE4 = 100, 102, 103
_CF, _CF_ADD, _CF_DROP, _MAX_CF = 200, 201, 202, 203
_ATOMIC_GROUP = 300
_BLOB_ADD, _BLOB_GARBAGE = 400, 401
_SAFE_IGNORE = 1 << 13
_DB_ID, _BLOB_ADD2, _BLOB_GARBAGE2 = _SAFE_IGNORE + 1, _SAFE_IGNORE + 2, _SAFE_IGNORE + 3
_WAL_ADD, _WAL_DEL = _SAFE_IGNORE + 4, _SAFE_IGNORE + 5
_FULL_HISTORY_TS_LOW = _SAFE_IGNORE + 6
_WAL_ADD2, _WAL_DEL2 = _SAFE_IGNORE + 7, _SAFE_IGNORE + 8
_PERSIST_UDT = _SAFE_IGNORE + 9

# Custom fields of a kNewFile4 entry: tag -> name (numbers are varint64 inside the field).
_FILE_FIELDS = {
    2: "marked_for_compaction",
    3: "min_log_number_to_keep",
    4: "oldest_blob_file_number",
    5: "oldest_ancester_time",
    6: "file_creation_time",
    7: "file_checksum",
    8: "file_checksum_func_name",
    9: "temperature",
    10: "min_timestamp",
    11: "max_timestamp",
    12: "unique_id",
    13: "epoch_number",
    14: "compensated_range_deletion_size",
    15: "tail_size",
    16: "user_defined_timestamps_persisted",
    65: "path_id",
}
_NUMERIC_FIELDS = {3, 4, 5, 6, 13, 14, 15}
_CUSTOM_NON_SAFE = 1 << 6


@dataclass
class FileEntry:
    """An SST file a VersionEdit adds to a level."""

    level: int
    number: int
    size: int
    smallest: InternalKey
    largest: InternalKey
    smallest_seqno: int | None = None
    largest_seqno: int | None = None
    fields: dict[str, int | bytes] = field(default_factory=dict)


@dataclass
class VersionEdit:
    offset: int
    column_family: int = 0
    comparator: str | None = None
    db_id: str | None = None
    log_number: int | None = None
    prev_log_number: int | None = None
    next_file_number: int | None = None
    last_sequence: int | None = None
    min_log_number_to_keep: int | None = None
    max_column_family: int | None = None
    column_family_add: str | None = None
    column_family_drop: bool = False
    atomic_group_remaining: int | None = None
    added: list[FileEntry] = field(default_factory=list)
    deleted: list[tuple[int, int]] = field(default_factory=list)  # (level, file number)
    blob_files_added: list[dict[str, int | str]] = field(default_factory=list)
    blob_garbage: list[dict[str, int]] = field(default_factory=list)
    wals_added: list[dict[str, int]] = field(default_factory=list)
    wals_deleted: list[int] = field(default_factory=list)
    unknown_tags: list[int] = field(default_factory=list)


def parse_edit(data: bytes, offset: int = 0) -> VersionEdit:
    reader = Reader(data, base=offset)
    edit = VersionEdit(offset)
    while not reader.at_end():
        tag = reader.varint(32)
        if tag == _COMPARATOR:
            edit.comparator = reader.slice().decode("utf-8", "replace")
        elif tag == _DB_ID:
            edit.db_id = reader.slice().decode("utf-8", "replace")
        elif tag == _LOG_NUMBER:
            edit.log_number = reader.varint()
        elif tag == _PREV_LOG:
            edit.prev_log_number = reader.varint()
        elif tag == _NEXT_FILE:
            edit.next_file_number = reader.varint()
        elif tag == _LAST_SEQ:
            edit.last_sequence = reader.varint()
        elif tag == _MIN_LOG_TO_KEEP:
            edit.min_log_number_to_keep = reader.varint()
        elif tag == _MAX_CF:
            edit.max_column_family = reader.varint(32)
        elif tag == _COMPACT_CURSOR:
            reader.varint(32)
            reader.slice()
        elif tag == _DELETED_FILE:
            edit.deleted.append((reader.varint(32), reader.varint()))
        elif tag in (_NEW_FILE, _NEW_FILE2, _NEW_FILE3, _NEW_FILE4):
            edit.added.append(_new_file(reader, tag))
        elif tag == _CF:
            edit.column_family = reader.varint(32)
        elif tag == _CF_ADD:
            edit.column_family_add = reader.slice().decode("utf-8", "replace")
        elif tag == _CF_DROP:
            edit.column_family_drop = True
        elif tag == _ATOMIC_GROUP:
            edit.atomic_group_remaining = reader.varint(32)
        elif tag in (_BLOB_ADD, _BLOB_ADD2):
            sub = Reader(reader.slice(), base=offset) if tag == _BLOB_ADD2 else reader
            edit.blob_files_added.append(_blob_addition(sub))
        elif tag in (_BLOB_GARBAGE, _BLOB_GARBAGE2):
            sub = Reader(reader.slice(), base=offset) if tag == _BLOB_GARBAGE2 else reader
            edit.blob_garbage.append(_blob_garbage(sub))
        elif tag in (_WAL_ADD, _WAL_ADD2):
            sub = Reader(reader.slice(), base=offset) if tag == _WAL_ADD2 else reader
            edit.wals_added.append(_wal_addition(sub))
        elif tag in (_WAL_DEL, _WAL_DEL2):
            sub = Reader(reader.slice(), base=offset) if tag == _WAL_DEL2 else reader
            edit.wals_deleted.append(sub.varint())
        elif tag & _SAFE_IGNORE:
            reader.slice()  # a newer release's field that older readers may skip
            edit.unknown_tags.append(tag)
        else:
            raise FormatError(f"unknown VersionEdit tag {tag}", offset + reader.pos)
    return edit


def _new_file(reader: Reader, tag: int) -> FileEntry:
    level = reader.varint(32)
    number = reader.varint()
    if tag == _NEW_FILE3:
        reader.varint(32)  # path id
    size = reader.varint()
    smallest = InternalKey.parse(reader.slice(), reader.base + reader.pos)
    largest = InternalKey.parse(reader.slice(), reader.base + reader.pos)
    entry = FileEntry(level, number, size, smallest, largest)
    if tag != _NEW_FILE:
        entry.smallest_seqno = reader.varint()
        entry.largest_seqno = reader.varint()
    if tag == _NEW_FILE4:
        while True:
            custom = reader.varint(32)
            if custom == 1:  # terminate
                break
            value = reader.slice()
            name = _FILE_FIELDS.get(custom)
            if name is None:
                if custom & _CUSTOM_NON_SAFE:
                    raise reader.fail(f"unknown file field {custom} that must not be ignored")
                continue
            if custom in _NUMERIC_FIELDS:
                entry.fields[name] = Reader(value).varint()
            elif custom in (2, 9, 16):
                entry.fields[name] = value[0] if value else 1
            else:
                entry.fields[name] = value
    return entry


def _custom_fields(reader: Reader) -> None:
    """A blob file record's custom fields: tag, slice, ... up to the end marker (tag 0)."""
    while True:
        tag = reader.varint(32)
        if tag == 0:
            return
        reader.slice()


def _blob_addition(reader: Reader) -> dict[str, int | str]:
    out: dict[str, int | str] = {
        "blob_file_number": reader.varint(),
        "total_blob_count": reader.varint(),
        "total_blob_bytes": reader.varint(),
        "checksum_method": reader.slice().decode("utf-8", "replace"),
        "checksum_value": reader.slice().hex(),
    }
    _custom_fields(reader)
    return out


def _blob_garbage(reader: Reader) -> dict[str, int]:
    out = {
        "blob_file_number": reader.varint(),
        "garbage_blob_count": reader.varint(),
        "garbage_blob_bytes": reader.varint(),
    }
    _custom_fields(reader)
    return out


def _wal_addition(reader: Reader) -> dict[str, int]:
    out = {"log_number": reader.varint()}
    while True:
        tag = reader.varint(32)
        if tag == 1:
            return out
        if tag == 2:
            out["synced_size"] = reader.varint()
        else:
            reader.slice()


def read_edits(path: str | Path) -> Iterator[VersionEdit | Damage]:
    """Every VersionEdit of a MANIFEST file, with a Damage wherever it stops parsing."""
    for item in read_log(path):
        if isinstance(item, LogRecord):
            try:
                yield parse_edit(item.data, item.offset)
            except FormatError as exc:
                yield Damage(str(path), exc.offset or item.offset, f"VersionEdit: {exc.reason}")
        else:
            yield item


def current_manifest(db: str | Path) -> Path:
    """The MANIFEST that CURRENT names."""
    current = Path(db) / "CURRENT"
    name = current.read_text(encoding="utf-8", errors="replace").strip()
    if not name.startswith("MANIFEST-") or "/" in name:
        raise FormatError(f"CURRENT names {name!r}, not a MANIFEST")
    return Path(db) / name


@dataclass
class ColumnFamilyState:
    id: int
    name: str
    comparator: str | None = None
    log_number: int = 0
    levels: dict[int, dict[int, FileEntry]] = field(default_factory=dict)
    dropped: bool = False


@dataclass
class Version:
    """The state the edits add up to: live files per column family and level, and counters."""

    column_families: dict[int, ColumnFamilyState] = field(default_factory=dict)
    next_file_number: int | None = None
    last_sequence: int | None = None
    prev_log_number: int | None = None
    min_log_number_to_keep: int | None = None
    max_column_family: int | None = None
    db_id: str | None = None
    blob_files: dict[int, dict[str, int | str]] = field(default_factory=dict)
    edits: int = 0


def replay(edits: Iterator[VersionEdit | Damage]) -> tuple[Version, list[Damage]]:
    version = Version(column_families={0: ColumnFamilyState(0, "default")})
    damage: list[Damage] = []
    for edit in edits:
        if isinstance(edit, Damage):
            damage.append(edit)
            continue
        version.edits += 1
        cf_id = edit.column_family
        if edit.column_family_add is not None:
            version.column_families[cf_id] = ColumnFamilyState(cf_id, edit.column_family_add)
        cf = version.column_families.setdefault(cf_id, ColumnFamilyState(cf_id, f"#{cf_id}"))
        if edit.column_family_drop:
            cf.dropped = True
        if edit.comparator is not None:
            cf.comparator = edit.comparator
        if edit.log_number is not None:
            cf.log_number = edit.log_number
        for level, number in edit.deleted:
            cf.levels.get(level, {}).pop(number, None)
        for entry in edit.added:
            cf.levels.setdefault(entry.level, {})[entry.number] = entry
        for blob in edit.blob_files_added:
            version.blob_files[int(blob["blob_file_number"])] = blob
        for name in (
            "next_file_number",
            "last_sequence",
            "prev_log_number",
            "min_log_number_to_keep",
            "max_column_family",
            "db_id",
        ):
            value = getattr(edit, name)
            if value is not None:
                setattr(version, name, value)
    version.column_families = {k: v for k, v in version.column_families.items() if not v.dropped}
    return version, damage
