"""`PartSeries`: records in key order written as a series of Parquet part files, a row group at
a time, each file closed past a size (or at a partition change) and renamed from `.inprogress`
when complete; the one writer of both a one-process export and each range worker's chunk."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvtool.errors import StorageError
from kvtool.formats.jsonl import Record
from kvtool.formats.parquet import PartSchema, PartWriter

IN_PROGRESS = ".inprogress"
# A row group is flushed when it holds this many bytes of Arrow data: memory holds about one.
ROW_GROUP_BYTES = 16 * 2**20
# Row groups of rows this large on average are written before the next is read (see _flush).
HUGE_ROW_BYTES = 2**20
# A part file is closed and the next one begun past this many bytes of Arrow data (--part-size).
PART_BYTES = 256 * 2**20


@dataclass
class Part:
    """One closed part file: its path under DIR, its records, their size in memory as Arrow data
    (key and value bytes, and offsets), the file's size, and its key range (hex); in an export
    of several column families, the one whose records it holds."""

    path: str
    records: int
    arrow_bytes: int
    file_bytes: int
    first_key: str
    last_key: str
    cf: str | None = None


def partition_of(key: bytes, width: int) -> str:
    """The hive-style directory of `key`: `prefix=` and the hex of its first `width` bytes."""
    return "prefix=" + key[:width].hex()


@contextlib.contextmanager
def storage(path: Path) -> Iterator[None]:
    """An I/O error writing `path` (a full disk) as a StorageError (exit 74) naming it."""
    try:
        yield
    except OSError as exc:
        raise StorageError(f"writing {path}: {exc.strerror or exc}") from None


class PartSeries:
    """Part files under `root`, named by `name()` (called once a part), each handed to
    `closed` when complete."""

    def __init__(
        self,
        root: Path,
        schema: PartSchema,
        *,
        name: Callable[[], str],
        closed: Callable[[Part], None],
        part_bytes: int = PART_BYTES,
        row_group_bytes: int = ROW_GROUP_BYTES,
        partition_by_prefix: int | None = None,
    ) -> None:
        self.root = root
        self._schema = schema
        self._name = name
        self._closed = closed
        self._part_bytes = part_bytes
        self._row_group_bytes = min(row_group_bytes, part_bytes)
        self._width = partition_by_prefix
        self._writer: PartWriter | None = None
        self._partition: str | None = None
        # Record batches already in Arrow form (the Python records are gone), up to a row group.
        self._pending: list[Any] = []
        self._pending_rows = 0
        self._buffered = 0  # their Arrow bytes
        self._first_key = self._last_key = b""
        self._part: dict[str, Any] = {}

    # ----------------------------------------------------------------------------------
    def write(self, batch: Sequence[Record]) -> None:
        """Append a batch (in key order) to the open part, flushing row groups and starting new
        parts (or partitions) as they fill."""
        if self._width is None:
            self._append(batch)
            return
        width = self._width
        start = 0
        for i in range(1, len(batch) + 1):
            if i == len(batch) or batch[i][0][:width] != batch[start][0][:width]:
                run = batch[start:i]
                partition = partition_of(run[0][0], width)
                if partition != self._partition:
                    self.close()
                    self._partition = partition
                self._append(run)
                start = i

    def _append(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        arrow = self._schema.batch(batch)
        size = arrow.nbytes  # the data, plus 4 bytes of offsets a cell: cheaper than len() each
        if not self._pending:
            self._first_key = batch[0][0]
        self._pending.append(arrow)
        self._last_key = batch[-1][0]
        self._pending_rows += len(batch)
        self._buffered += size
        if self._buffered >= self._row_group_bytes:
            self._flush()
            if self._part.get("arrow_bytes", 0) >= self._part_bytes:
                self.close()

    def _flush(self) -> None:
        """Write the pending batches as one row group of the open part (opening one if none)."""
        if not self._pending:
            return
        if self._writer is None:
            name = self._name()
            relative = f"{self._partition}/{name}" if self._partition else name
            path = self.root / relative
            path.parent.mkdir(exist_ok=True)
            with storage(path):
                self._writer = PartWriter(path.with_name(name + IN_PROGRESS), self._schema)
            self._part = {
                "path": relative,
                "records": 0,
                "arrow_bytes": 0,
                "file_bytes": 0,
                "first_key": self._first_key.hex(),
            }
            if self._schema.cf_column:
                self._part["cf"] = self._schema.cf
        # Huge values (a MiB a row and more) are encoded before the next are read: overlapped,
        # the read and the encoder (which holds the page and its compressed form too) would
        # each hold several copies of the largest value at once.
        huge = self._buffered >= self._pending_rows * HUGE_ROW_BYTES
        with storage(self.root / self._part["path"]):
            self._writer.write(self._pending, wait=huge)
        self._part["records"] += self._pending_rows
        self._part["arrow_bytes"] += self._buffered
        self._part["last_key"] = self._last_key.hex()
        self._pending = []
        self._pending_rows = self._buffered = 0

    def close(self) -> None:
        """Close the open part (after its last row group) and hand it to `closed`."""
        self._flush()
        if self._writer is None:
            return
        final = self.root / self._part["path"]
        with storage(final):
            self._writer.close()
            os.replace(self._writer.path, final)
        self._writer = None
        self._part["file_bytes"] = final.stat().st_size
        self._closed(Part(**self._part))

    def discard(self) -> None:
        """A failed or killed run: drop the open part (closed ones are the caller's)."""
        self._pending = []
        if self._writer is not None:
            self._writer.discard()
            with contextlib.suppress(OSError):
                self._writer.path.unlink()
            self._writer = None
