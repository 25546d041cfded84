"""The python-rocksdb binding's small handles: the bounded iterator, snapshots and write
batches."""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any

from kvtool.engine.base import EngineIterator, Record, Snapshot, WriteBatch
from kvtool.engine.pyrocksdb.native import cf_key, from_native, lacks

if TYPE_CHECKING:
    from kvtool.engine.pyrocksdb.database import PyRocksdbDatabase


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

    def _read(self, limit: int, reverse: bool, max_bytes: int | None = None) -> list[Any]:
        native: Any = self._require()
        try:
            items = islice(native[1] if reverse else native[0], max(limit, 0))
            if max_bytes is None:
                return list(items)
            out: list[Any] = []
            total = 0
            for key, value in items:  # each record measured before the next is read
                out.append((key, value))
                total += len(key[1] if self._named else key) + len(value)
                if total >= max_bytes:
                    break
            return out
        except Exception as exc:
            raise from_native(exc, context="reading") from None
        finally:
            native = None

    def read_batch(
        self, limit: int, *, reverse: bool = False, max_bytes: int | None = None
    ) -> list[Record]:
        raw = self._read(limit, reverse, max_bytes)
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
        self._require().put(cf_key(self._db._cf_handle(cf), key), value)

    def delete(self, key: bytes, cf: str | None = None) -> None:
        self._require().delete(cf_key(self._db._cf_handle(cf), key))

    def delete_range(self, start: bytes, end: bytes, cf: str | None = None) -> None:
        raise lacks("delete a range of keys")

    def __len__(self) -> int:
        return int(self._require().count())

    def size_in_bytes(self) -> int:
        return len(self._require().data())

    def clear(self) -> None:
        self._require().clear()
