"""An open python-rocksdb database (`import rocksdb`: faust-streaming-rocksdb, RocksDB 6.14):
reads, writes and maintenance through its native handle.

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
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rocksdb  # type: ignore[import-untyped]

from kvtool.engine.base import (
    DEFAULT_CF,
    Bottommost,
    Database,
    EngineIterator,
    LiveFile,
    OpenMode,
    Snapshot,
    SstWriter,
    WriteBatch,
)
from kvtool.engine.handles import TRACER
from kvtool.engine.keyorder import KeyOrder, key_order
from kvtool.engine.options_keeper import OptionsKeeper
from kvtool.engine.pyrocksdb.handles import (
    PyRocksdbIterator,
    PyRocksdbSnapshot,
    PyRocksdbWriteBatch,
)
from kvtool.engine.pyrocksdb.native import cf_key, from_native, lacks
from kvtool.engine.pyrocksdb.options import ENGINE, new_cf_options
from kvtool.engine.shadow import ShadowDir
from kvtool.errors import UnavailableError, UsageError

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
            value: bytes | None = db.get(cf_key(handle, key), snapshot=snapshot)
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
        self._write("put", cf_key(self._cf_handle(cf), key), value)

    def delete(self, key: bytes, cf: str | None = None) -> None:
        self._write("delete", cf_key(self._cf_handle(cf), key))

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
