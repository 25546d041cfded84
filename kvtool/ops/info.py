"""`info`: what a database is, how big, how healthy, and what needs attention."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kvtool.engine import OpenMode, get_engine, open_db
from kvtool.engine.format_safety import Need
from kvtool.engine.lockfile import lock_holder
from kvtool.engine.ondisk import wal_sizes
from kvtool.engine.options_file import OptionsFile, read_options_file
from kvtool.errors import DamagedDatabaseError, UnavailableError
from kvtool.formats.units import format_size

# RocksDB < 8.6 (e.g. Debian's ldb 7.8) cannot read table format_version 6.
_OLDEST_COMMON_FORMAT = 5
_LARGE_WAL_BYTES = 1 << 30


@dataclass(frozen=True)
class LevelInfo:
    level: int
    files: int
    bytes: int


@dataclass(frozen=True)
class ColumnFamilyInfo:
    """One column family. The figures are None when the database could not be opened (it needs
    a comparator or merge operator kvtool cannot load: see `attention`)."""

    name: str
    comparator: str | None
    format_version: int | None
    estimated_keys: int | None
    sst_bytes: int | None
    levels: list[LevelInfo]
    memtable_bytes: int | None
    memtable_entries: int | None
    pending_compaction_bytes: int | None
    compaction_pending: bool | None
    background_errors: int | None
    l0_slowdown_trigger: int | None
    merge_operator: str | None = None


@dataclass(frozen=True)
class DbInfo:
    path: str
    rocksdb_version: str | None
    options_file: str | None
    column_families: list[ColumnFamilyInfo]
    sst_files: int
    sst_bytes: int
    wal_files: int
    wal_bytes: int
    held_by_pid: int | None
    attention: list[str] = field(default_factory=list)
    # The engine that read it, e.g. "rocksdict 0.3.29, RocksDB 9.8.4" (`--engine`).
    engine: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _opt_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _merge_operator(options: OptionsFile | None, cf: str) -> str | None:
    name = options.cf_options.get(cf, {}).get("merge_operator") if options else None
    return None if name in (None, "nullptr") else name


def describe(path: Path) -> DbInfo:
    """Read everything `info` shows. Read-only: the database directory is left untouched.

    A database whose metadata lost data is described as RocksDB recovers it, the loss first
    under attention (reads and `verify` refuse it with exit 74).
    """
    needs = get_engine().unmet_needs(path)
    if needs:
        return _describe_unopened(path, [_unmet_note(need) for need in needs])
    try:
        opened = open_db(path, OpenMode.READ_ONLY, allow_data_loss=True)
    except (
        UnavailableError
    ) as exc:  # e.g. merge operands and no OPTIONS file to name their operator
        return _describe_unopened(path, [f"{exc.message}: reads exit 69"])
    except DamagedDatabaseError as exc:  # damage RocksDB itself cannot open past
        return _describe_unopened(path, [f"data loss: {exc.message}: reads exit 74"])
    with opened as db:
        damage = list(db.damage)
        options = read_options_file(path)
        files = db.live_files()
        cfs: list[ColumnFamilyInfo] = []
        for name in db.column_families:
            by_level: dict[int, list[int]] = {}
            for f in files:
                if f.column_family == name:
                    by_level.setdefault(f.level, []).append(f.size)
            cf_opts = options.cf_options.get(name, {}) if options else {}
            cfs.append(
                ColumnFamilyInfo(
                    name=name,
                    comparator=cf_opts.get("comparator"),
                    format_version=_opt_int(
                        options.table_option(name, "format_version") if options else None
                    ),
                    estimated_keys=_int(db.property("rocksdb.estimate-num-keys", name)),
                    sst_bytes=_int(db.property("rocksdb.total-sst-files-size", name)),
                    levels=[
                        LevelInfo(level=lvl, files=len(sizes), bytes=sum(sizes))
                        for lvl, sizes in sorted(by_level.items())
                    ],
                    memtable_bytes=_int(db.property("rocksdb.cur-size-all-mem-tables", name)),
                    memtable_entries=_int(db.property("rocksdb.num-entries-active-mem-table", name))
                    + _int(db.property("rocksdb.num-entries-imm-mem-tables", name)),
                    pending_compaction_bytes=_int(
                        db.property("rocksdb.estimate-pending-compaction-bytes", name)
                    ),
                    compaction_pending=_int(db.property("rocksdb.compaction-pending", name)) > 0,
                    background_errors=_int(db.property("rocksdb.background-errors", name)),
                    l0_slowdown_trigger=_opt_int(cf_opts.get("level0_slowdown_writes_trigger")),
                    merge_operator=_merge_operator(options, name),
                )
            )
    wal = wal_sizes(path)
    info = DbInfo(
        path=str(path),
        rocksdb_version=options.rocksdb_version if options else None,
        options_file=options.path.name if options else None,
        column_families=cfs,
        sst_files=len(files),
        sst_bytes=sum(f.size for f in files),
        wal_files=len(wal),
        wal_bytes=sum(wal),
        held_by_pid=lock_holder(path),
        engine=get_engine().describe(),
    )
    info.attention.extend(f"data loss: {note}" for note in damage)
    info.attention.extend(_attention(info))
    return info


def _unmet_note(need: Need) -> str:
    return (
        f"[{need.cf}] needs {need.kind} {need.name}, which kvtool's RocksDB cannot load: "
        "reads exit 69, and writes are refused even with --force"
    )


def _describe_unopened(path: Path, notes: list[str]) -> DbInfo:
    """What the OPTIONS file and the directory say, for a database kvtool must not open: it
    needs a comparator or merge operator that kvtool's RocksDB cannot load (an open could drop
    WAL records, a read could crash). Figures that only an open gives (keys, levels, memtables)
    are None; `notes` say why, under attention."""
    options = read_options_file(path)
    cfs = [
        ColumnFamilyInfo(
            name=name,
            comparator=settings.get("comparator"),
            format_version=_opt_int(
                options.table_option(name, "format_version") if options else None
            ),
            estimated_keys=None,
            sst_bytes=None,
            levels=[],
            memtable_bytes=None,
            memtable_entries=None,
            pending_compaction_bytes=None,
            compaction_pending=None,
            background_errors=None,
            l0_slowdown_trigger=_opt_int(settings.get("level0_slowdown_writes_trigger")),
            merge_operator=_merge_operator(options, name),
        )
        for name, settings in (options.cf_options.items() if options else ())
    ]
    sst = [p for p in path.iterdir() if p.suffix == ".sst"]
    wal = wal_sizes(path)
    info = DbInfo(
        path=str(path),
        rocksdb_version=options.rocksdb_version if options else None,
        options_file=options.path.name if options else None,
        column_families=cfs,
        sst_files=len(sst),
        sst_bytes=sum(p.stat().st_size for p in sst),
        wal_files=len(wal),
        wal_bytes=sum(wal),
        held_by_pid=lock_holder(path),
        engine=get_engine().describe(),
    )
    info.attention.extend(notes)
    info.attention.append(
        "kvtool did not open it, so figures that need an open (keys, levels, memtables) are "
        "not shown"
    )
    info.attention.extend(_attention(info))
    return info


def _attention(info: DbInfo) -> list[str]:
    notes: list[str] = []
    for cf in info.column_families:
        if cf.background_errors:
            notes.append(f"[{cf.name}] {cf.background_errors} background error(s): check LOG")
        l0 = next((lv.files for lv in cf.levels if lv.level == 0), 0)
        if cf.l0_slowdown_trigger and l0 >= cf.l0_slowdown_trigger:
            notes.append(
                f"[{cf.name}] {l0} L0 files >= slowdown trigger {cf.l0_slowdown_trigger}: "
                "writes are being slowed; run `kvtool compact`"
            )
        if (
            cf.pending_compaction_bytes is not None
            and cf.sst_bytes is not None
            and cf.pending_compaction_bytes > cf.sst_bytes // 2
            and cf.pending_compaction_bytes > 1 << 26
        ):
            notes.append(
                f"[{cf.name}] {format_size(cf.pending_compaction_bytes)} waiting for compaction"
            )
        if cf.format_version is not None and cf.format_version > _OLDEST_COMMON_FORMAT:
            notes.append(
                f"[{cf.name}] table format_version {cf.format_version}: RocksDB older than 8.6 "
                "(e.g. ldb 7.8) cannot read new files"
            )
    if info.wal_bytes > _LARGE_WAL_BYTES:
        notes.append(f"WAL holds {format_size(info.wal_bytes)}: the writer may not be flushing")
    if info.held_by_pid is not None:
        notes.append(
            f"in use by process {info.held_by_pid}: figures are as of this moment, "
            "and writing commands will exit 75"
        )
    return notes
