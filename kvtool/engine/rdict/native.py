"""What every part of the rocksdict binding shares: its native error mapping and the files
rocksdict writes into a database directory (docs/design.md, Engine facts 3 and 10)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from kvtool.engine.options_keeper import OptionsKeeper
from kvtool.errors import (
    CorruptionError,
    KvtoolError,
    StorageError,
    UnavailableError,
)
from kvtool.errors import from_native as _status_error

CONFIG_FILE = "rocksdict-config.json"

# Block compressions this build of RocksDB cannot decompress. rocksdict 0.3.29's bundled RocksDB
# lacks zlib: it fails on every zlib block that ldb 7.8 or RocksDB 6.14 wrote with "Corrupted
# compressed block contents: Zlib" (tests/test_compat_matrix.py checks this claim both ways).
UNSUPPORTED_COMPRESSIONS = ("Zlib",)


def from_native(exc: BaseException, *, context: str = "") -> KvtoolError:
    """The engine's error for a native exception: `errors.from_native`, except that a block this
    build cannot decompress is what it is (unavailable, 69), not corruption."""
    error = _status_error(exc, context=context)
    if isinstance(error, CorruptionError):
        for name in UNSUPPORTED_COMPRESSIONS:
            if f"Corrupted compressed block contents: {name}" in error.message:
                return UnavailableError(
                    f"{context + ': ' if context else ''}the database has blocks compressed with "
                    f"{name.lower()}, which the rocksdict engine's RocksDB build cannot decompress",
                    hint="read it with RocksDB's own tools (e.g. `ldb`), which can",
                )
    return error


def restore_options(keeper: OptionsKeeper, target: Path | None = None) -> None:
    try:
        keeper.restore(target)
    except OSError as exc:
        raise StorageError(
            f"rewriting the OPTIONS file of {target or keeper.db_dir}: {exc}",
            hint="its data is intact; until this succeeds, older RocksDB tools may refuse to "
            "load its newest OPTIONS file",
        ) from None


def remove_config(path: Path) -> None:
    """rocksdict writes its config on open and on CF changes, and reads it only at open: a file
    the owner's database did not have is removed again."""
    with contextlib.suppress(OSError):
        (path / CONFIG_FILE).unlink()
