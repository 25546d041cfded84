"""`RdictIterator`: bounded reads of one column family, in bulk where the view is static
(docs/design.md, Engine facts 1 and 8)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from itertools import chain, islice
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from kvtool.engine.base import (
    EngineIterator,
    Entry,
    Record,
)
from kvtool.engine.keyorder import BYTEWISE, KeyOrder
from kvtool.engine.rdict.native import from_native
from kvtool.engine.rdict.records import PAIR_SIZE, SIZED, entries
from kvtool.errors import (
    StorageError,
)

if TYPE_CHECKING:
    from kvtool.engine.rdict.database import RdictDatabase

_first, _second = itemgetter(0), itemgetter(1)


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
    block (docs/design.md, Engine facts 1): where it ends the native iterator is placed just past
    the last record it gave and asked: a record there means the stream stopped early (raised as a
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

    def _bulk_read(self, kind: str, limit: int, max_bytes: int | None = None) -> list[Any]:
        """Up to `limit` items or keys from the stream at the bulk position; with `max_bytes`,
        items or entities made records, as many as `SIZED` takes."""
        if self._ended or self._past_bound or limit <= 0:
            return []
        self._require()
        stream = source = None
        cut = False
        try:
            stream = source = self._stream
            if stream is None or self._stream_kind != kind:
                view = self._db._view(self._cf)
                make = {"items": view.items, "keys": view.keys, "entities": view.entities}[kind]
                stream = make(backwards=self._reverse, from_key=self._from, read_opt=self._opts)
                view = make = None
                self._stream, self._stream_kind = stream, kind
                source = stream
                if self._skip is not None:
                    # A new stream starts at the last record already given (still there: the
                    # view is static): drop it.
                    first = list(islice(stream, 1))
                    if first and (first[0] if kind == "keys" else first[0][0]) == self._skip:
                        first.clear()
                    source = chain(first, stream)
            if max_bytes is None:
                out = list(islice(source, limit))
            else:
                out, cut = SIZED[kind](islice(source, limit), max_bytes)
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            stream = source = None
        if out:
            last = out[-1] if kind == "keys" else out[-1][0]
            self._from = self._skip = last
        if len(out) < limit and not cut:
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
                detail = f"the read stopped early, before key {key!r}, with no error status"
                error = StorageError(
                    f"reading: {detail}", hint="run it again; if it recurs, run `kvtool verify`"
                )
                error.detail = detail
                raise error
            it.status()
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            it = None

    # -- reads ------------------------------------------------------------------------------------
    def _step_read(
        self, limit: int, reverse: bool, second: str | None, max_bytes: int | None = None
    ) -> list[Any]:
        """The one stepping read loop: up to `limit` keys (`second` None) or (key, `second`())
        pairs from the native iterator, stepping `reverse`-ward; a failed step raises. With
        `max_bytes`, up to the pair that brings them to that many bytes."""
        it: Any = self._require()
        valid = key = other = step = None
        try:
            valid, key = it.valid, it.key
            other = getattr(it, second) if second else None
            step = it.prev if reverse else it.next
            out: list[Any] = []
            append = out.append
            size = None if max_bytes is None else PAIR_SIZE[second or ""]
            budget, total = max_bytes or 0, 0
            for _ in range(limit):
                if not valid():
                    it.status()
                    break
                append(key() if other is None else (key(), other()))
                step()
                if size is not None:
                    total += size(out[-1])
                    if total >= budget:
                        break
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            it = valid = key = other = step = None
        return out

    def read_batch(
        self, limit: int, *, reverse: bool = False, max_bytes: int | None = None
    ) -> list[Record]:
        if self._past_bound:
            return []
        if self._use_bulk(reverse):
            records: list[Record] = self._bulk_read("items", limit, max_bytes)
        else:
            records = self._step_read(limit, reverse, "value", max_bytes)
        self._keep_within(records, _first)
        return records

    def read_entries(
        self, limit: int, *, reverse: bool = False, max_bytes: int | None = None
    ) -> list[Entry]:
        # rocksdict's columns come as a list of (name, value) tuples per record, a plain value
        # as [(b"", value)]: about 0.3 us more per record than items() (bench in the README).
        if self._past_bound:
            return []
        if not self._use_bulk(reverse):
            records = entries(self._step_read(limit, reverse, "columns", max_bytes))
        elif max_bytes is None:
            records = entries(self._bulk_read("entities", limit))
        else:  # made records as they are read
            records = self._bulk_read("entities", limit, max_bytes)
        self._keep_within(records, _first)
        return records

    def read_keys(self, limit: int, *, reverse: bool = False) -> list[bytes]:
        if self._past_bound:
            return []
        if self._use_bulk(reverse):
            keys: list[bytes] = self._bulk_read("keys", limit)
        else:
            keys = self._step_read(limit, reverse, None)
        self._keep_within(keys, bytes)  # bytes(key) is key
        return keys

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
