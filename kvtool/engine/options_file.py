"""A database's OPTIONS files: reading the newest, and keeping it loadable by the owner's RocksDB.

Every read-write open (and every column family created or dropped) makes RocksDB write a new
OPTIONS-<n> file in its own vocabulary; RocksDB 9.8 names options that older releases do not know,
and their `LoadLatestOptions` (ldb, RocksJava's `OptionsUtil`) then refuse the database. RocksDB
itself never reads the file back (measured: a database opens and checkpoints the same whatever the
newest OPTIONS file holds), so after RocksDB writes one, kvtool replaces its content: with the
owner's own previous file (the settings kvtool loaded and opened with, in the owner's words), or,
for a database that had none (one kvtool creates), with RocksDB's file cut down to the options
RocksDB 6.14 knows (ldb 7.8 loads those too). docs/design.md, "The owner's OPTIONS file".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_OPTIONS_NAME = re.compile(r"^OPTIONS-(\d+)$")
_SECTION = re.compile(r'^\[(\S+?)(?:\s+"(.*)")?\]$')


@dataclass(frozen=True)
class OptionsFile:
    """The parsed sections; `column_families` maps a CF name to its CFOptions and table options."""

    path: Path
    version: dict[str, str] = field(default_factory=dict)
    db_options: dict[str, str] = field(default_factory=dict)
    cf_options: dict[str, dict[str, str]] = field(default_factory=dict)
    table_options: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def rocksdb_version(self) -> str | None:
        return self.version.get("rocksdb_version")

    def table_option(self, cf: str, name: str) -> str | None:
        return self.table_options.get(cf, {}).get(name)


def latest_options_path(db_dir: Path) -> Path | None:
    best: tuple[int, Path] | None = None
    for entry in db_dir.iterdir():
        match = _OPTIONS_NAME.match(entry.name)
        if match and (best is None or int(match.group(1)) > best[0]):
            best = (int(match.group(1)), entry)
    return best[1] if best else None


def read_options_file(db_dir: Path) -> OptionsFile | None:
    """Parse the newest OPTIONS-* file of `db_dir`, or None when the database has none."""
    path = latest_options_path(db_dir)
    if path is None:
        return None
    parsed = OptionsFile(path=path)
    current: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        section = _SECTION.match(line)
        if section:
            kind, name = section.group(1), section.group(2) or ""
            if kind == "Version":
                current = parsed.version
            elif kind == "DBOptions":
                current = parsed.db_options
            elif kind == "CFOptions":
                current = parsed.cf_options.setdefault(name, {})
            elif kind.startswith("TableOptions/"):
                current = parsed.table_options.setdefault(name, {"table_factory": kind[13:]})
            else:
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key.strip()] = value.strip()
    return parsed


# -- keeping the newest OPTIONS file loadable by the owner ---------------------------------------


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The comment line that marks a file kvtool rewrote (RocksDB's parser skips `#` lines).
KVTOOL_NOTE = "# kvtool:"

# What RocksDB 6.14.6 writes (and so loads) in an OPTIONS file: its option names per section and
# the fields of its struct-valued options. Measured from a file that `import rocksdb` (6.14.6)
# wrote; ldb 7.8 loads such a file with no flags (it still parses the names it deprecated).
_V6_DB_OPTIONS = _names(
    """WAL_size_limit_MB WAL_ttl_seconds access_hint_on_compaction_start advise_random_on_open
    allow_2pc allow_concurrent_memtable_write allow_data_in_errors allow_fallocate
    allow_ingest_behind allow_mmap_reads allow_mmap_writes atomic_flush
    avoid_flush_during_recovery avoid_flush_during_shutdown avoid_unnecessary_blocking_io
    base_background_compactions
    best_efforts_recovery bgerror_resume_retry_interval bytes_per_sync compaction_readahead_size
    create_if_missing create_missing_column_families db_write_buffer_size delayed_write_rate
    delete_obsolete_files_period_micros dump_malloc_stats enable_pipelined_write
    enable_thread_tracking enable_write_thread_adaptive_yield error_if_exists
    fail_if_options_file_error info_log_level is_fd_close_on_exec keep_log_file_num
    log_file_time_to_roll log_readahead_size manifest_preallocation_size manual_wal_flush
    max_background_compactions max_background_flushes max_background_jobs max_bgerror_resume_count
    max_file_opening_threads max_log_file_size max_manifest_file_size max_open_files
    max_subcompactions max_total_wal_size max_write_batch_group_size_bytes
    new_table_reader_for_compaction_inputs paranoid_checks persist_stats_to_disk preserve_deletes
    random_access_max_buffer_size recycle_log_file_num skip_checking_sst_file_sizes_on_db_open
    skip_stats_update_on_db_open stats_dump_period_sec stats_history_buffer_size
    stats_persist_period_sec strict_bytes_per_sync table_cache_numshardbits two_write_queues
    unordered_write use_adaptive_mutex use_direct_io_for_flush_and_compaction use_direct_reads
    use_fsync wal_bytes_per_sync wal_dir wal_recovery_mode writable_file_max_buffer_size
    write_dbid_to_manifest write_thread_max_yield_usec write_thread_slow_yield_usec"""
)
_V6_CF_OPTIONS = _names(
    """arena_block_size blob_compression_type blob_file_size bloom_locality bottommost_compression
    bottommost_compression_opts check_flush_compaction_key_order compaction_filter
    compaction_filter_factory compaction_options_fifo compaction_options_universal compaction_pri
    compaction_style comparator compression compression_opts disable_auto_compactions
    enable_blob_files force_consistency_checks hard_pending_compaction_bytes_limit
    inplace_update_num_locks inplace_update_support level0_file_num_compaction_trigger
    level0_slowdown_writes_trigger level0_stop_writes_trigger level_compaction_dynamic_level_bytes
    max_bytes_for_level_base max_bytes_for_level_multiplier
    max_bytes_for_level_multiplier_additional max_compaction_bytes
    max_sequential_skip_in_iterations max_successive_merges max_write_buffer_number
    max_write_buffer_number_to_maintain max_write_buffer_size_to_maintain memtable_factory
    memtable_huge_page_size memtable_insert_with_hint_prefix_extractor
    memtable_prefix_bloom_size_ratio memtable_whole_key_filtering merge_operator min_blob_size
    min_write_buffer_number_to_merge num_levels optimize_filters_for_hits paranoid_file_checks
    periodic_compaction_seconds prefix_extractor report_bg_io_stats sample_for_compression
    soft_pending_compaction_bytes_limit table_factory target_file_size_base
    target_file_size_multiplier ttl write_buffer_size"""
)
_V6_BLOCK_BASED_TABLE = _names(
    """block_align block_restart_interval block_size block_size_deviation
    cache_index_and_filter_blocks cache_index_and_filter_blocks_with_high_priority checksum
    data_block_hash_table_util_ratio data_block_index_type enable_index_compression filter_policy
    flush_block_policy_factory format_version hash_index_allow_collision
    index_block_restart_interval index_shortening index_type metadata_block_size no_block_cache
    optimize_filters_for_memory partition_filters pin_l0_filter_and_index_blocks_in_cache
    pin_top_level_index_and_filter read_amp_bytes_per_bit verify_compression
    whole_key_filtering"""
)
_V6_COMPRESSION_FIELDS = _names(
    "enabled level max_dict_bytes parallel_threads strategy window_bits zstd_max_train_bytes"
)
_V6_SECTIONS: dict[str, frozenset[str]] = {
    "DBOptions": _V6_DB_OPTIONS,
    "CFOptions": _V6_CF_OPTIONS,
    "TableOptions/BlockBasedTable": _V6_BLOCK_BASED_TABLE,
}
_V6_STRUCT_FIELDS: dict[str, frozenset[str]] = {
    "compression_opts": _V6_COMPRESSION_FIELDS,
    "bottommost_compression_opts": _V6_COMPRESSION_FIELDS,
    "compaction_options_fifo": frozenset({"allow_compaction", "max_table_files_size"}),
    "compaction_options_universal": _names(
        "allow_trivial_move compression_size_percent max_merge_width "
        "max_size_amplification_percent min_merge_width size_ratio stop_style"
    ),
}
_STRUCT_FIELD = re.compile(r"(?<!\\);")


@dataclass
class _Block:
    """One section of an OPTIONS file: its header line and the lines up to the next section."""

    kind: str  # Version, DBOptions, CFOptions, TableOptions/BlockBasedTable, ...
    name: str  # the column family as the file spells it ("" for Version and DBOptions)
    lines: list[str]

    def renamed(self, name: str) -> _Block:
        return _Block(self.kind, name, [f'[{self.kind} "{name}"]\n', *self.lines[1:]])


def _split(text: str) -> tuple[list[str], list[_Block]]:
    """The lines before the first section (RocksDB's header comment) and the sections."""
    head: list[str] = []
    blocks: list[_Block] = []
    for line in text.splitlines(keepends=True):
        section = _SECTION.match(line.strip())
        if section:
            blocks.append(_Block(section.group(1), section.group(2) or "", [line]))
        elif blocks:
            blocks[-1].lines.append(line)
        else:
            head.append(line)
    return head, blocks


def _version_of(text: str) -> str | None:
    match = re.search(r"^\s*rocksdb_version\s*=\s*(\S+)", text, re.MULTILINE)
    return match.group(1) if match else None


def is_kvtool_file(text: str) -> bool:
    """Whether kvtool already rewrote this OPTIONS text."""
    return any(line.startswith(KVTOOL_NOTE) for line in text.splitlines())


def _head(head: list[str], note: str) -> list[str]:
    kept = [line for line in head if not line.startswith(KVTOOL_NOTE)]
    while kept and not kept[-1].strip():
        kept.pop()
    return [*kept, *(f"{KVTOOL_NOTE} {line}\n" for line in note.splitlines()), "\n"]


def restored_text(owner: str, written: str, note: str) -> str:
    """The owner's OPTIONS text `owner` for the column families RocksDB's new file `written` lists.

    Sections are the owner's own lines; a column family the owner's file does not know (one kvtool
    just created, with the default column family's options) gets the owner's default sections
    under its name; a dropped one is left out. `note` becomes a comment saying what happened.
    """
    head, owner_blocks = _split(owner)
    _, written_blocks = _split(written)
    per_cf: dict[str, list[_Block]] = {}
    out = _head(head, note)
    for block in owner_blocks:
        if block.kind == "CFOptions" or block.kind.startswith("TableOptions/"):
            per_cf.setdefault(block.name, []).append(block)
        else:
            out += block.lines
    for block in written_blocks:
        if block.kind != "CFOptions":
            continue
        mine = per_cf.get(block.name)
        if mine is None and "default" in per_cf:
            mine = [b.renamed(block.name) for b in per_cf["default"]]
        if mine is None:  # an owner file without a default CF section: RocksDB's own words
            mine = [b for b in written_blocks if b.name == block.name and b.kind != "Version"]
        for section in mine:
            out += section.lines
    return "".join(out)


def _portable_value(name: str, value: str) -> str:
    fields = _V6_STRUCT_FIELDS.get(name)
    if fields is None or not (value.startswith("{") and value.endswith("}")):
        return value
    kept = [f for f in _STRUCT_FIELD.split(value[1:-1]) if f and f.partition("=")[0] in fields]
    return "{" + "".join(f"{f};" for f in kept) + "}"


def portable_text(written: str, note: str) -> str:
    """RocksDB's OPTIONS text `written` cut down to what RocksDB 6.14 (and so ldb 7.8) loads.

    Options it does not know are left out (they keep their defaults, which is what a reader of that
    version gets anyway); so are fields of struct values it does not know. Sections of a kind it
    does not list (another table factory) are kept as they are.
    """
    head, blocks = _split(written)
    out = _head(head, note)
    for block in blocks:
        known = _V6_SECTIONS.get(block.kind)
        out.append(block.lines[0])
        for line in block.lines[1:]:
            key, sep, value = line.strip().partition("=")
            if known is None or not sep:
                out.append(line)
            elif key.strip() in known:
                out.append(f"  {key.strip()}={_portable_value(key.strip(), value.strip())}\n")
    return "".join(out)


def options_texts(db_dir: Path) -> dict[int, str]:
    """Every OPTIONS-<n> file of `db_dir` by number, with its text (none when it is missing)."""
    out: dict[int, str] = {}
    try:
        entries: Iterable[Path] = list(db_dir.iterdir())
    except OSError:
        return out
    for entry in entries:
        match = _OPTIONS_NAME.match(entry.name)
        if match:
            try:
                out[int(match.group(1))] = entry.read_bytes().decode("utf-8", "surrogateescape")
            except OSError:
                continue
    return out


def owner_text(before: dict[int, str], after: dict[int, str], written: int) -> str | None:
    """The owner's newest OPTIONS text, from the files before and after an open writing `written`.

    RocksDB keeps the two newest OPTIONS files, so the owner's is still there after the open (it is
    read again under the LOCK, in case the owner wrote one in between); `before` covers files the
    open deleted. A newest file that claims exactly the engine's RocksDB version, carries no kvtool
    note and follows a file of another version was left by a kvtool write that stopped before it
    could restore it (a crash between RocksDB's write and kvtool's): the file before it is the
    owner's. None when the database had no OPTIONS file.
    """
    files = {**before, **after}
    older = sorted((n for n in files if n < written), reverse=True)
    if not older:
        return None
    newest = files[older[0]]
    engine = _version_of(after.get(written, ""))
    if (
        len(older) > 1
        and engine is not None
        and _version_of(newest) == engine
        and not is_kvtool_file(newest)
        and _version_of(files[older[1]]) != engine
    ):
        return files[older[1]]
    return newest


def replace_options_file(path: Path, text: str) -> None:
    """Replace `path` by `text` atomically: a temp file, fsynced, renamed over it.

    The temp file is named as RocksDB names its own (`OPTIONS-<n>.dbtmp`): a crash before the
    rename leaves a file that no options loader picks up (RocksDB parses it as a temp file), and
    the next write session removes it (`OptionsKeeper.restore`; RocksDB 9.8 leaves it, measured).
    """
    tmp = path.with_name(path.name + ".dbtmp")
    with tmp.open("wb") as f:
        f.write(text.encode("utf-8", "surrogateescape"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _options_path(db_dir: Path, number: int) -> Path:
    return db_dir / f"OPTIONS-{number:06d}"


class OptionsKeeper:
    """Keeps a write session's newest OPTIONS file in the owner's words.

    Made before the read-write open (it remembers the OPTIONS files there were); `restore()` after
    anything that makes RocksDB write an OPTIONS file (the open, creating or dropping a column
    family) and after the close. Only files written since this keeper was made are rewritten.
    """

    def __init__(self, db_dir: Path) -> None:
        self.db_dir = db_dir
        self._before = options_texts(db_dir)
        self._owner: str | None = None
        self._decided = False
        self._engine_wrote: dict[int, str] = {}  # the texts replaced, by file number

    @contextmanager
    def as_the_engine_wrote_it(self) -> Iterator[None]:
        """Within the block, the newest OPTIONS file holds the text the engine wrote; after it,
        the owner's again. RocksDB's checkpoint copies that file (to another filesystem: a copy,
        not a link) by the size it wrote and fails on any other size ("File smaller than expected
        for copy"). A crash inside the block leaves the engine's text, which `owner_text` repairs
        at the next write."""
        files = options_texts(self.db_dir)
        newest = max(files, default=-1)
        text = self._engine_wrote.get(newest)
        if text is not None:
            replace_options_file(_options_path(self.db_dir, newest), text)
        try:
            yield
        finally:
            if text is not None:
                self.restore()

    def restore(self, target: Path | None = None) -> None:
        """Rewrite the newest OPTIONS file of the database, or of its checkpoint `target`."""
        where = target if target is not None else self.db_dir
        files = options_texts(where)
        if not files:
            return
        newest = max(files)
        written = files[newest]
        if newest <= max(self._before, default=-1) or is_kvtool_file(written):
            return
        if not self._decided:
            self._owner = owner_text(self._before, options_texts(self.db_dir), newest)
            self._decided = True
        engine = _version_of(written) or "unknown"
        if self._owner is not None:
            text = restored_text(
                self._owner,
                written,
                f"RocksDB {engine} wrote this file for a kvtool write; kvtool put back the "
                f"options as the owner's RocksDB {_version_of(self._owner) or '(unknown)'} "
                "wrote them, which it had opened the database with.",
            )
        else:
            text = portable_text(
                written,
                f"RocksDB {engine} wrote this file; kvtool kept only the options RocksDB 6.14 "
                "knows, so that older releases (ldb 7.8, RocksDB 6.14) load it.",
            )
        if target is None:
            self._engine_wrote[newest] = written
        replace_options_file(_options_path(where, newest), text)
        # Under the LOCK nothing else writes OPTIONS files here: a temp one is left by a crash.
        for stale in where.glob("OPTIONS-*.dbtmp"):
            stale.unlink(missing_ok=True)
