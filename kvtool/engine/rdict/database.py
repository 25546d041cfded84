"""`RdictDatabase`: one open rocksdict database and the per-column-family natives it pins."""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rocksdict as rd

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
from kvtool.engine.keyorder import KeyOrder, key_order
from kvtool.engine.ondisk import file_number
from kvtool.engine.options_keeper import OptionsKeeper
from kvtool.engine.rdict.handles import RdictSnapshot, RdictSstWriter, RdictWriteBatch
from kvtool.engine.rdict.iterator import RdictIterator
from kvtool.engine.rdict.native import from_native, remove_config, restore_options
from kvtool.engine.rdict.opening import probe_blob_file
from kvtool.engine.rdict.options import new_cf_options
from kvtool.engine.shadow import ShadowDir
from kvtool.errors import (
    UsageError,
)


class RdictDatabase(Database):
    def __init__(
        self,
        native: Any,
        *,
        path: Path,
        mode: OpenMode,
        options: Any,
        cf_options: dict[str, Any],
        shadow: ShadowDir | None,
        secondary_dir: Path | None = None,
        foreign_config: bool = False,
        options_keeper: OptionsKeeper | None = None,
    ) -> None:
        super().__init__(native)
        # Puts the owner's OPTIONS file back after RocksDB writes one (read-write opens only).
        self._options_keeper = options_keeper
        # True when rocksdict's config file is ours to remove (the owner's DB did not have one).
        self._foreign_config = foreign_config
        self.path = path
        self.mode = mode
        self._options = options
        self._cf_options = cf_options
        self._shadow = shadow
        self._secondary_dir = secondary_dir
        # Per-CF natives (rocksdict's CF views and CF handles) pin the DB as well: kept here only.
        self._cf_views: dict[str, Any] = {}
        self._cf_handles: dict[str, Any] = {}
        self._background_cancelled = False
        self._key_orders: dict[str, KeyOrder] = {}

    # -- plumbing ---------------------------------------------------------------------------------
    def _close_native(self, native: Any) -> None:
        self._cf_views.clear()
        self._cf_handles.clear()
        try:
            native.close()
        except Exception as exc:
            # After cancel_background_work RocksDB refuses close()'s flush ("Shutdown in
            # progress"); the database is released all the same and unflushed writes stay in
            # the WAL.
            if not self._background_cancelled:
                raise from_native(exc, context="closing the database") from None
        finally:
            if self._foreign_config:
                remove_config(self.path)
            if self._options_keeper is not None:
                restore_options(self._options_keeper)
            if self._shadow is not None:
                self._shadow.remove()
            if self._secondary_dir is not None:
                shutil.rmtree(self._secondary_dir, ignore_errors=True)

    def _view(self, cf: str | None) -> Any:
        db = self._require()
        if cf in (None, DEFAULT_CF):
            return db
        name = cf
        view = self._cf_views.get(name)
        if view is None:
            if name not in self._cf_options:
                raise UsageError(
                    f"no column family {name!r}",
                    hint=f"this database has: {', '.join(self.column_families)}",
                )
            try:
                view = db.get_column_family(name)
            except Exception as exc:
                raise from_native(exc) from None
            self._cf_views[name] = view
        return view

    def _cf_handle(self, cf: str | None, *, named: bool = False) -> Any:
        """The native handle of `cf`; None for the default one unless `named` (some calls
        take None as "the default", WriteBatch.set_default_column_family needs its handle)."""
        if cf in (None, DEFAULT_CF) and not named:
            return None
        name = cf or DEFAULT_CF
        handle = self._cf_handles.get(name)
        if handle is None:
            if name != DEFAULT_CF:
                self._view(name)  # validates the name
            handle = self._require().get_column_family_handle(name)
            self._cf_handles[name] = handle
        return handle

    # -- reading ----------------------------------------------------------------------------------
    @property
    def column_families(self) -> list[str]:
        return list(self._cf_options)

    def get(self, key: bytes, cf: str | None = None) -> bytes | None:
        try:
            value: bytes | None = self._view(cf).get(key)
            return value
        except Exception as exc:
            raise from_native(exc) from None

    def snapshot(self) -> Snapshot:
        try:
            return RdictSnapshot(self._require().snapshot(), self)
        except Exception as exc:
            raise from_native(exc) from None

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
        opts = rd.ReadOptions()
        opts.set_verify_checksums(verify_checksums)
        opts.fill_cache(fill_cache)  # type: ignore[call-arg]  # the stub omits the flag
        # Seeks ignore any prefix extractor's bloom filters: with them a seek skips every file
        # whose filter rejects the seek key's prefix (silently fewer records). The bulk streams
        # read with these options too (measured: they honour it).
        opts.set_total_order_seek(True)
        if readahead:
            opts.set_readahead_size(readahead)
        # The lower bound and a closed upper bound are RdictIterator's job (see there); never
        # set_iterate_lower_bound.
        if upper is not None and not upper_closed:
            opts.set_iterate_upper_bound(upper)
        order = self.key_order(cf)
        try:
            return RdictIterator(
                self._view(cf).iter(opts),
                self,
                lower,
                cf=cf,
                opts=opts,
                static=self.mode is OpenMode.READ_ONLY,
                order=order,
                lower_open=lower_open,
                upper=upper if upper_closed else None,
            )
        except Exception as exc:
            raise from_native(exc) from None

    def key_order(self, cf: str | None = None) -> KeyOrder:
        name = cf or DEFAULT_CF
        order = self._key_orders.get(name)
        if order is None:
            order = self._key_orders[name] = key_order(self.path, name)
        return order

    def property(self, name: str, cf: str | None = None) -> str | None:
        try:
            value: str | None = self._view(cf).property_value(name)
            return value
        except Exception as exc:
            raise from_native(exc) from None

    def live_files(self) -> list[LiveFile]:
        try:
            raw = self._require().live_files()
        except Exception as exc:
            raise from_native(exc) from None
        # live_files() does not name the CF; each CF's "rocksdb.sstables" lists its file numbers.
        cf_of_file: dict[int, str] = {}
        for cf in self.column_families:
            listing = self.property("rocksdb.sstables", cf) or ""
            for number in _SST_LINE.findall(listing):
                cf_of_file[int(number)] = cf
        return [
            LiveFile(
                name=str(f["name"]).lstrip("/"),
                column_family=cf_of_file.get(file_number(str(f["name"]))),
                level=int(f["level"]),
                size=int(f["size"]),
                entries=int(f.get("num_entries", 0)),
                deletions=int(f.get("num_deletions", 0)),
                smallest_key=bytes(f.get("start_key") or b""),
                largest_key=bytes(f.get("end_key") or b""),
            )
            for f in raw
        ]

    def blob_file_after(self, cf: str | None, after: bytes | None) -> str | None:
        """RocksDB names no file in a blob checksum error. The same database opened without its
        blob files fails that read with "no such file" naming the blob file it needed."""
        if self._shadow is None:
            return None
        return probe_blob_file(
            self._shadow.path, self.path, self._options, self._cf_options, cf, after
        )

    def sequence_number(self) -> int:
        try:
            return int(self._require().latest_sequence_number())
        except Exception as exc:
            raise from_native(exc) from None

    def catch_up(self) -> None:
        if self.mode is OpenMode.SECONDARY:
            if self._shadow is not None:
                self._shadow.refresh()
            try:
                self._require().try_catch_up_with_primary()
            except Exception as exc:
                raise from_native(exc) from None

    # -- writing ----------------------------------------------------------------------------------
    def _write_call(self, fn: str, cf: str | None, *args: Any) -> None:
        self._writable()
        try:
            getattr(self._view(cf), fn)(*args)
        except Exception as exc:
            raise from_native(exc, context="writing") from None

    def put(self, key: bytes, value: bytes, cf: str | None = None) -> None:
        self._write_call("put", cf, key, value)

    def delete(self, key: bytes, cf: str | None = None) -> None:
        self._write_call("delete", cf, key)

    def delete_range(self, start: bytes, end: bytes, cf: str | None = None) -> None:
        self._write_call("delete_range", cf, start, end)

    def write_batch(self) -> WriteBatch:
        self._writable()
        return RdictWriteBatch(rd.WriteBatch(raw_mode=True), self)

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        db = self._writable()
        try:
            opts = rd.WriteOptions()
            opts.sync = sync
            db.write(batch._require(), opts)
            # rocksdict consumes a written batch; a fresh one keeps the handle usable.
            batch._native = rd.WriteBatch(raw_mode=True)
        except Exception as exc:
            raise from_native(exc, context="writing") from None
        finally:
            del db

    def flush(self, cf: str | None = None) -> None:
        self._write_call("flush", cf)

    def create_column_family(self, name: str) -> None:
        db = self._writable()
        if name in self._cf_options:
            raise UsageError(f"column family {name!r} already exists")
        opts = new_cf_options(self._cf_options.get(DEFAULT_CF))
        try:
            db.create_column_family(name, opts)
        except Exception as exc:
            raise from_native(exc, context=f"creating column family {name!r}") from None
        finally:
            del db
        self._cf_options[name] = opts
        if self._options_keeper is not None:
            restore_options(self._options_keeper)

    def drop_column_family(self, name: str) -> None:
        db = self._writable()
        if name == DEFAULT_CF:
            raise UsageError("the default column family cannot be dropped")
        if name not in self._cf_options:
            raise UsageError(f"no column family {name!r}")
        self._cf_views.pop(name, None)
        self._cf_handles.pop(name, None)
        try:
            db.drop_column_family(name)
        except Exception as exc:
            raise from_native(exc, context=f"dropping column family {name!r}") from None
        finally:
            del db
        del self._cf_options[name]
        if self._options_keeper is not None:
            restore_options(self._options_keeper)

    def compact_range(
        self,
        start: bytes | None,
        end: bytes | None,
        cf: str | None = None,
        *,
        bottommost: Bottommost = Bottommost.IF_NEEDED,
    ) -> None:
        self._writable()
        opts = rd.CompactOptions()
        opts.set_bottommost_level_compaction(
            {
                Bottommost.SKIP: rd.BottommostLevelCompaction.skip,
                Bottommost.IF_NEEDED: rd.BottommostLevelCompaction.if_have_compaction_filter,
                Bottommost.FORCE: rd.BottommostLevelCompaction.force,
            }[bottommost]()
        )
        self._write_call("compact_range", cf, start, end, opts)

    def cancel_background_work(self, wait: bool = True) -> None:
        db = self._require()
        self._background_cancelled = True
        try:
            db.cancel_all_background(wait)
        except Exception as exc:
            raise from_native(exc) from None
        finally:
            del db

    def checkpoint(self, dest: Path) -> None:
        db = self._writable()
        checkpoint = None
        keeper = self._options_keeper
        try:
            with keeper.as_the_engine_wrote_it() if keeper else contextlib.nullcontext():
                checkpoint = rd.Checkpoint(db)
                checkpoint.create_checkpoint(str(dest))
        except Exception as exc:
            raise from_native(exc, context="checkpoint") from None
        finally:
            db = checkpoint = None
        if self._foreign_config:
            # rocksdict writes its config into the copy: a file the owner's database lacks.
            remove_config(dest)
        if self._options_keeper is not None:
            # The copy's OPTIONS file is a hard link to the restored one, or a copy of it (another
            # filesystem); made sure of all the same.
            restore_options(self._options_keeper, dest)

    def sst_writer(self, path: Path, cf: str | None = None) -> SstWriter:
        opts = self._cf_options.get(cf or DEFAULT_CF, self._options)
        native = rd.SstFileWriter(opts)
        try:
            native.open(str(path))
        except Exception as exc:
            raise from_native(exc, context=f"creating {path}") from None
        return RdictSstWriter(native, self)

    def ingest(self, paths: Sequence[Path], cf: str | None = None, *, move: bool = False) -> None:
        opts = rd.IngestExternalFileOptions()
        opts.set_move_files(move)
        self._write_call("ingest_external_file", cf, [str(p) for p in paths], opts)


_SST_LINE = re.compile(r"^\s*(\d+):\d+\[", re.MULTILINE)
