"""The engine interface: what every storage binding offers the layers above, in bytes and names.

Nothing above `kvtool/engine/` sees a binding's type. A binding implements these classes; the
rocksdict one is the package `kvtool.engine.rdict`; each engine is a name in `EngineName` and a line
of `ENGINES` (kvtool/engine/__init__.py).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kvtool.engine.handles import Handle
from kvtool.engine.keyorder import Bounds, KeyOrder
from kvtool.errors import UnavailableError, UsageError

if TYPE_CHECKING:
    from kvtool.engine.format_safety import Need

DEFAULT_CF = "default"

Record = tuple[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Entity:
    """The columns of a wide-column entity (RocksDB >= 8), `(name, value)` pairs in name order.

    Reads give one only where a plain value would lose something: an entity holding just the
    default column (name b"") reads exactly like the plain value it carries, and comes back as
    those bytes. `len()` is the bytes of its names and values, so byte counts and paces treat
    an entity as the data it is.
    """

    columns: tuple[tuple[bytes, bytes], ...]

    def __len__(self) -> int:
        return sum(len(name) + len(value) for name, value in self.columns)


# A record as a column-aware read gives it: the value is bytes, or the entity's columns.
Entry = tuple[bytes, bytes | Entity]


class OpenMode(enum.Enum):
    """How a database is opened."""

    READ_ONLY = "read-only"  # a static view (WAL replayed in memory); writes nothing in the DB dir
    READ_WRITE = "read-write"  # takes the LOCK; uses the database's own options
    SECONDARY = "secondary"  # follows a live writer; `catch_up()` sees its newer writes


class Bottommost(enum.Enum):
    """What a manual compaction does with the bottommost level."""

    SKIP = "skip"
    IF_NEEDED = "if-needed"
    FORCE = "force"


@dataclass(frozen=True)
class LiveFile:
    """One SST file of the current version."""

    name: str
    column_family: str | None
    level: int
    size: int
    entries: int
    deletions: int
    smallest_key: bytes
    largest_key: bytes


class EngineIterator(Handle, ABC):
    """A positioned iterator over one column family; reads come in batches."""

    kind = "iterator"

    @abstractmethod
    def seek_to_first(self) -> None: ...

    @abstractmethod
    def seek_to_last(self) -> None: ...

    @abstractmethod
    def seek(self, key: bytes) -> None:
        """Position at the first key >= `key`."""

    @abstractmethod
    def seek_for_prev(self, key: bytes) -> None:
        """Position at the last key <= `key`."""

    @abstractmethod
    def read_batch(
        self, limit: int, *, reverse: bool = False, max_bytes: int | None = None
    ) -> list[Record]:
        """Up to `limit` records from the current position, stepping forward (or back); with
        `max_bytes`, up to the one that brings their key and value bytes to it (each measured
        before the next is read). An empty list is the end of the range. A corrupt block or I/O
        error raises `CorruptionError`/`StorageError`: a failed read is never taken for the end.
        """

    def read_entries(
        self, limit: int, *, reverse: bool = False, max_bytes: int | None = None
    ) -> list[Entry]:
        """Like `read_batch`, with every column of a wide-column entity (see `Entity`).

        Bindings without entities read plain records; the rocksdict one reads columns, which
        costs more than `read_batch`: only reads that must carry every column use it.
        """
        return list(self.read_batch(limit, reverse=reverse, max_bytes=max_bytes))

    @abstractmethod
    def read_keys(self, limit: int, *, reverse: bool = False) -> list[bytes]:
        """Like `read_batch`, keys only (values are not copied out)."""

    @abstractmethod
    def count(self, limit: int, *, reverse: bool = False) -> int:
        """Step over up to `limit` records without copying them; 0 means the end."""


class Snapshot(Handle, ABC):
    """A point-in-time view for point reads.

    Iterators do not take one: rocksdict 0.3.29's `Snapshot.iter()` ignores the snapshot. Each
    iterator pins its own implicit snapshot, and a READ_ONLY open is a static view as a whole.
    """

    kind = "snapshot"

    @abstractmethod
    def get(self, key: bytes, cf: str | None = None) -> bytes | None: ...


class WriteBatch(Handle, ABC):
    """Writes applied atomically by `Database.write()`."""

    kind = "batch"

    @abstractmethod
    def put(self, key: bytes, value: bytes, cf: str | None = None) -> None: ...

    def put_entity(self, key: bytes, entity: Entity, cf: str | None = None) -> None:
        """Write a wide-column entity (names unique; any order)."""
        from kvtool.errors import UnavailableError

        raise UnavailableError("this engine cannot write wide-column entities")

    @abstractmethod
    def delete(self, key: bytes, cf: str | None = None) -> None: ...

    @abstractmethod
    def delete_range(self, start: bytes, end: bytes, cf: str | None = None) -> None: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def size_in_bytes(self) -> int: ...

    @abstractmethod
    def clear(self) -> None: ...


class SstWriter(Handle, ABC):
    """Writes one sorted SST file for `Database.ingest()`; keys must be added in order."""

    kind = "sst-writer"

    @abstractmethod
    def put(self, key: bytes, value: bytes) -> None: ...

    def put_many(self, records: Iterable[Record]) -> None:
        """`put` each record, in order; bindings override it to save a call per record."""
        for key, value in records:
            self.put(key, value)

    @abstractmethod
    def finish(self) -> int:
        """Close the file; returns its size in bytes."""


class Database(Handle, ABC):
    """An open database. Closing it releases, in order, its iterators, batches and snapshots."""

    kind = "db"

    path: Path
    mode: OpenMode
    # What the open found that RocksDB's recovery drops (files the MANIFEST does not reference,
    # a WAL damaged before its end), one sentence each. An open raises instead of returning a
    # database with damage unless it was asked to allow data loss.
    damage: tuple[str, ...] = ()

    def _writable(self) -> Any:
        """The native database, for an operation that writes (a usage error on other modes)."""
        if self.mode is not OpenMode.READ_WRITE:
            raise UsageError(f"database opened {self.mode.value}; this operation writes")
        return self._require()

    @property
    @abstractmethod
    def column_families(self) -> list[str]: ...

    def close(self) -> None:
        self.release()

    def __enter__(self) -> Database:
        return self

    # reading
    @abstractmethod
    def get(self, key: bytes, cf: str | None = None) -> bytes | None: ...

    @abstractmethod
    def snapshot(self) -> Snapshot: ...

    @abstractmethod
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
        """An iterator bounded to [lower, upper) in the column family's key order (`lower_open`
        leaves `lower` out, `upper_closed` takes `upper` in); the caller positions it with a seek.

        It reads one consistent point in time: the moment it was created, and in total order:
        a prefix extractor's bloom filters never skip a file (a seek that used them would miss
        every file whose filter rejects the seek key's prefix).
        """

    @abstractmethod
    def key_order(self, cf: str | None = None) -> KeyOrder:
        """The order of the column family's comparator (kvtool.engine.keyorder)."""

    def bounded(self, cf: str | None, bounds: Bounds) -> EngineIterator:
        """`iterator` over `bounds` (in the column family's key order)."""
        return self.iterator(
            cf,
            lower=bounds.lower,
            upper=bounds.upper,
            lower_open=bounds.lower_open,
            upper_closed=bounds.upper_closed,
        )

    @abstractmethod
    def property(self, name: str, cf: str | None = None) -> str | None: ...

    @abstractmethod
    def live_files(self) -> list[LiveFile]: ...

    def blob_file_after(self, cf: str | None, after: bytes | None) -> str | None:
        """The blob file (`000012.blob`) holding the value of the first record after `after`
        (from the first record when None), when the engine can tell; for naming damage."""
        return None

    @abstractmethod
    def sequence_number(self) -> int:
        """The sequence number of the last write this view holds.

        Every write raises it, so two static views of a path with the same number (and the same
        files) hold the same data: separate READ_ONLY opens can then share one export.
        """

    def catch_up(self) -> None:
        """SECONDARY mode: see the writer's newer data. Other modes see what they opened."""

    # writing (READ_WRITE only)
    @abstractmethod
    def put(self, key: bytes, value: bytes, cf: str | None = None) -> None: ...

    @abstractmethod
    def delete(self, key: bytes, cf: str | None = None) -> None: ...

    @abstractmethod
    def delete_range(self, start: bytes, end: bytes, cf: str | None = None) -> None: ...

    @abstractmethod
    def write_batch(self) -> WriteBatch: ...

    @abstractmethod
    def write(self, batch: WriteBatch, *, sync: bool = False) -> None: ...

    @abstractmethod
    def flush(self, cf: str | None = None) -> None: ...

    @abstractmethod
    def create_column_family(self, name: str) -> None: ...

    @abstractmethod
    def drop_column_family(self, name: str) -> None: ...

    @abstractmethod
    def compact_range(
        self,
        start: bytes | None,
        end: bytes | None,
        cf: str | None = None,
        *,
        bottommost: Bottommost = Bottommost.IF_NEEDED,
    ) -> None: ...

    @abstractmethod
    def cancel_background_work(self, wait: bool = True) -> None: ...

    @abstractmethod
    def checkpoint(self, dest: Path) -> None: ...

    @abstractmethod
    def sst_writer(self, path: Path, cf: str | None = None) -> SstWriter: ...

    @abstractmethod
    def ingest(self, paths: Sequence[Path], cf: str | None = None, *, move: bool = False) -> None:
        """Add SST files written by `sst_writer`; `move` hard-links them (the caller's files
        are then owned by the database) instead of copying, falling back to a copy."""

    def batches(
        self,
        cf: str | None = None,
        *,
        lower: bytes | None = None,
        upper: bytes | None = None,
        reverse: bool = False,
        after: bytes | None = None,
        batch_size: int = 1024,
    ) -> Iterator[list[Record]]:
        """Records of [lower, upper) in batches, strictly after `after` when given.

        The iterator is released when the generator ends, is closed, or the database closes,
        whichever comes first; an abandoned generator cannot keep the database open.
        """
        with self.iterator(cf, lower=lower, upper=upper) as it:
            position(it, reverse=reverse, after=after)
            while batch := it.read_batch(batch_size, reverse=reverse):
                yield batch


def position(it: EngineIterator, *, reverse: bool, after: bytes | None) -> None:
    """Seek to the first record of a scan, strictly after `after` in the scan's direction."""
    if after is None:
        it.seek_to_last() if reverse else it.seek_to_first()
        return
    # One step past `after` is done by the first read: skip the boundary record if it is `after`.
    seek = it.seek_for_prev if reverse else it.seek
    seek(after)
    first = it.read_keys(1, reverse=reverse)
    if first and first[0] != after:
        seek(first[0])  # `after` itself is gone: step back so the record passed is read again


class Engine(ABC):
    """A binding: opens databases and answers questions about paths."""

    name: str

    @abstractmethod
    def open(
        self,
        path: Path,
        mode: OpenMode,
        *,
        create: bool = False,
        force: bool = False,
        io_rate: int | None = None,
        allow_data_loss: bool = False,
    ) -> Database: ...

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Binding and RocksDB versions, for `kvtool --version`: the binding's under the engine's
        `name`, RocksDB's under "rocksdb"."""

    def describe(self) -> str:
        """The engine's own name and versions, e.g. "rocksdict 0.3.29, RocksDB 9.8.4"."""
        versions = self.versions()
        own = versions.get(self.name)
        return (
            f"{self.name}{' ' + own if own else ''}, RocksDB {versions.get('rocksdb', 'unknown')}"
        )

    def repair(self, path: Path) -> None:
        """RocksDB's repair of `path` with its own options (nobody holds its LOCK); else 69."""
        raise UnavailableError(f"the {self.name} engine cannot repair a database")

    def unmet_needs(self, path: Path) -> tuple[Need, ...]:
        """What `path`'s OPTIONS file names that this engine cannot load (docs/design.md, Engine
        facts 13), checked before any open; empty when `path` is not a database."""
        return ()
