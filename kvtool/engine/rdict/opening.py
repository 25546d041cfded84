"""Opening a shadow read-only or as a secondary, with the damage RocksDB's own recovery would hide
made loud (docs/design.md, Engine facts 11 to 13)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rocksdict as rd

from kvtool.engine.base import (
    DEFAULT_CF,
    Database,
)
from kvtool.engine.damage import (
    LEFTOVER_NOTES,
    UnreferencedFile,
    describe_damaged_wal,
    describe_unreferenced,
    manifest_name,
    unreferenced_tables,
)
from kvtool.engine.format_safety import merge_operator_cfs
from kvtool.engine.lockfile import lock_holder
from kvtool.engine.ondisk import wal_files
from kvtool.engine.rdict.native import CONFIG_FILE, from_native
from kvtool.engine.rdict.options import load_options, stop_at_merge_without_operator
from kvtool.engine.shadow import ShadowDir
from kvtool.errors import (
    CorruptionError,
    DamagedDatabaseError,
    UnavailableError,
    register_path_alias,
)

_OPEN_ATTEMPTS = 30


def open_shadow(
    path: Path, shadow: ShadowDir, secondary_dir: Path | None, *, allow_data_loss: bool
) -> tuple[Any, Any, dict[str, Any], tuple[str, ...]]:
    """Open the shadow of `path` read-only (or as a secondary); returns the native handle, its
    options, its column families' options and what recovery left out (see `_recover`).

    An open that fails because a file vanished while the owner moved on is tried again on a
    fresh shadow; when the directory did not change, the failure is the database's own.
    """
    for attempt in range(_OPEN_ATTEMPTS):
        before = set(os.listdir(path))
        try:
            return _recover(path, shadow, secondary_dir, allow_data_loss=allow_data_loss)
        except Exception as exc:
            if attempt + 1 == _OPEN_ATTEMPTS or not _file_vanished(exc):
                raise
            if set(os.listdir(path)) == before and lock_holder(path) is None:
                raise
        shadow.rebuild()
    raise AssertionError("unreachable")  # pragma: no cover


def refuse_damage(path: Path) -> None:
    """Raise DamagedDatabaseError if a read-only open of `path` finds damaged metadata.

    No Database handle is made (a write's --trace-handles shows its own handle only). What the
    engine cannot read (an operator it lacks) is format safety's call, not damage.
    """
    shadow = ShadowDir(path)
    try:
        native, *_ = open_shadow(path, shadow, None, allow_data_loss=False)
        native.close()
        del native
    except UnavailableError:
        pass
    except Exception as exc:
        error = from_native(exc, context=f"opening {path}")  # while the shadow maps its paths
        if not isinstance(error, UnavailableError):
            raise error from None
    finally:
        shadow.remove()


def _file_vanished(exc: BaseException) -> bool:
    text = str(exc)
    return "No such file" in text or "NotFound" in text or "not found" in text.lower()


def _recover(
    path: Path, shadow: ShadowDir, secondary_dir: Path | None, *, allow_data_loss: bool
) -> tuple[Any, Any, dict[str, Any], tuple[str, ...]]:
    """One open of the shadow, with the damage RocksDB's own recovery would hide made loud.

    WALs: measured on RocksDB 9.8, the default recovery mode (point in time) stops replaying a
    WAL at a damaged record with no error, dropping every later record; `absolute_consistency`
    also refuses a torn last record, which is what every crash mid-write leaves (not damage).
    `tolerate_corrupted_tail_records` is the one between: a torn tail is fine, damage with valid
    records after it fails with `Corruption`. When it fails and point-in-time recovery opens,
    the WAL is what is damaged. MANIFEST: see `damage.unreferenced_tables`; a live owner's
    directory always holds files it is writing or about to delete, so it is checked only when
    no process holds the database.
    """
    opts, cfs = load_options(shadow.path)
    stop_at_merge_without_operator(opts)
    opts.set_max_open_files(-1)  # open every SST now: a writer may delete them later
    damage: list[str] = []
    damaged_files: list[str] = []
    leftover: list[UnreferencedFile] = []
    native = None
    try:
        try:
            native = _native_open(shadow, secondary_dir, opts, cfs, _TOLERATE_TAIL)
        except Exception as exc:
            if not isinstance(from_native(exc), CorruptionError) or not wal_files(shadow.path):
                raise  # (a merge operand without its operator is unavailable, not damage)
            # Is it a WAL damaged before its end? Point-in-time recovery opens those, unless
            # a later WAL holds writes (then RocksDB refuses in every mode but skipping).
            try:
                native = _native_open(shadow, secondary_dir, opts, cfs, _POINT_IN_TIME)
            except Exception:
                wals = _damaged_wals(shadow, opts, cfs, single=False)
                if not wals:
                    raise exc from None
                raise DamagedDatabaseError(
                    f"{describe_damaged_wal(path, wals, recoverable=False)} ({exc})",
                    files=tuple(str(path / name) for name in wals),
                    hint="restore it from a copy; RocksDB cannot open it in its default "
                    "recovery mode either",
                ) from None
            wals = _damaged_wals(shadow, opts, cfs) or wal_files(shadow.path)
            damage.append(describe_damaged_wal(path, wals))
            damaged_files.extend(str(path / name) for name in wals)
        if secondary_dir is None and lock_holder(path) is None:
            live = [str(f["name"]) for f in native.live_files()]
            found = unreferenced_tables(shadow.path, live, older_manifests=path)
            if found.lost:
                manifest = manifest_name(shadow.path)
                damage.append(describe_unreferenced(path, manifest, found.lost))
                damaged_files.append(str(path / manifest))
            leftover = found.leftover
        if damage and not allow_data_loss:
            raise DamagedDatabaseError(
                "; ".join(damage),
                files=tuple(damaged_files),
                hint="restore it from a copy, or pass --allow-data-loss to read what RocksDB "
                "recovers; a write with that option deletes what is left out",
            )
        if leftover:  # only when the open succeeds: a failed one prints its one error line
            LEFTOVER_NOTES.note(path, leftover)
    except BaseException:
        if native is not None:
            with contextlib.suppress(Exception):
                native.close()
        native = None
        raise
    return native, opts, cfs, tuple(damage)


_TOLERATE_TAIL = rd.DBRecoveryMode.tolerate_corrupted_tail_records
_POINT_IN_TIME = rd.DBRecoveryMode.point_in_time


def _native_open(
    shadow: ShadowDir,
    secondary_dir: Path | None,
    opts: Any,
    cfs: dict[str, Any],
    recovery: Callable[[], Any],
    *,
    directory: Path | None = None,
) -> Any:
    opts.set_wal_recovery_mode(recovery())
    if secondary_dir is not None:
        access = rd.AccessType.secondary(str(secondary_dir))
    else:
        access = rd.AccessType.read_only(False)
    where = directory if directory is not None else shadow.path
    return rd.Rdict(str(where), opts, column_families=cfs, access_type=access)


def _damaged_wals(
    shadow: ShadowDir, opts: Any, cfs: dict[str, Any], *, single: bool = True
) -> list[str]:
    """The WALs that fail recovery on their own: each is opened next to the rest of the shadow
    (links to its files) without the other WALs. A lone WAL is the one (`single`) when the
    caller knows a WAL is to blame; else the shadow must first open with no WAL at all."""
    wals = wal_files(shadow.path)
    if single and len(wals) < 2:
        return wals

    def fails_with(kept: list[str]) -> bool:
        probe = Path(tempfile.mkdtemp(prefix="kvtool-walprobe-"))
        try:
            for name in os.listdir(shadow.path):
                if (name not in wals or name in kept) and name not in ("LOCK", "LOG", CONFIG_FILE):
                    os.symlink(shadow.path / name, probe / name)
            try:
                db = _native_open(shadow, None, opts, cfs, _TOLERATE_TAIL, directory=probe)
            except Exception as exc:
                return str(exc).startswith("Corruption")
            db.close()
            del db
            return False
        finally:
            shutil.rmtree(probe, ignore_errors=True)

    if not single and fails_with([]):
        return []  # the damage is not in a WAL
    return [wal for wal in wals if fails_with([wal])]


_MERGE_OPERANDS = re.compile(r"# merge operands=(\d+)")


def refuse_orphan_operands(db: Database) -> Database:
    """Close `db` and raise UnavailableError if a column family that the engine opened without a
    merge operator has merge operands in its SST files (its OPTIONS file is missing or says
    nullptr): a point lookup or a reverse step onto one crashes RocksDB 9.8 (SIGSEGV, in
    `Get` and in `items(backwards=True)`), and no read could merge them. One property per column
    family, from table properties the open has loaded already."""
    try:
        with_operator = merge_operator_cfs(db.path)
        for cf in db.column_families:
            if cf in with_operator:
                continue
            listing = db.property("rocksdb.aggregated-table-properties", cf) or ""
            found = _MERGE_OPERANDS.search(listing)
            if found and int(found.group(1)):
                raise UnavailableError(
                    f"cannot open {db.path}: column family {cf!r} holds {found.group(1)} merge "
                    "operands in its SST files, but its OPTIONS file names no merge operator",
                    hint="open it through the application that owns it, which has its operator",
                )
    except BaseException:
        db.close()
        raise
    return db


_BLOB_IN_TEXT = re.compile(r"(\d+\.blob)\b")


def probe_blob_file(
    shadow_dir: Path,
    display: Path,
    options: Any,
    cf_options: dict[str, Any],
    cf: str | None,
    after: bytes | None,
) -> str | None:
    """The blob file a failed read after `after` needed. RocksDB names no file in a blob checksum
    error; the same database opened without its blob files fails that read with "no such file"
    naming the blob file it needed."""
    probe = Path(tempfile.mkdtemp(prefix="kvtool-blobprobe-"))
    register_path_alias(str(probe), str(display))
    db: Any = None
    it: Any = None
    try:
        for name in os.listdir(shadow_dir):
            if not name.endswith(".blob") and name not in ("LOCK", "LOG", CONFIG_FILE):
                os.symlink(shadow_dir / name, probe / name)
        access = rd.AccessType.read_only(False)
        db = rd.Rdict(str(probe), options, column_families=cf_options, access_type=access)
        view: Any = db if cf in (None, DEFAULT_CF) else db.get_column_family(cf)
        it = view.iter(rd.ReadOptions())
        view = None
        if after is None:
            it.seek_to_first()
        else:
            it.seek(after)
            if it.valid() and it.key() == after:
                it.next()
        if it.valid():
            it.value()
        it.status()
        return None
    except Exception as exc:
        match = _BLOB_IN_TEXT.search(str(exc))
        return match.group(1) if match else None
    finally:
        it = None
        if db is not None:
            with contextlib.suppress(Exception):
                db.close()
        db = None
        register_path_alias(str(probe), None)
        shutil.rmtree(probe, ignore_errors=True)
