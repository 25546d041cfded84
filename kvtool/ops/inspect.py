"""What `sst`, `wal` and `manifest` show: the ondisk readers' results as plain dicts, with their
failures turned into kvtool's errors (a damaged file names the file and the byte)."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvtool.errors import (
    DatabaseNotFoundError,
)
from kvtool.ondisk.coding import Damage, FormatError, InternalKey, UnsupportedFormat
from kvtool.ondisk.logfile import read_log
from kvtool.ondisk.manifest import (
    FileEntry,
    Version,
    VersionEdit,
    current_manifest,
    read_edits,
    replay,
)
from kvtool.ondisk.sst import INDEX_TYPES, UNKNOWN_CF_ID, SstRecord, TableReader
from kvtool.ondisk.writebatch import Batch, parse_batch
from kvtool.ops.ondisk_errors import reading, seekable

Encoder = Any  # Callable[[bytes], Any]: formats.records.encoder's result


# -- sst -------------------------------------------------------------------------------------------
def sst_report(path: Path, key: Encoder) -> dict[str, Any]:
    """What `kvtool sst FILE` prints: the footer, the table properties and the key range."""
    seekable(path, "SST file")
    with reading(path, "SST file"), TableReader(path) as reader:
        t = reader.table
        p = t.prop_int
        cf_id = p("rocksdb.column.family.id")
        compression: str | None = None
        try:
            smallest, largest = reader.first_and_last()
            data_blocks = list(reader.data_handles())
            compression = reader.block_compression(data_blocks[0]) if data_blocks else None
        except UnsupportedFormat:  # the properties are still worth showing
            smallest = largest = None
        index_type = p("rocksdb.block.based.table.index.type")
        assert t.footer.index is not None
        return {
            "file": str(path),
            "file_size": t.size,
            "format_version": t.footer.format_version,
            "checksum": t.footer.checksum_name,
            "compression": t.prop_text("rocksdb.compression"),
            "first_data_block_compression": compression,
            "comparator": t.prop_text("rocksdb.comparator"),
            "merge_operator": t.prop_text("rocksdb.merge.operator"),
            "prefix_extractor": t.prop_text("rocksdb.prefix.extractor.name"),
            "filter_policy": t.prop_text("rocksdb.filter.policy") or None,
            "column_family": t.prop_text("rocksdb.column.family.name"),
            "column_family_id": None if cf_id == UNKNOWN_CF_ID else cf_id,
            "entries": p("rocksdb.num.entries"),
            "deletions": p("rocksdb.deleted.keys"),
            "merge_operands": p("rocksdb.merge.operands"),
            "range_deletions": p("rocksdb.num.range-deletions"),
            "data_blocks": p("rocksdb.num.data.blocks"),
            "raw_key_size": p("rocksdb.raw.key.size"),
            "raw_value_size": p("rocksdb.raw.value.size"),
            "data_size": p("rocksdb.data.size"),
            "index_size": p("rocksdb.index.size"),
            "index_type": INDEX_TYPES.get(index_type or 0, str(index_type)),
            "filter_size": p("rocksdb.filter.size"),
            "filter_entries": p("rocksdb.num.filter_entries"),
            "smallest_key": _ikey(smallest, key),
            "largest_key": _ikey(largest, key),
            "creation_time": p("rocksdb.creation.time"),
            "file_creation_time": p("rocksdb.file.creation.time"),
            "oldest_key_time": p("rocksdb.oldest.key.time"),
            "meta_blocks": sorted(t.metaindex),
            "properties": {k: _prop(v) for k, v in sorted(t.properties.items())},
        }


def _prop(value: int | str | bytes) -> int | str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + value.hex()
    return value


def _ikey(ik: InternalKey | None, key: Encoder) -> dict[str, Any] | None:
    if ik is None:
        return None
    return {"key": key(ik.user_key), "sequence": ik.sequence, "type": ik.type_name}


def sst_records(path: Path, *, verify_checksums: bool = False) -> Iterator[SstRecord]:
    """Every internal record of one table, point records in order, then range deletions."""
    seekable(path, "SST file")
    with reading(path, "SST file"), TableReader(path, verify_checksums=verify_checksums) as reader:
        yield from reader.records()


# -- wal -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WalBatch:
    file: Path
    offset: int
    batch: Batch


def wal_files(target: Path) -> list[Path]:
    """The logs of a database directory (oldest first), or the one file given."""
    with reading(target, "database or WAL file"):
        if target.is_dir():
            if not (target / "CURRENT").exists():
                raise DatabaseNotFoundError(f"{target}: not a RocksDB database (no CURRENT file)")
            return sorted(target.glob("*.log"), key=lambda p: (len(p.name), p.name))
        target.stat()
        return [target]


def wal_batches(files: list[Path], tail: int | None = None) -> Iterator[WalBatch | Damage]:
    """Each write batch of the logs, and each place they stop following the format."""

    def all_batches() -> Iterator[WalBatch | Damage]:
        for file in files:
            with reading(file, "WAL file"):
                for item in read_log(file):
                    if isinstance(item, Damage):
                        yield item
                        continue
                    try:
                        yield WalBatch(file, item.offset, parse_batch(item.data, item.offset))
                    except FormatError as exc:
                        yield Damage(str(file), exc.offset or item.offset, exc.reason)

    if tail is None:
        yield from all_batches()
        return
    last: collections.deque[WalBatch] = collections.deque(maxlen=tail)
    damage: list[Damage] = []
    for item in all_batches():
        if isinstance(item, Damage):
            damage.append(item)
        else:
            last.append(item)
    yield from last
    yield from damage


def cf_names(db: Path) -> dict[int, str]:
    """Column family ids to names, from the MANIFEST (ids the MANIFEST lost stay numbers)."""
    try:
        version, _ = replay(read_edits(current_manifest(db)))
    except (OSError, FormatError):
        return {0: "default"}
    return {cf.id: cf.name for cf in version.column_families.values()}


# -- manifest --------------------------------------------------------------------------------------
def manifest_path(target: Path) -> Path:
    with reading(target, "database or MANIFEST"):
        if target.is_dir():
            if not (target / "CURRENT").exists():
                raise DatabaseNotFoundError(f"{target}: not a RocksDB database (no CURRENT file)")
            return current_manifest(target)
        target.stat()
        return target


def manifest_edits(path: Path) -> Iterator[VersionEdit | Damage]:
    with reading(path, "MANIFEST"):
        yield from read_edits(path)


def manifest_version(path: Path) -> tuple[Version, list[Damage]]:
    with reading(path, "MANIFEST"):
        return replay(read_edits(path))


def file_dict(entry: FileEntry, key: Encoder) -> dict[str, Any]:
    out: dict[str, Any] = {
        "level": entry.level,
        "file_number": entry.number,
        "file_size": entry.size,
        "smallest": _ikey(entry.smallest, key),
        "largest": _ikey(entry.largest, key),
        "smallest_seqno": entry.smallest_seqno,
        "largest_seqno": entry.largest_seqno,
    }
    for name, value in entry.fields.items():
        out[name] = (
            value.hex()
            if isinstance(value, bytes) and name != "file_checksum_func_name"
            else (value.decode("utf-8", "replace") if isinstance(value, bytes) else value)
        )
    return out


def edit_dict(edit: VersionEdit, names: dict[int, str], key: Encoder) -> dict[str, Any]:
    out: dict[str, Any] = {
        "offset": edit.offset,
        "column_family": names.get(edit.column_family, f"#{edit.column_family}"),
        "column_family_id": edit.column_family,
    }
    for name in (
        "comparator",
        "db_id",
        "log_number",
        "prev_log_number",
        "next_file_number",
        "last_sequence",
        "min_log_number_to_keep",
        "max_column_family",
        "column_family_add",
        "atomic_group_remaining",
    ):
        value = getattr(edit, name)
        if value is not None:
            out[name] = value
    if edit.column_family_drop:
        out["column_family_drop"] = True
    if edit.added:
        out["added"] = [file_dict(f, key) for f in edit.added]
    if edit.deleted:
        out["deleted"] = [{"level": lv, "file_number": n} for lv, n in edit.deleted]
    for name in ("blob_files_added", "blob_garbage", "wals_added", "wals_deleted", "unknown_tags"):
        value = getattr(edit, name)
        if value:
            out[name] = value
    return out


def version_dict(version: Version, key: Encoder) -> dict[str, Any]:
    cfs = []
    for cf in sorted(version.column_families.values(), key=lambda c: c.id):
        levels = []
        for level in sorted(cf.levels):
            files = sorted(cf.levels[level].values(), key=lambda f: f.number)
            if files:
                levels.append(
                    {
                        "level": level,
                        "files": [file_dict(f, key) for f in files],
                        "bytes": sum(f.size for f in files),
                    }
                )
        cfs.append(
            {
                "name": cf.name,
                "id": cf.id,
                "comparator": cf.comparator,
                "log_number": cf.log_number,
                "levels": levels,
            }
        )
    return {
        "edits": version.edits,
        "next_file_number": version.next_file_number,
        "last_sequence": version.last_sequence,
        "prev_log_number": version.prev_log_number,
        "min_log_number_to_keep": version.min_log_number_to_keep,
        "max_column_family": version.max_column_family,
        "db_id": version.db_id,
        "column_families": cfs,
        "blob_files": sorted(version.blob_files.values(), key=lambda b: int(b["blob_file_number"])),
    }


# -- property --------------------------------------------------------------------------------------
def read_property(db: Path, name: str, cf: str = "default") -> str:
    """A RocksDB property through a read-only open (the directory is left as it was)."""
    from kvtool.engine import OpenMode, open_db
    from kvtool.errors import KeyNotFoundError

    with open_db(db, OpenMode.READ_ONLY) as handle:
        value = handle.property(name, cf)
    if value is None:
        raise KeyNotFoundError(
            f"RocksDB has no property {name!r}",
            hint="names start with rocksdb., e.g. rocksdb.stats",
        )
    return value


def table_properties(db: Path, key: Encoder) -> Iterator[dict[str, Any]]:
    """Each live SST file of the MANIFEST's current version with its table properties."""
    from kvtool.ops.du import live_tables

    path = manifest_path(db)  # refuses what is not a database
    with reading(path, "MANIFEST"):
        live = live_tables(db)
    for cf, level, sst, _size in live:
        report = sst_report(sst, key)
        yield {"cf": cf, "level": level, **report}
