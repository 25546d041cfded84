"""The python-rocksdb engine: opening a database in each mode (with the same refusals as the
default engine: format safety, damage, a held LOCK) and its versions."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

import rocksdb  # type: ignore[import-untyped]

from kvtool.engine.base import DEFAULT_CF, Database, Engine, OpenMode
from kvtool.engine.format_safety import (
    Need,
    SafetyReport,
    assess,
    database_needs,
    refuse_unless_forced,
    refuse_unmet_for_reading,
    unmet_needs,
)
from kvtool.engine.lockfile import lock_holder
from kvtool.engine.options_file import read_options_file
from kvtool.engine.options_keeper import OptionsKeeper
from kvtool.engine.options_text import portable_text
from kvtool.engine.pyrocksdb.database import PyRocksdbDatabase
from kvtool.engine.pyrocksdb.native import from_native, lacks
from kvtool.engine.pyrocksdb.options import (
    ENGINE,
    build_options,
    bundled_rocksdb_version,
    list_column_families,
    options_round_trip,
    refuse_unreadable_files,
    refuse_unwritable_options,
)
from kvtool.engine.shadow import ShadowDir
from kvtool.errors import DatabaseBusyError, StorageError, UnavailableError, UsageError


def _damage(path: Path, *, allow_data_loss: bool) -> tuple[str, ...]:
    """What RocksDB's recovery would drop from `path` without a word (a WAL damaged before its
    end, SST files a damaged MANIFEST left out), as the default engine finds it: its read-only
    open looks for exactly that (kvtool.engine.damage), on the same WAL and MANIFEST formats,
    and raises DamagedDatabaseError (74) unless `allow_data_loss`. RocksDB 6.14's recovery
    drops the same records (point in time) and its binding cannot choose another mode."""
    from kvtool.engine import get_engine

    try:
        default = get_engine("rocksdict")
        with default.open(path, OpenMode.READ_ONLY, allow_data_loss=allow_data_loss) as db:
            return db.damage
    except UnavailableError:  # what rocksdict cannot load: this engine's open says its own
        return ()


def _default_engine_hint(path: Path) -> str | None:
    """`--engine rocksdict` when the default engine can load what this one cannot (a reverse
    comparator, a built-in merge operator such as stringappend, all of which it has)."""
    from kvtool.engine import get_engine

    try:
        if not get_engine("rocksdict").unmet_needs(path):
            return "the default engine reads it: --engine rocksdict (or no --engine)"
    except Exception:  # only a hint: the refusal stands either way
        return None
    return None


def _assess(path: Path) -> SafetyReport:
    """`format_safety.assess` with this engine's options. An OPTIONS file of a newer RocksDB that
    names only options RocksDB 6.14 knows (one kvtool cut down: a database kvtool created) loses
    nothing to this engine, so its newer version is not a problem here."""
    report = assess(path, options_round_trip)
    parsed = read_options_file(path)
    if parsed is None:
        return report
    text = parsed.path.read_text(errors="replace")
    if _settings(portable_text(text, "")) != _settings(text):
        return report
    kept = tuple(p for p in report.problems if not p.startswith("it was last written by"))
    return dataclasses.replace(report, problems=kept)


def _settings(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _native_open(path: Path, names: list[str], **kwargs: Any) -> Any:
    opts, cfs = build_options(path, names)
    if kwargs.get("secondary_path") is not None or kwargs.get("read_only"):
        opts.max_open_files = -1  # open every SST now: a live owner may delete them later
    return rocksdb.DB(
        str(path), opts, column_families={n.encode(): o for n, o in cfs.items()}, **kwargs
    )


class PyRocksdbEngine(Engine):
    name = ENGINE

    def open(
        self,
        path: Path,
        mode: OpenMode,
        *,
        create: bool = False,
        force: bool = False,
        io_rate: int | None = None,
        allow_data_loss: bool = False,
    ) -> Database:
        if io_rate is not None:
            raise lacks("limit the I/O rate of compactions (it has no rate limiter)")
        if mode is OpenMode.READ_WRITE:
            return self._open_read_write(
                path, create=create, force=force, allow_data_loss=allow_data_loss
            )
        if create:
            raise UsageError("only a read-write open can create a database")
        from kvtool.engine.ondisk import check_database_dir

        check_database_dir(path)
        refuse_unreadable_files(path)
        damage = _damage(path, allow_data_loss=allow_data_loss)
        shadow = ShadowDir(path, frozen=mode is OpenMode.READ_ONLY)
        secondary_dir: Path | None = None
        try:
            needs = unmet_needs(shadow.path, options_round_trip)
            if needs:
                refuse_unmet_for_reading(
                    path,
                    needs,
                    engine="the python-rocksdb engine (RocksDB 6.14)",
                    hint=_default_engine_hint(path),
                )
            names = list_column_families(shadow.path)
            if mode is OpenMode.SECONDARY:
                secondary_dir = Path(tempfile.mkdtemp(prefix="kvtool-secondary-"))
                native = _native_open(shadow.path, names, secondary_path=str(secondary_dir))
            else:
                native = _native_open(shadow.path, names, read_only=True)
        except BaseException as exc:
            error = (
                from_native(exc, context=f"opening {path}") if isinstance(exc, Exception) else None
            )
            shadow.remove()
            if secondary_dir is not None:
                shutil.rmtree(secondary_dir, ignore_errors=True)
            if error is None or error is exc:
                raise
            raise error from None
        db = PyRocksdbDatabase(
            native, path=path, mode=mode, names=names, shadow=shadow, secondary_dir=secondary_dir
        )
        db.damage = damage
        return db

    def _open_read_write(
        self, path: Path, *, create: bool, force: bool, allow_data_loss: bool
    ) -> Database:
        from kvtool.engine.ondisk import check_database_dir, refuse_create_in

        exists = (path / "CURRENT").is_file()
        if not exists and not create:
            check_database_dir(path)
        if not exists and path.exists() and not path.is_dir():
            raise UsageError(f"{path} exists and is not a directory")
        if not exists:
            refuse_create_in(path)
        if exists:
            holder = lock_holder(path)
            if holder is not None:  # first: a busy database is waited for (--wait-lock)
                raise DatabaseBusyError(
                    f"{path} is locked by another process (pid {holder}), "
                    "e.g. the application that owns it",
                    hint="retry later, or pass --wait-lock DURATION",
                )
            refuse_unreadable_files(path)
            refuse_unwritable_options(read_options_file(path))
            # The same rules as the default engine, against what this engine would write.
            refuse_unless_forced(_assess(path), force=force)
            # A write open makes what recovery drops (a damaged WAL's later records, SST files
            # a damaged MANIFEST left out) permanent: look first.
            _damage(path, allow_data_loss=allow_data_loss)
            try:
                names = list_column_families(path)
            except Exception as exc:
                raise from_native(exc, context=f"opening {path}") from None
        else:
            names = [DEFAULT_CF]
        keeper = OptionsKeeper(path)
        try:
            opts, cfs = build_options(path, names, create=not exists)
            native = rocksdb.DB(
                str(path), opts, column_families={n.encode(): o for n, o in cfs.items()}
            )
        except Exception as exc:
            error = from_native(exc, context=f"opening {path}")
            holder = lock_holder(path) if isinstance(error, DatabaseBusyError) else None
            if holder is not None:
                error.message = (
                    f"{path} is locked by another process (pid {holder}), "
                    "e.g. the application that owns it"
                )
            raise error from None
        try:
            # RocksDB wrote an OPTIONS file at open: put the owner's back at once.
            keeper.restore()
        except OSError as exc:
            del native
            raise StorageError(f"rewriting the OPTIONS file of {path}: {exc}") from None
        return PyRocksdbDatabase(
            native,
            path=path,
            mode=OpenMode.READ_WRITE,
            names=names,
            shadow=None,
            options_keeper=keeper,
        )

    def unmet_needs(self, path: Path) -> tuple[Need, ...]:
        return database_needs(path, options_round_trip)

    def versions(self) -> dict[str, str]:
        from kvtool.engine.versions import (
            ROCKSDB_OF_FAUST_ROCKSDB,
            bundled_rocksdb,
            distribution_version,
        )

        own = distribution_version("faust-streaming-rocksdb", "rocksdb")
        return {
            "engine": ENGINE,
            ENGINE: own,
            "rocksdict": distribution_version("rocksdict", "rocksdict"),
            "rocksdb": bundled_rocksdb(ROCKSDB_OF_FAUST_ROCKSDB, own, bundled_rocksdb_version),
        }
