"""The rocksdict binding of the engine interface: the only module that imports rocksdict.

Native objects are kept only in `Handle._native` (see `handles.py`). Methods that bind a native
object or one of its bound methods to a local drop that local in `finally`, so a traceback that
keeps the frame alive cannot keep the database open.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path
from typing import Any

import rocksdict as rd

from kvtool.engine.base import (
    DEFAULT_CF,
    Bottommost,
    Database,
    Engine,
    EngineIterator,
    Entity,
    Entry,
    LiveFile,
    OpenMode,
    Record,
    Snapshot,
    SstWriter,
    WriteBatch,
)
from kvtool.engine.damage import (
    describe_damaged_wal,
    describe_unreferenced,
    manifest_name,
    unreferenced_tables,
    wal_files,
)
from kvtool.engine.format_safety import refuse_unmet_for_reading, unmet_needs
from kvtool.engine.keyorder import BYTEWISE, KeyOrder, key_order
from kvtool.engine.lockfile import lock_holder
from kvtool.engine.options_file import OptionsFile, OptionsKeeper
from kvtool.engine.shadow import ShadowDir
from kvtool.errors import (
    CorruptionError,
    DamagedDatabaseError,
    DatabaseBusyError,
    DatabaseNotFoundError,
    KvtoolError,
    PermissionDeniedError,
    StorageError,
    UnavailableError,
    UsageError,
    register_path_alias,
)
from kvtool.errors import from_native as _status_error

CONFIG_FILE = "rocksdict-config.json"
# Table format for databases kvtool creates: 5 is readable by RocksDB >= 6.6 (6.14, Debian's ldb
# 7.8); rocksdict's default of 6 is not readable before 8.6. With CRC32c checksums (_table_options)
# and an OPTIONS file in RocksDB 6.14's vocabulary (OptionsKeeper), 6.14 and ldb 7.8 open them.
NEW_DB_FORMAT_VERSION = 5


_first, _second = itemgetter(0), itemgetter(1)

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


def _identity(key: bytes) -> bytes:
    return key


def _entries(raw: list[tuple[bytes, list[tuple[bytes, bytes]]]]) -> list[Entry]:
    """(key, columns) pairs as records: plain `(key, value)` where one default column holds it
    all (a plain value reads as that), `(key, Entity)` otherwise.

    The common batch, all plain, is told in C-level passes: column names in an entity are
    unique, so when every name is b"" and there are as many columns as records, each record
    has exactly its default column.
    """
    cells = list(chain.from_iterable(map(_second, raw)))
    if len(cells) == len(raw) and not any(map(_first, cells)):
        return list(zip(map(_first, raw), map(_second, cells), strict=False))  # same lengths
    return [
        (key, cols[0][1]) if len(cols) == 1 and not cols[0][0] else (key, Entity(tuple(cols)))
        for key, cols in raw
    ]


class RdictIterator(EngineIterator):
    """A bounded iterator. An exclusive upper bound is native; the others are kept here.

    rocksdict 0.3.29's `ReadOptions.set_iterate_lower_bound` sets the *upper* bound instead (a
    lone lower bound hides every key at or after it; next to an upper bound it is overridden), so
    it is never called. Forward reads start at `lower` (the seeks clamp to it, and step over it
    when it is open) and keys only grow; reverse reads are cut where they cross it, one compare
    per batch, and the iterator then counts as past its end until the next seek, as a native
    bound would leave it. A closed upper bound (a prefix under a reverse order) has no native
    form: reverse reads start at it and forward reads are cut the same way. Every comparison is
    the column family's key order (kvtool.engine.keyorder), never Python's bytes order.

    Bulk reads. Stepping an `RdictIter` from Python costs four native calls per record (valid, key,
    value, next). On a static view (a READ_ONLY open: nothing can change under it) reads in one
    direction instead pull from rocksdict's own `items()`/`keys()` stream, one native call per
    record (about 40% less time, bench/bench_export.py). That stream ends silently on a corrupt
    block (docs/design.md, fact 1): where it ends the native iterator is placed just past the last
    record it gave and asked: a record there means the stream stopped early (raised as a
    StorageError), else `status()` raises what stopped it. A new stream starts after each seek, and
    when a read changes kind (keys/items); the view being static, every stream sees the same data.
    `count` copies nothing out, so it steps the native iterator. A read against the direction of the
    last seek or read is rare (and has native semantics that a stream cannot give): the native
    iterator is placed where the stream left off and stepped as before until the next seek.
    """

    def __init__(
        self,
        native: Any,
        owner: RdictDatabase,
        lower: bytes | None = None,
        *,
        cf: str | None = None,
        opts: Any = None,
        static: bool = False,
        order: KeyOrder = BYTEWISE,
        lower_open: bool = False,
        upper: bytes | None = None,
    ) -> None:
        super().__init__(native, owner)
        self._db = owner
        self._lower = lower
        self._lower_open = lower_open and lower is not None
        self._upper = upper  # a closed upper bound (an open one is native)
        # Past a bound (cut by a read, or positioned outside): reads give nothing until a seek.
        self._past_bound = False
        self._order = order
        self._outside = _outside_test(order, lower, self._lower_open, upper)
        self._cf = cf
        self._opts = opts
        self._bulk = static
        # The bulk position: reading `reverse`-ward from `_from` (None: the range's end), skipping
        # a first record equal to `_skip` (the last record already given).
        self._reverse = False
        self._from: bytes | None = lower
        self._skip: bytes | None = None
        self._stream: Any = None  # rocksdict's items()/keys() stream, held only here
        self._stream_kind = ""
        # Nothing to read until a seek: not yet positioned, or past the end (either direction).
        self._ended = True
        self._stepping = not static  # reads step the native iterator (no bulk position)

    def _close_native(self, native: Any) -> None:
        self._stream = None

    def _bulk_seek(self, reverse: bool, key: bytes | None) -> None:
        self._stream = None
        self._reverse, self._from, self._skip = reverse, key, None
        self._ended = False
        self._past_bound = False
        self._stepping = not self._bulk

    def seek_to_first(self) -> None:
        lower = self._lower
        if self._bulk:
            self._require()
            self._bulk_seek(False, lower)
            if self._lower_open:
                self._skip = lower  # an open lower bound: its own record is not in range
            return
        if lower is None:
            self._call("seek_to_first")
            return
        self._call("seek", lower)
        if self._lower_open:
            self._step_over(lower)

    def seek_to_last(self) -> None:
        if self._upper is not None:  # closed: the last key is at most the bound itself
            return self.seek_for_prev(self._upper)
        if self._bulk:
            self._require()
            return self._bulk_seek(True, None)
        self._call("seek_to_last")

    def seek(self, key: bytes) -> None:
        lower = self._lower
        if lower is not None and (key == lower or self._order.lt(key, lower)):
            return self.seek_to_first()  # at or below the lower bound: clamp to it
        if self._bulk:
            self._require()
            return self._bulk_seek(False, key)
        self._call("seek", key)

    def seek_for_prev(self, key: bytes) -> None:
        upper = self._upper
        if upper is not None and not self._order.lt(key, upper):
            key = upper  # at or above the closed upper bound: clamp to it
        if self._bulk:
            self._require()
            return self._bulk_seek(True, key)
        self._call("seek_for_prev", key)

    def _call(self, name: str, *args: Any) -> None:
        self._past_bound = False
        try:
            getattr(self._require(), name)(*args)
        except Exception as exc:
            raise from_native(exc) from None

    def _step_over(self, key: bytes) -> None:
        """After a native seek to `key`: step past a record with exactly that key."""
        it: Any = self._require()
        try:
            if it.valid() and it.key() == key:
                it.next()
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            it = None

    def _keep_within(self, out: list[Any], key: Callable[[Any], bytes]) -> None:
        """Drop the tail of `out` (read in one direction) that lies outside the bounds kept here.

        Started inside, a read in one direction leaves the range once and for good, so two
        compares per batch tell whether anything is cut, and a bisection where.
        """
        outside = self._outside
        if outside is None or not out:
            return
        if not outside(key(out[0])) and not outside(key(out[-1])):
            return
        self._past_bound = True
        if outside(key(out[0])):  # positioned outside (a seek past a bound): nothing
            out.clear()
        else:
            del out[bisect_left(out, True, key=lambda item: outside(key(item))) :]

    # -- bulk reads -------------------------------------------------------------------------------
    def _use_bulk(self, reverse: bool) -> bool:
        """Whether this read can come from a stream; else the native iterator is placed to step."""
        if self._stepping:
            return False
        if reverse == self._reverse or self._ended:  # an ended read gives nothing either way
            return True
        self._place_native()
        self._stepping = True
        self._stream = None
        return False

    def _place_native(self) -> None:
        """Put the native iterator where the bulk position is: on the next record to give."""
        it: Any = self._require()
        try:
            key = self._from
            if self._reverse:
                it.seek_to_last() if key is None else it.seek_for_prev(key)
            else:
                it.seek_to_first() if key is None else it.seek(key)
            if self._skip is not None and it.valid() and it.key() == self._skip:
                it.prev() if self._reverse else it.next()
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            it = None

    def _bulk_read(self, kind: str, limit: int) -> list[Any]:
        """Up to `limit` items or keys from the stream at the bulk position."""
        if self._ended or self._past_bound or limit <= 0:
            return []
        self._require()
        stream = self._stream
        try:
            if stream is None or self._stream_kind != kind:
                view = self._db._view(self._cf)
                make = {"items": view.items, "keys": view.keys, "entities": view.entities}[kind]
                stream = make(backwards=self._reverse, from_key=self._from, read_opt=self._opts)
                view = make = None
                self._stream, self._stream_kind = stream, kind
                if self._skip is not None:
                    # A new stream starts at the last record already given (still there: the
                    # view is static): drop it.
                    out = list(islice(stream, 1))
                    if out and (out[0] if kind == "keys" else out[0][0]) == self._skip:
                        out.clear()
                    out += islice(stream, limit - len(out))
                else:
                    out = list(islice(stream, limit))
            else:
                out = list(islice(stream, limit))
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            stream = None
        if out:
            last = out[-1] if kind == "keys" else out[-1][0]
            self._from = self._skip = last
        if len(out) < limit:
            self._stream = None
            self._ended = True
            self._check_end()
        return out

    def _check_end(self) -> None:
        """A stream ended: raise unless the native iterator finds the range ends there too."""
        self._place_native()
        it: Any = self._require()
        try:
            if it.valid():
                key = it.key()
                if self._outside is not None and self._outside(key):
                    return  # the stream ended where the range does: the rest is out of range
                raise StorageError(
                    f"reading: the read stopped early, before key {key!r}, with no error status",
                    hint="run it again; if it recurs, run `kvtool verify`",
                )
            it.status()
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            it = None

    # -- reads ------------------------------------------------------------------------------------
    def read_batch(self, limit: int, *, reverse: bool = False) -> list[Record]:
        if self._past_bound:
            return []
        if self._use_bulk(reverse):
            records: list[Record] = self._bulk_read("items", limit)
            self._keep_within(records, _first)
            return records
        it: Any = self._require()
        valid = key = value = step = None
        try:
            valid, key, value = it.valid, it.key, it.value
            step = it.prev if reverse else it.next
            out: list[Record] = []
            append = out.append
            for _ in range(limit):
                if not valid():
                    it.status()
                    break
                append((key(), value()))
                step()
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            it = valid = key = value = step = None
        self._keep_within(out, _first)
        return out

    def read_entries(self, limit: int, *, reverse: bool = False) -> list[Entry]:
        # rocksdict's columns come as a list of (name, value) tuples per record, a plain value
        # as [(b"", value)]: about 0.3 us more per record than items() (bench in the README).
        if self._past_bound:
            return []
        if self._use_bulk(reverse):
            records = _entries(self._bulk_read("entities", limit))
            self._keep_within(records, _first)
            return records
        it: Any = self._require()
        valid = key = columns = step = None
        try:
            valid, key, columns = it.valid, it.key, it.columns
            step = it.prev if reverse else it.next
            raw: list[tuple[bytes, list[tuple[bytes, bytes]]]] = []
            append = raw.append
            for _ in range(limit):
                if not valid():
                    it.status()
                    break
                append((key(), columns()))
                step()
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            it = valid = key = columns = step = None
        out = _entries(raw)
        self._keep_within(out, _first)
        return out

    def read_keys(self, limit: int, *, reverse: bool = False) -> list[bytes]:
        if self._past_bound:
            return []
        if self._use_bulk(reverse):
            keys: list[bytes] = self._bulk_read("keys", limit)
            self._keep_within(keys, _identity)
            return keys
        it: Any = self._require()
        valid = key = step = None
        try:
            valid, key = it.valid, it.key
            step = it.prev if reverse else it.next
            out: list[bytes] = []
            append = out.append
            for _ in range(limit):
                if not valid():
                    it.status()
                    break
                append(key())
                step()
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            it = valid = key = step = None
        self._keep_within(out, _identity)
        return out

    def count(self, limit: int, *, reverse: bool = False) -> int:
        if self._past_bound:
            return 0
        if not self._stepping:
            if self._ended:
                return 0
            # Counting copies nothing out: step the native iterator from the bulk position
            # (as fast as a keys stream for short keys, faster for long ones).
            self._place_native()
            self._stepping = True
            self._stream = None
        if self._outside is not None and (
            (self._lower is not None if reverse else self._upper is not None)
            or self._starts_outside()
        ):
            # Steps towards a bound kept here must look at each key to stop at it.
            return len(self.read_keys(limit, reverse=reverse))
        it: Any = self._require()
        valid = step = None
        try:
            valid = it.valid
            step = it.prev if reverse else it.next
            n = 0
            for n in range(limit):
                if not valid():
                    it.status()
                    return n
                step()
            return limit
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            it = valid = step = None

    def _starts_outside(self) -> bool:
        it: Any = self._require()
        try:
            if it.valid() and self._outside is not None and self._outside(it.key()):
                self._past_bound = True
            return self._past_bound
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            it = None


def _outside_test(
    order: KeyOrder, lower: bytes | None, lower_open: bool, upper: bytes | None
) -> Callable[[bytes], bool] | None:
    """A test for keys outside the bounds an iterator keeps itself (None: it keeps none)."""
    if lower is None and upper is None:
        return None
    lt = order.lt  # an unknown order raises here: no bound can be kept without it
    if upper is None:
        assert lower is not None
        if lower_open:
            return lambda key: not lt(lower, key)
        return lambda key: lt(key, lower)
    if lower is None:
        return lambda key: lt(upper, key)
    if lower_open:
        return lambda key: not lt(lower, key) or lt(upper, key)
    return lambda key: lt(key, lower) or lt(upper, key)


class RdictSnapshot(Snapshot):
    def __init__(self, native: Any, owner: RdictDatabase) -> None:
        super().__init__(native, owner)
        self._db = owner

    def get(self, key: bytes, cf: str | None = None) -> bytes | None:
        if cf not in (None, DEFAULT_CF):
            raise UsageError("snapshot reads cover the default column family only")
        try:
            value: bytes = self._require()[key]
            return value
        except KeyError:
            return None
        except Exception as exc:
            if str(exc) == "key not found":
                return None
            raise from_native(exc) from None


class RdictWriteBatch(WriteBatch):
    def __init__(self, native: Any, owner: RdictDatabase) -> None:
        super().__init__(native, owner)
        self._db = owner

    def put(self, key: bytes, value: bytes, cf: str | None = None) -> None:
        self._require().put(key, value, self._db._cf_handle(cf))

    def put_entity(self, key: bytes, entity: Entity, cf: str | None = None) -> None:
        # rocksdict's WriteBatch.put_entity takes no column family: it writes to the batch's
        # default one, which must be set (even for "default"); other calls name theirs (None:
        # the batch's default), so it is put back to the real default at once.
        native = self._require()
        names = [name for name, _ in entity.columns]
        values = [value for _, value in entity.columns]
        try:
            native.set_default_column_family(self._db._cf_handle(cf or DEFAULT_CF, named=True))
            native.put_entity(key, names, values)
        except Exception as exc:
            raise from_native(exc, context="writing") from None
        finally:
            native.set_default_column_family(self._db._cf_handle(DEFAULT_CF, named=True))
            del native

    def delete(self, key: bytes, cf: str | None = None) -> None:
        self._require().delete(key, self._db._cf_handle(cf))

    def delete_range(self, start: bytes, end: bytes, cf: str | None = None) -> None:
        self._require().delete_range(start, end, self._db._cf_handle(cf))

    def __len__(self) -> int:
        return int(self._require().len())

    def size_in_bytes(self) -> int:
        return int(self._require().size_in_bytes())

    def clear(self) -> None:
        self._require().clear()


class RdictSstWriter(SstWriter):
    def put(self, key: bytes, value: bytes) -> None:
        try:
            self._require()[key] = value
        except Exception as exc:
            raise from_native(exc, context="writing SST") from None

    def put_many(self, records: Iterable[Record]) -> None:
        setitem = self._require().__setitem__
        try:
            for key, value in records:
                setitem(key, value)
        except Exception as exc:
            raise from_native(exc, context="writing SST") from None
        finally:
            del setitem

    def finish(self) -> int:
        writer = self._require()
        try:
            writer.finish()
            return int(writer.file_size())
        except Exception as exc:
            raise from_native(exc, context="writing SST") from None
        finally:
            del writer


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
                _remove_config(self.path)
            if self._options_keeper is not None:
                _restore_options(self._options_keeper)
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

    def _writable(self) -> Any:
        if self.mode is not OpenMode.READ_WRITE:
            raise UsageError(f"database opened {self.mode.value}; this operation writes")
        return self._require()

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
                column_family=cf_of_file.get(_file_number(str(f["name"]))),
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
        probe = Path(tempfile.mkdtemp(prefix="kvtool-blobprobe-"))
        register_path_alias(str(probe), str(self.path))
        db: Any = None
        it: Any = None
        try:
            for name in os.listdir(self._shadow.path):
                if not name.endswith(".blob") and name not in ("LOCK", "LOG", CONFIG_FILE):
                    os.symlink(self._shadow.path / name, probe / name)
            access = rd.AccessType.read_only(False)
            db = rd.Rdict(
                str(probe), self._options, column_families=self._cf_options, access_type=access
            )
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
        opts = _new_cf_options(self._cf_options.get(DEFAULT_CF))
        try:
            db.create_column_family(name, opts)
        except Exception as exc:
            raise from_native(exc, context=f"creating column family {name!r}") from None
        finally:
            del db
        self._cf_options[name] = opts
        if self._options_keeper is not None:
            _restore_options(self._options_keeper)

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
            _restore_options(self._options_keeper)

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
            _remove_config(dest)
        if self._options_keeper is not None:
            # The copy's OPTIONS file is a hard link to the restored one, or a copy of it (another
            # filesystem); made sure of all the same.
            _restore_options(self._options_keeper, dest)

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
_BLOB_IN_TEXT = re.compile(r"(\d+\.blob)\b")


def _file_number(name: str) -> int:
    digits = "".join(ch for ch in name.rsplit("/", 1)[-1] if ch.isdigit())
    return int(digits) if digits else -1


def _restore_options(keeper: OptionsKeeper, target: Path | None = None) -> None:
    try:
        keeper.restore(target)
    except OSError as exc:
        raise StorageError(
            f"rewriting the OPTIONS file of {target or keeper.db_dir}: {exc}",
            hint="its data is intact; until this succeeds, older RocksDB tools may refuse to "
            "load its newest OPTIONS file",
        ) from None


def _remove_config(path: Path) -> None:
    """rocksdict writes its config on open and on CF changes, and reads it only at open: a file
    the owner's database did not have is removed again."""
    with contextlib.suppress(OSError):
        (path / CONFIG_FILE).unlink()


def _limit_io(opts: Any, rate: int) -> None:
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


def _new_db_options() -> Any:
    opts = rd.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.set_block_based_table_factory(_table_options(NEW_DB_FORMAT_VERSION))
    return opts


def _new_cf_options(like: Any | None) -> Any:
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
    database; only a separate WAL directory is honoured.
    """
    from kvtool.engine.options_file import read_options_file

    try:
        parsed = read_options_file(path)
        wal_dir = parsed.db_options.get("wal_dir", "") if parsed else ""
        if not wal_dir:
            return
        has_own_wal = any(
            name.endswith(".log") and name[:-4].isdigit() for name in os.listdir(path)
        )
        if has_own_wal or (Path(wal_dir) / "CURRENT").exists():
            opts.set_wal_dir(str(path))
    except OSError:
        return


def _load_options(path: Path, *, fallback: bool = False) -> tuple[Any, dict[str, Any]]:
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
    from kvtool.engine.format_safety import sst_format_versions

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
    from kvtool.engine.options_file import read_options_file

    opts, cfs = rd.Options.load_latest(str(path), ignore_unknown_options=True)
    with tempfile.TemporaryDirectory(prefix="kvtool-options-") as tmp:
        scratch = Path(tmp) / "db"
        # Everything the scratch DB writes stays in the temp dir, whatever paths the owner set.
        opts.create_if_missing(True)
        opts.create_missing_column_families(True)
        opts.set_error_if_exists(False)
        opts.set_wal_dir(str(scratch))
        opts.set_db_log_dir(str(scratch))
        db = rd.Rdict(str(scratch), opts, column_families=dict(cfs))
        try:
            db.close()
        finally:
            del db, opts, cfs
        parsed = read_options_file(scratch)
    if parsed is None:  # pragma: no cover - RocksDB always writes one
        raise RuntimeError("the engine wrote no OPTIONS file")
    return parsed


# How often a read-only open is tried again when the database's files moved during it (a live
# owner that flushes and compacts); each try builds a fresh shadow (see shadow.py).
_OPEN_ATTEMPTS = 30


def _open_shadow(
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


def _refuse_damage(path: Path) -> None:
    """Raise DamagedDatabaseError if a read-only open of `path` finds damaged metadata.

    No Database handle is made (a write's --trace-handles shows its own handle only). What the
    engine cannot read (an operator it lacks) is format safety's call, not damage.
    """
    shadow = ShadowDir(path)
    try:
        native, *_ = _open_shadow(path, shadow, None, allow_data_loss=False)
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
    opts, cfs = _load_options(shadow.path)
    _stop_at_merge_without_operator(opts)
    opts.set_max_open_files(-1)  # open every SST now: a writer may delete them later
    damage: list[str] = []
    damaged_files: list[str] = []
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
            lost = unreferenced_tables(path, live)
            if lost:
                manifest = manifest_name(shadow.path)
                damage.append(describe_unreferenced(path, manifest, lost))
                damaged_files.append(str(path / manifest))
        if damage and not allow_data_loss:
            raise DamagedDatabaseError(
                "; ".join(damage),
                files=tuple(damaged_files),
                hint="restore it from a copy, or pass --allow-data-loss to read what RocksDB "
                "recovers; a write with that option deletes what is left out",
            )
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


def _stop_at_merge_without_operator(opts: Any) -> None:
    """Make a WAL merge record without a merge operator fail the open.

    Under RocksDB's default recovery mode (point in time) such a record ends the replay there,
    silently: a read-only view then misses every later write of the log (measured: a database of
    100 merges and 100 puts, all in the WAL, reads as empty), and a read-write open makes the loss
    permanent. Tolerating only a torn last record (what a crash leaves) turns it into an error,
    which `errors.from_native` reports as exit 69.
    """
    opts.set_wal_recovery_mode(rd.DBRecoveryMode.tolerate_corrupted_tail_records())


_MERGE_OPERANDS = re.compile(r"# merge operands=(\d+)")


def _refuse_orphan_operands(db: RdictDatabase) -> RdictDatabase:
    """Close `db` and raise UnavailableError if a column family that the engine opened without a
    merge operator has merge operands in its SST files (its OPTIONS file is missing or says
    nullptr): a point lookup or a reverse step onto one crashes RocksDB 9.8 (SIGSEGV, in
    `Get` and in `items(backwards=True)`), and no read could merge them. One property per column
    family, from table properties the open has loaded already."""
    from kvtool.engine.format_safety import merge_operator_cfs

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


def check_database_dir(path: Path) -> None:
    """Raise DatabaseNotFoundError unless `path` is a RocksDB dir, PermissionDeniedError (77)
    unless this user may read it and every directory on its path; creates nothing."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise DatabaseNotFoundError(
            f"no database at {path}", hint="check the path; nothing was created"
        ) from None
    except PermissionError:
        raise PermissionDeniedError(
            f"cannot reach {path}: permission denied on a directory on its path",
            hint="run as a user who may read it, e.g. the database's owner",
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise DatabaseNotFoundError(f"{path} is not a directory", hint="give a RocksDB directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise PermissionDeniedError(
            f"cannot read {path}: permission denied",
            hint="run as a user who may read it, e.g. the database's owner",
        )
    if not (path / "CURRENT").is_file():
        raise DatabaseNotFoundError(
            f"{path} is not a RocksDB database (it has no CURRENT file)",
            hint="give the directory that holds CURRENT, MANIFEST-* and *.sst",
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
            native, opts, cfs, damage = _open_shadow(
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
        return _refuse_orphan_operands(db)

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
        had_config = (path / CONFIG_FILE).exists()
        keeper = OptionsKeeper(path)
        if exists:
            # Every write passes here: refuse what the owner's RocksDB would read differently.
            from kvtool.engine.format_safety import check_writable_safely

            check_writable_safely(path, force)
            if not allow_data_loss and lock_holder(path) is None:
                # A read-write open deletes the files a damaged MANIFEST left out and drops a
                # damaged WAL's later records for good: look first, through a read-only view.
                # (A database another process holds is refused as busy by the open below.)
                _refuse_damage(path)
            opts, cfs = _load_options(path, fallback=force)
            _stop_at_merge_without_operator(opts)
        else:
            opts, cfs = _new_db_options(), {DEFAULT_CF: _new_cf_options(None)}
        if io_rate is not None:
            _limit_io(opts, io_rate)
        try:
            native = rd.Rdict(str(path), opts, column_families=cfs)
        except Exception as exc:
            if not had_config:  # rocksdict writes it before RocksDB refuses the open
                _remove_config(path)
            error = from_native(exc, context=f"opening {path}")
            holder = lock_holder(path) if isinstance(error, DatabaseBusyError) else None
            if holder is not None:
                error.message = (
                    f"{path} is locked by another process (pid {holder}), "
                    "e.g. the application that owns it"
                )
            raise error from None
        if not had_config:
            _remove_config(path)
        try:
            # RocksDB wrote an OPTIONS file at open: put the owner's back at once, so that only a
            # crash in these few milliseconds can leave it (OptionsKeeper repairs that next time).
            _restore_options(keeper)
        except BaseException:
            native.close()
            raise
        return _refuse_orphan_operands(
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

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        return {"rocksdict": version("rocksdict"), "rocksdb": bundled_rocksdb_version()}


def bundled_rocksdb_version() -> str:
    """The RocksDB version rocksdict bundles, as it writes it into a new database's OPTIONS file."""
    from kvtool.engine.options_file import read_options_file

    with tempfile.TemporaryDirectory(prefix="kvtool-version-") as tmp:
        db = rd.Rdict(tmp, _new_db_options())
        db.close()
        del db
        parsed = read_options_file(Path(tmp))
    return (parsed.rocksdb_version if parsed else None) or "unknown"
