"""What RocksDB 6.14 (the python-rocksdb engine) can read, and its options built from a database's
own OPTIONS file by kvtool's parser (the binding cannot load an OPTIONS file itself)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import rocksdb  # type: ignore[import-untyped]

from kvtool.engine.base import DEFAULT_CF
from kvtool.engine.format_safety import scratch_failure, sst_format_version
from kvtool.engine.options_file import OptionsFile, read_options_file
from kvtool.errors import StorageError, UnavailableError

ENGINE = "python-rocksdb"
# The newest table format RocksDB 6.14 reads and writes (6 came with RocksDB 8.6).
MAX_FORMAT_VERSION = 5
# Block checksum types by their number in a table footer: RocksDB 6.14 knows 0-3; XXH3 (4)
# came with 6.27 and is rocksdict's (RocksDB 9.8's) default.
_CHECKSUMS = {0: "none", 1: "crc32c", 2: "xxhash", 3: "xxhash64", 4: "XXH3"}
_KNOWN_CHECKSUMS = (0, 1, 2, 3)
# A table footer of format_version 1-5: checksum type (1 byte), two block handles padded to 40
# bytes, format_version (4) and magic (8). The checksum type is its first byte.
_FOOTER_BYTES = 53

_COMPRESSIONS = {
    "kNoCompression": "no_compression",
    "kSnappyCompression": "snappy_compression",
    "kZlibCompression": "zlib_compression",
    "kBZip2Compression": "bzip2_compression",
    "kLZ4Compression": "lz4_compression",
    "kLZ4HCCompression": "lz4hc_compression",
    "kXpressCompression": "xpress_compression",
    "kZSTD": "zstd_compression",
    "kZSTDNotFinalCompression": "zstdnotfinal_compression",
    "kDisableCompressionOption": "disable_compression",
}
_COMPACTION_STYLES = {
    "kCompactionStyleLevel": "level",
    "kCompactionStyleUniversal": "universal",
    "kCompactionStyleFIFO": "fifo",
    "kCompactionStyleNone": "none",
}
# CFOptions copied as integers when the OPTIONS file names them (the attribute has the same name).
_INT_CF_OPTIONS = (
    "write_buffer_size",
    "max_write_buffer_number",
    "min_write_buffer_number_to_merge",
    "level0_file_num_compaction_trigger",
    "level0_slowdown_writes_trigger",
    "level0_stop_writes_trigger",
    "target_file_size_base",
    "target_file_size_multiplier",
    "max_bytes_for_level_base",
    "num_levels",
    "max_compaction_bytes",
)
_BOOL_CF_OPTIONS = ("disable_auto_compactions", "level_compaction_dynamic_level_bytes")


def _unreadable(name: str, what: str) -> UnavailableError:
    return UnavailableError(
        f"{name} uses {what}, which the {ENGINE} engine (RocksDB 6.14) cannot read",
        hint="use the default engine: --engine rocksdict",
    )


def sst_checksum_type(path: Path) -> int | None:
    """The block checksum type in an SST footer of format_version 1-5 (None: not one)."""
    version = sst_format_version(path)
    if version is None or not 1 <= version <= MAX_FORMAT_VERSION:
        return None
    try:
        with path.open("rb") as f:
            f.seek(-_FOOTER_BYTES, 2)
            return f.read(1)[0]
    except (OSError, IndexError):
        return None


def refuse_unreadable_files(path: Path) -> None:
    """Raise UnavailableError naming the first file RocksDB 6.14 cannot read (a table format
    newer than 5, XXH3 block checksums, a blob file) before any native open: 6.14 reports those
    as "Unknown Footer version" or corruption, or only when the block is read."""
    for entry in sorted(path.glob("*.blob")):  # integrated BlobDB came with RocksDB 6.18
        raise _unreadable(str(entry), "a blob file (values kept apart from the SST files)")
    for entry in sorted(path.glob("*.sst")):
        version = sst_format_version(entry)
        if version is not None and version > MAX_FORMAT_VERSION:
            raise _unreadable(str(entry), f"table format_version {version}")
        checksum = sst_checksum_type(entry)
        if checksum is not None and checksum not in _KNOWN_CHECKSUMS:
            kind = _CHECKSUMS.get(checksum, f"type {checksum}")
            raise _unreadable(str(entry), f"{kind} block checksums")


def refuse_unwritable_options(parsed: OptionsFile | None) -> None:
    """Raise UnavailableError when the OPTIONS file asks for table settings RocksDB 6.14 cannot
    write (a format_version above 5, XXH3 checksums): new files would differ from the owner's."""
    if parsed is None:
        return
    for cf, table in parsed.table_options.items():
        version = table.get("format_version")
        if version and version.isdigit() and int(version) > MAX_FORMAT_VERSION:
            raise UnavailableError(
                f"{parsed.path}: column family {cf!r} writes table format_version {version}, "
                f"which the {ENGINE} engine (RocksDB 6.14) cannot write",
                hint="use the default engine: --engine rocksdict",
            )
        if table.get("checksum") not in (None, "kCRC32c", "kxxHash", "kNoChecksum"):
            raise UnavailableError(
                f"{parsed.path}: column family {cf!r} writes {table['checksum']} block checksums, "
                f"which the {ENGINE} engine (RocksDB 6.14) cannot write",
                hint="use the default engine: --engine rocksdict",
            )


def _bool(text: str) -> bool:
    return text.strip().lower() in ("true", "1")


def _table_factory(table: dict[str, str], fallback_version: int) -> Any:
    kwargs: dict[str, Any] = {"checksum": "crc32"}
    if table.get("checksum") == "kxxHash":
        kwargs["checksum"] = "xxhash"
    version = table.get("format_version", "")
    kwargs["format_version"] = int(version) if version.isdigit() else fallback_version
    for name in ("block_size", "block_size_deviation", "block_restart_interval"):
        if table.get(name, "").isdigit():
            kwargs[name] = int(table[name])
    for name in ("whole_key_filtering", "cache_index_and_filter_blocks"):
        if name in table:
            kwargs[name] = _bool(table[name])
    if table.get("index_type") == "kHashSearch":
        kwargs["index_type"] = "hash_search"
    policy = table.get("filter_policy", "nullptr")
    if policy.startswith("bloomfilter:"):
        # "bloomfilter:10:false" (6.x) or "bloomfilter:10" : bits per key first.
        bits = policy.split(":")[1]
        kwargs["filter_policy"] = rocksdb.BloomFilterPolicy(int(float(bits)))
    return rocksdb.BlockBasedTableFactory(**kwargs)


def _apply_cf(opts: Any, cf_options: dict[str, str], table: dict[str, str], version: int) -> None:
    if cf_options.get("compression") in _COMPRESSIONS:
        opts.compression = _COMPRESSIONS[cf_options["compression"]]
    if cf_options.get("compaction_style") in _COMPACTION_STYLES:
        opts.compaction_style = _COMPACTION_STYLES[cf_options["compaction_style"]]
    for name in _INT_CF_OPTIONS:
        if cf_options.get(name, "").isdigit():
            setattr(opts, name, int(cf_options[name]))
    for name in _BOOL_CF_OPTIONS:
        if name in cf_options and hasattr(opts, name):
            setattr(opts, name, _bool(cf_options[name]))
    opts.table_factory = _table_factory(table, version)


def fallback_format_version(path: Path) -> int:
    """For a database without OPTIONS: the newest format its SST files have (5 when none)."""
    versions = [
        v for v in (sst_format_version(p) for p in path.glob("*.sst")) if v is not None and v > 1
    ]
    return min(max(versions, default=MAX_FORMAT_VERSION), MAX_FORMAT_VERSION)


def _wal_dir(parsed: OptionsFile, path: Path) -> str | None:
    """A separate WAL directory to honour, or None: RocksDB 6.14 records `wal_dir` as the absolute
    path the database was created at, so in a copy it names the original's directory (see the
    rocksdict binding's `_keep_wal_with_database`); only a directory that is not a database and
    when this one has no WAL of its own is honoured. A relative one is the owner's path from its
    own working directory (6.14 records `rel` for a database created as `rel`), never honoured."""
    wal_dir = parsed.db_options.get("wal_dir", "")
    if not wal_dir or Path(wal_dir) == path or not Path(wal_dir).is_absolute():
        return None
    has_own_wal = any(n.endswith(".log") and n[:-4].isdigit() for n in os.listdir(path))
    if has_own_wal or (Path(wal_dir) / "CURRENT").exists():
        return None
    return wal_dir


def build_options(
    path: Path, names: list[str], *, create: bool = False
) -> tuple[Any, dict[str, Any]]:
    """`rocksdb.Options` and per-CF `ColumnFamilyOptions` for the database at `path`, from its
    newest OPTIONS file as kvtool's parser reads it (defaults where it has none), in the format
    the database already has (format_version <= 5, CRC32c where the file says nothing)."""
    parsed = read_options_file(path) if path.is_dir() else None
    version = fallback_format_version(path) if path.is_dir() else MAX_FORMAT_VERSION
    opts = rocksdb.Options()
    opts.create_if_missing = create
    cfs: dict[str, Any] = {}
    if parsed is not None:
        wal_dir = _wal_dir(parsed, path)
        if wal_dir is not None:
            opts.wal_dir = wal_dir
    for name in names:
        cf_opts = opts if name == DEFAULT_CF else rocksdb.ColumnFamilyOptions()
        settings = parsed.cf_options.get(name, {}) if parsed else {}
        table = parsed.table_options.get(name, {}) if parsed else {}
        _apply_cf(cf_opts, settings, table, version)
        if name != DEFAULT_CF:
            cfs[name] = cf_opts
    return opts, cfs


def new_cf_options(path: Path) -> Any:
    """Options for a column family kvtool creates: the default column family's settings."""
    parsed = read_options_file(path)
    opts = rocksdb.ColumnFamilyOptions()
    settings = parsed.cf_options.get(DEFAULT_CF, {}) if parsed else {}
    table = parsed.table_options.get(DEFAULT_CF, {}) if parsed else {}
    _apply_cf(opts, settings, table, fallback_format_version(path))
    return opts


def list_column_families(path: Path) -> list[str]:
    """The column families of the database at `path`, default first."""
    names = [n.decode() for n in rocksdb.list_column_families(str(path), rocksdb.Options())]
    return sorted(names, key=lambda n: (n != DEFAULT_CF, n))


def options_round_trip(path: Path) -> OptionsFile:
    """The OPTIONS file this engine writes for `path`'s options: built as a read-write open builds
    them, used to create a scratch database elsewhere (format_safety compares it with the
    owner's). Raises when they cannot be built."""
    parsed = read_options_file(path)
    names = list(parsed.cf_options) if parsed else [DEFAULT_CF]
    if DEFAULT_CF not in names:
        names.insert(0, DEFAULT_CF)
    opts, cfs = build_options(path, names)
    try:
        with tempfile.TemporaryDirectory(prefix="kvtool-options-") as tmp:
            scratch = Path(tmp) / "db"
            opts.create_if_missing = True
            opts.create_missing_column_families = True
            opts.wal_dir = str(scratch)
            opts.db_log_dir = str(scratch)
            families = {n.encode(): o for n, o in cfs.items()}
            try:
                db = rocksdb.DB(str(scratch), opts, column_families=families)
            except Exception as exc:
                from kvtool.engine.pyrocksdb.native import from_native  # it imports this module

                error = from_native(exc)
                if isinstance(error, StorageError):
                    raise scratch_failure(error.detail) from None
                raise
            try:
                db.close()
            finally:
                del db, opts, cfs, families
            out = read_options_file(scratch)
    except OSError as exc:  # the temp dir itself: no room for it
        raise scratch_failure(exc.strerror or str(exc)) from None
    if out is None:  # a failed OPTIONS write does not fail the open (see the rdict engine's)
        raise scratch_failure("it got no OPTIONS file")
    return out


def bundled_rocksdb_version() -> str:
    """The RocksDB version the binding bundles, as it writes it into a new OPTIONS file."""
    with tempfile.TemporaryDirectory(prefix="kvtool-version-") as tmp:
        db = rocksdb.DB(tmp, rocksdb.Options(create_if_missing=True))
        db.close()
        del db
        parsed = read_options_file(Path(tmp))
    return (parsed.rocksdb_version if parsed else None) or "unknown"
