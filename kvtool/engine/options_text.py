"""OPTIONS texts rewritten for older RocksDB releases: the owner's own sections put back, or
RocksDB's file cut down to the options RocksDB 6.14 knows (see kvtool.engine.options_keeper)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kvtool.engine.options_file import SECTION


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
_V6SECTIONS: dict[str, frozenset[str]] = {
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
        section = SECTION.match(line.strip())
        if section:
            blocks.append(_Block(section.group(1), section.group(2) or "", [line]))
        elif blocks:
            blocks[-1].lines.append(line)
        else:
            head.append(line)
    return head, blocks


def version_of(text: str) -> str | None:
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
        known = _V6SECTIONS.get(block.kind)
        out.append(block.lines[0])
        for line in block.lines[1:]:
            key, sep, value = line.strip().partition("=")
            if known is None or not sep:
                out.append(line)
            elif key.strip() in known:
                out.append(f"  {key.strip()}={_portable_value(key.strip(), value.strip())}\n")
    return "".join(out)
