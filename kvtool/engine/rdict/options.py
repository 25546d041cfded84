"""The options rocksdict opens a database with: the owner's own, or kvtool's defaults for a new
database (docs/design.md, Engine facts 5, 9 and 14)."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import rocksdict as rd

from kvtool.engine.base import (
    DEFAULT_CF,
)
from kvtool.engine.format_safety import scratch_failure
from kvtool.engine.ondisk import sst_format_versions
from kvtool.engine.options_file import OptionsFile, read_options_file
from kvtool.engine.rdict.native import from_native
from kvtool.errors import (
    StorageError,
    UsageError,
)

# Table format for databases kvtool creates: 5 is readable by RocksDB >= 6.6 (6.14, Debian's ldb
# 7.8); rocksdict's default of 6 is not readable before 8.6. With CRC32c checksums (_table_options)
# and an OPTIONS file in RocksDB 6.14's vocabulary (OptionsKeeper), 6.14 and ldb 7.8 open them.
NEW_DB_FORMAT_VERSION = 5


def limit_io(opts: Any, rate: int) -> None:
    """Rate-limit what flushes and compactions write to `rate` bytes/s.

    RocksDB pushes a whole write buffer through the limiter at once and checks for cancellation
    only between buffers, so the buffer is cut to a tenth of a second's worth: a cancelled
    compaction then stops within about 0.1 s instead of after the default 1 MiB.
    """
    if rate <= 0:
        raise UsageError("the I/O rate limit must be a positive number of bytes per second")
    opts.set_ratelimiter(rate, 100_000, 10)
    opts.set_writable_file_max_buffer_size(max(4096, min(rate // 10, 1 << 20)))


def _table_options(format_version: int) -> Any:
    """Table options for files kvtool chooses the format of: CRC32c block checksums, which every
    RocksDB reads (9.8's default, XXH3, is "unknown checksum type 4" before 6.27)."""
    table = rd.BlockBasedOptions()
    table.set_format_version(format_version)
    table.set_checksum_type(rd.ChecksumType.crc32c())
    return table


def new_db_options() -> Any:
    opts = rd.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.set_block_based_table_factory(_table_options(NEW_DB_FORMAT_VERSION))
    return opts


def new_cf_options(like: Any | None) -> Any:
    """Options for a new column family: the default CF's own when known, else kvtool's defaults."""
    if like is not None:
        return like
    opts = rd.Options(raw_mode=True)
    opts.set_block_based_table_factory(_table_options(NEW_DB_FORMAT_VERSION))
    return opts


def _keep_wal_with_database(opts: Any, path: Path) -> None:
    """Replay the WAL files of the directory opened, not those of the one the OPTIONS file names.

    RocksDB 6.14 records `wal_dir` as the absolute path the database was created at (it fills in
    the default), so in a copy the OPTIONS file names the original's directory. Taken as it is, a
    read of the copy replays the original's WAL, and a write to the copy replaces the original's
    WAL (measured: `kvtool put COPY` deleted ORIGINAL/000009.log). When the directory has WAL files
    of its own, or `wal_dir` is a database directory (it holds CURRENT), the WAL lives with the
    database; only a separate WAL directory is honoured. A relative `wal_dir` is the path the
    owner gave, relative to its own working directory, not kvtool's (6.14 records `rel` for a
    database created as `rel`): the WAL lives with the database too.
    """
    try:
        parsed = read_options_file(path)
        wal_dir = parsed.db_options.get("wal_dir", "") if parsed else ""
        if not wal_dir:
            return
        has_own_wal = any(
            name.endswith(".log") and name[:-4].isdigit() for name in os.listdir(path)
        )
        relative = not Path(wal_dir).is_absolute()
        if has_own_wal or relative or (Path(wal_dir) / "CURRENT").exists():
            opts.set_wal_dir(str(path))
    except OSError:
        return


def load_options(path: Path, *, fallback: bool = False) -> tuple[Any, dict[str, Any]]:
    """The database's own options from its newest OPTIONS file, or defaults if it has none.

    With `fallback` (a forced write), options that cannot be loaded are replaced by defaults too.
    Defaults never raise the table format: they use the newest format_version the database's
    SST files already have (NEW_DB_FORMAT_VERSION when it has none); rocksdict's own default, 6,
    is unreadable before RocksDB 8.6.
    """
    try:
        opts, cfs = rd.Options.load_latest(str(path), ignore_unknown_options=True)
        _keep_wal_with_database(opts, path)
        # rocksdict returns a hash map: order it, default first, for stable listings.
        return opts, {name: cfs[name] for name in sorted(cfs, key=lambda n: (n != DEFAULT_CF, n))}
    except Exception as exc:
        text = str(exc)
        missing = "No such file" in text or "NotFound" in text or "OPTIONS" in text
        if not missing and not fallback:
            raise from_native(exc, context="loading the database's options") from None
    version = max(sst_format_versions(path).values(), default=NEW_DB_FORMAT_VERSION)
    version = max(version, 2)  # RocksDB 9 no longer writes format_version 0 or 1

    def defaults() -> Any:
        opts = rd.Options(raw_mode=True)
        opts.set_block_based_table_factory(_table_options(version))
        return opts

    try:
        names = rd.Rdict.list_cf(str(path), rd.Options(raw_mode=True))
    except Exception as exc:
        raise from_native(exc, context="listing column families") from None
    return defaults(), {name: defaults() for name in names}


def options_round_trip(path: Path) -> OptionsFile:
    """The OPTIONS file the engine writes for `path`'s options: they are loaded as a read-write
    open loads them and used to create a scratch database elsewhere (format_safety compares it
    with the owner's). Raises the native error when the options cannot be loaded."""
    opts, cfs = rd.Options.load_latest(str(path), ignore_unknown_options=True)
    try:
        with tempfile.TemporaryDirectory(prefix="kvtool-options-") as tmp:
            scratch = Path(tmp) / "db"
            # Everything the scratch DB writes stays in the temp dir, whatever paths the owner set.
            opts.create_if_missing(True)
            opts.create_missing_column_families(True)
            opts.set_error_if_exists(False)
            opts.set_wal_dir(str(scratch))
            opts.set_db_log_dir(str(scratch))
            try:
                db = rd.Rdict(str(scratch), opts, column_families=dict(cfs))
            except Exception as exc:
                error = from_native(exc)
                if isinstance(error, StorageError):
                    raise scratch_failure(error.detail) from None
                raise
            try:
                db.close()
            finally:
                del db, opts, cfs
            parsed = read_options_file(scratch)
    except OSError as exc:  # the temp dir itself: no room for it
        raise scratch_failure(exc.strerror or str(exc)) from None
    if parsed is None:
        # RocksDB persists its OPTIONS file last and, when that write fails (measured: a file
        # size limit of 2 KB), still opens the database.
        raise scratch_failure("it got no OPTIONS file")
    return parsed


def stop_at_merge_without_operator(opts: Any) -> None:
    """Make a WAL merge record without a merge operator fail the open.

    Under RocksDB's default recovery mode (point in time) such a record ends the replay there,
    silently: a read-only view then misses every later write of the log (measured: a database of
    100 merges and 100 puts, all in the WAL, reads as empty), and a read-write open makes the loss
    permanent. Tolerating only a torn last record (what a crash leaves) turns it into an error,
    which `errors.from_native` reports as exit 69.
    """
    opts.set_wal_recovery_mode(rd.DBRecoveryMode.tolerate_corrupted_tail_records())


@functools.cache  # a new database each time (about 15 ms): once a process is enough
def bundled_rocksdb_version() -> str:
    """The RocksDB version rocksdict bundles, as it writes it into a new database's OPTIONS file."""
    with tempfile.TemporaryDirectory(prefix="kvtool-version-") as tmp:
        db = rd.Rdict(tmp, new_db_options())
        db.close()
        del db
        parsed = read_options_file(Path(tmp))
    return (parsed.rocksdb_version if parsed else None) or "unknown"
