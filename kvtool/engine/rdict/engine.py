"""`RdictEngine`: the rocksdict binding's entry point (read-only and read-write opens)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import rocksdict as rd

from kvtool.engine.base import (
    DEFAULT_CF,
    Database,
    Engine,
    OpenMode,
)
from kvtool.engine.format_safety import (
    Need,
    check_writable_safely,
    database_needs,
    refuse_unmet_for_reading,
    unmet_needs,
)
from kvtool.engine.lockfile import lock_holder
from kvtool.engine.ondisk import check_database_dir, refuse_create_in
from kvtool.engine.options_keeper import OptionsKeeper
from kvtool.engine.rdict.database import RdictDatabase
from kvtool.engine.rdict.native import CONFIG_FILE, from_native, remove_config, restore_options
from kvtool.engine.rdict.opening import open_shadow, refuse_damage, refuse_orphan_operands
from kvtool.engine.rdict.options import (
    bundled_rocksdb_version,
    limit_io,
    load_options,
    new_cf_options,
    new_db_options,
    options_round_trip,
    stop_at_merge_without_operator,
)
from kvtool.engine.shadow import ShadowDir
from kvtool.errors import (
    DatabaseBusyError,
    UsageError,
)


class RdictEngine(Engine):
    name = "rocksdict"

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
        if mode is OpenMode.READ_WRITE:
            return self._open_read_write(
                path, create=create, force=force, io_rate=io_rate, allow_data_loss=allow_data_loss
            )
        if create:
            raise UsageError("only a read-write open can create a database")
        if io_rate is not None:
            raise UsageError("an I/O rate limit applies to read-write opens only")
        check_database_dir(path)
        shadow = ShadowDir(path, frozen=mode is OpenMode.READ_ONLY)
        secondary_dir: Path | None = None
        try:
            # Before any native open: what the engine cannot load is refused, never read (an
            # operand met without its operator drops WAL records silently or crashes RocksDB).
            refuse_unmet_for_reading(path, unmet_needs(shadow.path, options_round_trip))
            if mode is OpenMode.SECONDARY:
                secondary_dir = Path(tempfile.mkdtemp(prefix="kvtool-secondary-"))
            native, opts, cfs, damage = open_shadow(
                path, shadow, secondary_dir, allow_data_loss=allow_data_loss
            )
        except BaseException as exc:
            # Mapped while the shadow is registered, so the error names the database's files.
            error = None
            if isinstance(exc, Exception):
                error = from_native(exc, context=f"opening {path}")
            shadow.remove()
            if secondary_dir is not None:
                shutil.rmtree(secondary_dir, ignore_errors=True)
            if error is None or error is exc:
                raise
            raise error from None
        db = RdictDatabase(
            native,
            path=path,
            mode=mode,
            options=opts,
            cf_options=cfs,
            shadow=shadow,
            secondary_dir=secondary_dir,
        )
        db.damage = damage
        return refuse_orphan_operands(db)

    def _open_read_write(
        self,
        path: Path,
        *,
        create: bool,
        force: bool = False,
        io_rate: int | None = None,
        allow_data_loss: bool = False,
    ) -> Database:
        exists = (path / "CURRENT").is_file()
        if not exists and not create:
            check_database_dir(path)
        if not exists and path.exists() and not path.is_dir():
            raise UsageError(f"{path} exists and is not a directory")
        if not exists:
            refuse_create_in(path)
        had_config = (path / CONFIG_FILE).exists()
        keeper = OptionsKeeper(path)
        if exists:
            # Every write passes here: refuse what the owner's RocksDB would read differently.
            check_writable_safely(path, options_round_trip, force)
            if not allow_data_loss and lock_holder(path) is None:
                # A read-write open deletes the files a damaged MANIFEST left out and drops a
                # damaged WAL's later records for good: look first, through a read-only view.
                # (A database another process holds is refused as busy by the open below.)
                refuse_damage(path)
            opts, cfs = load_options(path, fallback=force)
            stop_at_merge_without_operator(opts)
        else:
            opts, cfs = new_db_options(), {DEFAULT_CF: new_cf_options(None)}
        if io_rate is not None:
            limit_io(opts, io_rate)
        try:
            native = rd.Rdict(str(path), opts, column_families=cfs)
        except Exception as exc:
            if not had_config:  # rocksdict writes it before RocksDB refuses the open
                remove_config(path)
            error = from_native(exc, context=f"opening {path}")
            holder = lock_holder(path) if isinstance(error, DatabaseBusyError) else None
            if holder is not None:
                error.message = (
                    f"{path} is locked by another process (pid {holder}), "
                    "e.g. the application that owns it"
                )
            raise error from None
        if not had_config:
            remove_config(path)
        try:
            # RocksDB wrote an OPTIONS file at open: put the owner's back at once, so that only a
            # crash in these few milliseconds can leave it (OptionsKeeper repairs that next time).
            restore_options(keeper)
        except BaseException:
            native.close()
            raise
        return refuse_orphan_operands(
            RdictDatabase(
                native,
                path=path,
                mode=OpenMode.READ_WRITE,
                options=opts,
                cf_options=cfs,
                shadow=None,
                foreign_config=not had_config,
                options_keeper=keeper,
            )
        )

    def repair(self, path: Path) -> None:
        from kvtool.engine.rdict.repair import repair

        repair(path)

    def unmet_needs(self, path: Path) -> tuple[Need, ...]:
        return database_needs(path, options_round_trip)

    def versions(self) -> dict[str, str]:
        from kvtool.engine.versions import (
            ROCKSDB_OF_ROCKSDICT,
            bundled_rocksdb,
            distribution_version,
        )

        own = distribution_version("rocksdict", "rocksdict")
        return {
            "rocksdict": own,
            "rocksdb": bundled_rocksdb(ROCKSDB_OF_ROCKSDICT, own, bundled_rocksdb_version),
        }
