"""The python-rocksdb binding of the engine interface (`import rocksdb`: faust-streaming-rocksdb,
RocksDB 6.14): the only module that calls its native objects.

Lifetimes. This binding segfaults when a database is closed under a live iterator or snapshot,
or used after `close()`. Its iterators and snapshots hold a reference to their `rocksdb.DB`, so
kvtool never calls `close()` while anything but the handle holds the database: releasing the
handle drops kvtool's one reference, and RocksDB closes it (`DB.__dealloc__`) when the last
holder goes, which is after every iterator and snapshot by construction. Native objects live
only in `Handle._native`; methods that bind one to a local drop it in `finally`, so a kept
traceback cannot hold it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import rocksdb  # type: ignore[import-untyped]

from kvtool.engine.base import (
    DEFAULT_CF,
    Bottommost,
    Database,
    Engine,
    EngineIterator,
    LiveFile,
    OpenMode,
    Record,
    Snapshot,
    SstWriter,
    WriteBatch,
)
from kvtool.engine.format_safety import (
    SafetyReport,
    assess,
    refuse_unless_forced,
    refuse_unmet_for_reading,
    unmet_needs,
)
from kvtool.engine.handles import TRACER
from kvtool.engine.keyorder import KeyOrder, key_order
from kvtool.engine.lockfile import lock_holder
from kvtool.engine.options_file import read_options_file
from kvtool.engine.options_keeper import OptionsKeeper
from kvtool.engine.options_text import portable_text
from kvtool.engine.pyrocksdb.options import (
    ENGINE,
    build_options,
    bundled_rocksdb_version,
    list_column_families,
    new_cf_options,
    options_round_trip,
    refuse_unreadable_files,
    refuse_unwritable_options,
)
from kvtool.engine.shadow import ShadowDir
from kvtool.errors import (
    DatabaseBusyError,
    KvtoolError,
    StorageError,
    UnavailableError,
    UsageError,
)
from kvtool.errors import from_native as _status_error

_ALTERNATIVE = "use the default engine: --engine rocksdict"


def lacks(what: str) -> UnavailableError:
    """The one error for what this binding does not offer (exit 69)."""
    return UnavailableError(f"the {ENGINE} engine (RocksDB 6.14) cannot {what}", hint=_ALTERNATIVE)


def from_native(exc: BaseException, *, context: str = "") -> KvtoolError:
    """`errors.from_native` for this binding, whose errors carry their status as bytes."""
    if isinstance(exc, KvtoolError):
        return exc
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], bytes):
        exc = RuntimeError(args[0].decode("utf-8", errors="replace"))
    elif isinstance(exc, Exception) and str(exc).startswith("Unknown error: b"):
        exc = RuntimeError(str(exc)[len("Unknown error: b") + 1 : -1])
    return _status_error(exc, context=context)


def _key(cf: Any, key: bytes) -> Any:
    """The binding names a column family by passing `(handle, key)` where a key goes."""
    return key if cf is None else (cf, key)


class PyRocksdbIterator(EngineIterator):
    """A bounded iterator; every bound is native (keys are in bytewise order: this engine opens
    bytewise databases only, so an open lower bound is `lower + b"\\0"` inclusive and a closed
    upper bound `upper + b"\\0"` exclusive). The native object is the binding's items iterator,
    its reversed view and the bounds' bytes; a read gives the record at the position and steps,
    as `__next__` does, and raises the iterator's status (a corrupt block is never an early
    end)."""

    def __init__(self, native: Any, owner: PyRocksdbDatabase, *, named: bool) -> None:
        super().__init__(native, owner)
        self._named = named  # records come as ((cf_handle, key), value)
        self._reverse = False

    def _call(self, name: str, *args: Any) -> None:
        native: Any = self._require()
        try:
            getattr(native[0], name)(*args)
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            native = None

    def seek_to_first(self) -> None:
        self._call("seek_to_first")

    def seek_to_last(self) -> None:
        self._call("seek_to_last")

    def seek(self, key: bytes) -> None:
        self._call("seek", key)

    def seek_for_prev(self, key: bytes) -> None:
        self._call("seek_for_prev", key)

    def _read(self, limit: int, reverse: bool) -> list[Any]:
        native: Any = self._require()
        try:
            return list(islice(native[1] if reverse else native[0], max(limit, 0)))
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            native = None

    def read_batch(self, limit: int, *, reverse: bool = False) -> list[Record]:
        raw = self._read(limit, reverse)
        if self._named:
            return [(key[1], value) for key, value in raw]
        return raw

    def read_keys(self, limit: int, *, reverse: bool = False) -> list[bytes]:
        raw = self._read(limit, reverse)
        if self._named:
            return [key[1] for key, _ in raw]
        return [key for key, _ in raw]

    def count(self, limit: int, *, reverse: bool = False) -> int:
        return len(self._read(limit, reverse))


class PyRocksdbSnapshot(Snapshot):
    def __init__(self, native: Any, owner: PyRocksdbDatabase) -> None:
        super().__init__(native, owner)
        self._db = owner

    def get(self, key: bytes, cf: str | None = None) -> bytes | None:
        return self._db._get(key, cf, self._require())


class PyRocksdbWriteBatch(WriteBatch):
    def __init__(self, native: Any, owner: PyRocksdbDatabase) -> None:
        super().__init__(native, owner)
        self._db = owner

    def put(self, key: bytes, value: bytes, cf: str | None = None) -> None:
        self._require().put(_key(self._db._cf_handle(cf), key), value)

    def delete(self, key: bytes, cf: str | None = None) -> None:
        self._require().delete(_key(self._db._cf_handle(cf), key))

    def delete_range(self, start: bytes, end: bytes, cf: str | None = None) -> None:
        raise lacks("delete a range of keys")

    def __len__(self) -> int:
        return int(self._require().count())

    def size_in_bytes(self) -> int:
        return len(self._require().data())

    def clear(self) -> None:
        self._require().clear()


_SST_LINE = re.compile(r"^\s*(\d+):\d+\[", re.MULTILINE)


def _file_number(name: str) -> int:
    digits = "".join(ch for ch in name.rsplit("/", 1)[-1] if ch.isdigit())
    return int(digits) if digits else -1


class PyRocksdbDatabase(Database):
    def __init__(
        self,
        native: Any,
        *,
        path: Path,
        mode: OpenMode,
        names: list[str],
        shadow: ShadowDir | None,
        secondary_dir: Path | None = None,
        options_keeper: OptionsKeeper | None = None,
    ) -> None:
        super().__init__(native)
        self.path = path
        self.mode = mode
        self._names = names
        self._shadow = shadow
        self._secondary_dir = secondary_dir
        self._options_keeper = options_keeper
        self._cf_handles: dict[str, Any] = {}  # weak handles of the binding: kept here only
        self._key_orders: dict[str, KeyOrder] = {}

    def _close_native(self, native: Any) -> None:
        self._cf_handles.clear()
        try:
            # Held by `release()`, by this frame and by getrefcount: anything more is a live
            # native iterator or snapshot (a kept traceback, a leaked object). Closing under it
            # would crash when it is freed, so the database then closes with its last holder.
            if sys.getrefcount(native) <= 3:
                native.close()  # its status is discarded by the binding
            else:
                TRACER.log("deferred close", self.kind, self.id, None)
        finally:
            native = None
            if self._options_keeper is not None:
                self._options_keeper.restore()
            if self._shadow is not None:
                self._shadow.remove()
            if self._secondary_dir is not None:
                shutil.rmtree(self._secondary_dir, ignore_errors=True)

    def _cf_handle(self, cf: str | None) -> Any:
        if cf in (None, DEFAULT_CF):
            return None
        handle = self._cf_handles.get(cf)
        if handle is None:
            if cf not in self._names:
                raise UsageError(
                    f"no column family {cf!r}",
                    hint=f"this database has: {', '.join(self._names)}",
                )
            db: Any = self._require()
            try:
                handle = db.get_column_family(cf.encode())
            finally:
                db = None
            self._cf_handles[cf] = handle
        return handle

    # -- reading ----------------------------------------------------------------------------------
    @property
    def column_families(self) -> list[str]:
        return list(self._names)

    def _get(self, key: bytes, cf: str | None, snapshot: Any = None) -> bytes | None:
        handle = self._cf_handle(cf)
        db: Any = self._require()
        try:
            value: bytes | None = db.get(_key(handle, key), snapshot=snapshot)
            return value
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            db = snapshot = None

    def get(self, key: bytes, cf: str | None = None) -> bytes | None:
        return self._get(key, cf)

    def snapshot(self) -> Snapshot:
        db: Any = self._require()
        try:
            return PyRocksdbSnapshot(db.snapshot(), self)
        finally:
            db = None

    def iterator(
        self,
        cf: str | None = None,
        *,
        lower: bytes | None = None,
        upper: bytes | None = None,
        lower_open: bool = False,
        upper_closed: bool = False,
        verify_checksums: bool = True,
        fill_cache: bool = False,
        readahead: int = 0,
    ) -> EngineIterator:
        order = self.key_order(cf)
        if order.kind != "bytewise":  # refused at open; bounds below assume bytewise
            raise UnavailableError(f"the {ENGINE} engine reads bytewise key orders only")
        if lower is not None and lower_open:
            lower += b"\0"  # the first key after `lower`
        if upper is not None and upper_closed:
            upper += b"\0"
        handle = self._cf_handle(cf)
        db: Any = self._require()
        items = native = None
        try:
            # total_order_seek: a prefix extractor's bloom filters never skip a file.
            items = db.iteritems(
                handle,
                verify_checksums=verify_checksums,
                fill_cache=fill_cache,
                total_order_seek=True,
                iterate_lower_bound=lower,
                iterate_upper_bound=upper,
            )
            # The binding's bounds point into these bytes objects without holding them: the
            # handle holds them for as long as it holds the iterator.
            native = (items, reversed(items), lower, upper)
            return PyRocksdbIterator(native, self, named=handle is not None)
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            db = items = native = None

    def key_order(self, cf: str | None = None) -> KeyOrder:
        name = cf or DEFAULT_CF
        order = self._key_orders.get(name)
        if order is None:
            order = self._key_orders[name] = key_order(self.path, name)
        return order

    def property(self, name: str, cf: str | None = None) -> str | None:
        handle = self._cf_handle(cf)
        db: Any = self._require()
        try:
            value = db.get_property(name.encode(), handle)
            return None if value is None else bytes(value).decode("utf-8", errors="replace")
        except Exception as exc:
            raise from_native(exc) from None
        finally:
            db = None

    def live_files(self) -> list[LiveFile]:
        db: Any = self._require()
        try:
            raw = db.get_live_files_metadata()
        except Exception as exc:
            raise from_native(exc) from None
        finally:
            db = None
        # The metadata names no column family; each CF's "rocksdb.sstables" lists its files.
        # Entry counts are not in this binding's metadata: 0 (unknown).
        cf_of_file: dict[int, str] = {}
        for cf in self._names:
            for number in _SST_LINE.findall(self.property("rocksdb.sstables", cf) or ""):
                cf_of_file[int(number)] = cf
        return [
            LiveFile(
                name=str(f["name"]).lstrip("/"),
                column_family=cf_of_file.get(_file_number(str(f["name"]))),
                level=int(f["level"]),
                size=int(f["size"]),
                entries=0,
                deletions=0,
                smallest_key=bytes(f.get("smallestkey") or b""),
                largest_key=bytes(f.get("largestkey") or b""),
            )
            for f in raw
        ]

    def sequence_number(self) -> int:
        # No latest-sequence call in this binding: a snapshot is taken at it, and the oldest
        # snapshot's sequence says what it is (kvtool holds no other snapshot while asking).
        db: Any = self._require()
        try:
            snap = db.snapshot()
            try:
                value = db.get_property(b"rocksdb.oldest-snapshot-sequence")
            finally:
                del snap
            return int(value or 0)
        except Exception as exc:
            raise from_native(exc) from None
        finally:
            db = None

    def catch_up(self) -> None:
        if self.mode is OpenMode.SECONDARY:
            if self._shadow is not None:
                self._shadow.refresh()
            db: Any = self._require()
            try:
                db.try_catch_up_with_primary()
            except Exception as exc:
                raise from_native(exc) from None
            finally:
                db = None

    # -- writing ----------------------------------------------------------------------------------
    def _write(self, fn: str, *args: Any, **kwargs: Any) -> None:
        db: Any = self._writable()
        try:
            getattr(db, fn)(*args, **kwargs)
        except Exception as exc:
            raise from_native(exc, context="writing") from None
        finally:
            db = None

    def put(self, key: bytes, value: bytes, cf: str | None = None) -> None:
        self._write("put", _key(self._cf_handle(cf), key), value)

    def delete(self, key: bytes, cf: str | None = None) -> None:
        self._write("delete", _key(self._cf_handle(cf), key))

    def delete_range(self, start: bytes, end: bytes, cf: str | None = None) -> None:
        raise lacks("delete a range of keys")

    def write_batch(self) -> WriteBatch:
        self._writable()
        return PyRocksdbWriteBatch(rocksdb.WriteBatch(), self)

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        self._write("write", batch._require(), sync=sync)
        # As in the default engine, a written batch starts empty (rocksdict consumes it).
        batch._native = rocksdb.WriteBatch()

    def flush(self, cf: str | None = None) -> None:
        """The binding has no flush: the writes stay in the WAL, where they were durable before
        `write()` returned, and every RocksDB replays it on open (a close under RocksDB 6.14
        leaves them there too: tests/test_engine_pyrocksdb.py). Nothing to wait for."""
        self._writable()

    def create_column_family(self, name: str) -> None:
        self._writable()
        if name in self._names:
            raise UsageError(f"column family {name!r} already exists")
        self._write("create_column_family", name.encode(), new_cf_options(self.path))
        self._names.append(name)
        if self._options_keeper is not None:
            self._options_keeper.restore()

    def drop_column_family(self, name: str) -> None:
        self._writable()
        if name == DEFAULT_CF:
            raise UsageError("the default column family cannot be dropped")
        if name not in self._names:
            raise UsageError(f"no column family {name!r}")
        handle = self._cf_handle(name)
        self._cf_handles.pop(name, None)
        try:
            self._write("drop_column_family", handle)
        finally:
            handle = None
        self._names.remove(name)
        if self._options_keeper is not None:
            self._options_keeper.restore()

    def compact_range(
        self,
        start: bytes | None,
        end: bytes | None,
        cf: str | None = None,
        *,
        bottommost: Bottommost = Bottommost.IF_NEEDED,
    ) -> None:
        level = {
            Bottommost.SKIP: "skip",
            Bottommost.IF_NEEDED: "if_compaction_filter",
            Bottommost.FORCE: "force",
        }[bottommost]
        self._write(
            "compact_range",
            start,
            end,
            column_family=self._cf_handle(cf),
            bottommost_level_compaction=level,
        )

    def cancel_background_work(self, wait: bool = True) -> None:
        """The binding cancels background work only as part of closing, which follows."""
        self._require()

    def checkpoint(self, dest: Path) -> None:
        db: Any = self._writable()
        checkpoint = None
        keeper = self._options_keeper
        try:
            # RocksDB copies the OPTIONS file (to another filesystem) by the size it wrote.
            with keeper.as_the_engine_wrote_it() if keeper else contextlib.nullcontext():
                checkpoint = rocksdb.Checkpoint(db)
                checkpoint.create_checkpoint(str(dest))
        except Exception as exc:
            raise from_native(exc, context="checkpoint") from None
        finally:
            db = checkpoint = None
        if self._options_keeper is not None:
            self._options_keeper.restore(dest)

    def sst_writer(self, path: Path, cf: str | None = None) -> SstWriter:
        raise lacks("write SST files (import --mode sst)")

    def ingest(self, paths: Sequence[Path], cf: str | None = None, *, move: bool = False) -> None:
        raise lacks("ingest SST files (import --mode sst)")


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
            refuse_unmet_for_reading(path, unmet_needs(shadow.path, options_round_trip))
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
        from kvtool.engine.ondisk import check_database_dir

        exists = (path / "CURRENT").is_file()
        if not exists and not create:
            check_database_dir(path)
        if not exists and path.exists() and not path.is_dir():
            raise UsageError(f"{path} exists and is not a directory")
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

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        return {
            "engine": ENGINE,
            ENGINE: version("faust-streaming-rocksdb"),
            "rocksdict": version("rocksdict"),
            "rocksdb": bundled_rocksdb_version(),
        }
