"""The rocksdict binding's small handles: snapshots, write batches and SST writers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kvtool.engine.base import (
    DEFAULT_CF,
    Entity,
    Record,
    Snapshot,
    SstWriter,
    WriteBatch,
)
from kvtool.engine.rdict.native import from_native
from kvtool.errors import (
    UsageError,
)

if TYPE_CHECKING:
    from kvtool.engine.rdict.database import RdictDatabase


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
