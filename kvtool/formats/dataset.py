"""`Dataset`: a Parquet dataset directory an export writes (docs/design.md, Parquet datasets).

DIR holds part files `part-NNNNN.parquet` (or `prefix=<hex>/part-NNNNN.parquet` with
partitioning), each sorted by key and written a row group at a time; `_kvtool_manifest.json`
(the format, kvtool and RocksDB versions, the options, each run's sequence number, each part's
record count and key range, and the cursor after the last closed part); and `_SUCCESS`, written
last, only when the export is complete. A part is written as `NAME.inprogress` and renamed when
closed, and the manifest is rewritten (atomically) after every close, so at any moment DIR holds
complete part files and a manifest whose cursor resumes right after them: a stop closes the open
part; a kill leaves an `.inprogress` file that the resuming run deletes, with any part the
manifest does not list. A run with `--after CURSOR -o DIR` continues only when CURSOR is the
manifest's cursor and the options match, so a resumed dataset never holds a record twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kvtool.errors import StorageError, UsageError
from kvtool.formats.jsonl import Record
from kvtool.formats.parquet import PartSchema, PartWriter

MANIFEST = "_kvtool_manifest.json"
SUCCESS = "_SUCCESS"
FORMAT = "kvtool-parquet/1"
IN_PROGRESS = ".inprogress"
_PART = re.compile(r"^part-\d{5,}\.parquet(?:\.inprogress)?$")
# A row group is flushed when it holds this many bytes of Arrow data: memory holds about one.
ROW_GROUP_BYTES = 16 * 2**20
# A part file is closed and the next one begun past this many bytes of Arrow data (--part-size).
PART_BYTES = 256 * 2**20


@dataclass
class Part:
    """One closed part file: its path under DIR, its records, their size in memory as Arrow data
    (key and value bytes, and offsets), the file's size, and its key range (hex)."""

    path: str
    records: int
    arrow_bytes: int
    file_bytes: int
    first_key: str
    last_key: str


def partition_of(key: bytes, width: int) -> str:
    """The hive-style directory of `key`: `prefix=` and the hex of its first `width` bytes."""
    return "prefix=" + key[:width].hex()


class Dataset:
    """The dataset directory `root` being written (see the module)."""

    def __init__(
        self,
        root: Path,
        schema: PartSchema,
        *,
        options: Mapping[str, Any],
        meta: Mapping[str, Any],
        resume_from: str | None,
        cursor_after: Callable[[bytes], str | None],
        part_bytes: int = PART_BYTES,
        row_group_bytes: int = ROW_GROUP_BYTES,
        partition_by_prefix: int | None = None,
    ) -> None:
        self.root = root
        self._schema = schema
        self._cursor_after = cursor_after
        self._part_bytes = part_bytes
        self._row_group_bytes = min(row_group_bytes, part_bytes)
        self._width = partition_by_prefix
        self._created = False
        self._bytes_this_run = 0
        self.parts: list[Part] = []
        self._manifest: dict[str, Any] = {
            "format": FORMAT,
            **meta,
            "options": dict(options),
            "schema": schema.describe(),
            "runs": [],
            "parts": [],
            "records": 0,
            "state": "running",
            "cursor": resume_from,
        }
        self._open(resume_from)
        self._run: dict[str, Any] = {
            "after": resume_from,
            "sequence": meta.get("sequence"),
            "records": 0,
            "state": "running",
            "cursor": resume_from,
        }
        self._manifest["runs"].append(self._run)
        self._next = max((_number(p.path) + 1 for p in self.parts), default=0)
        self._writer: PartWriter | None = None
        self._partition: str | None = None
        # Record batches already in Arrow form (the Python records are gone), up to a row group.
        self._pending: list[Any] = []
        self._pending_rows = 0
        self._buffered = 0  # their Arrow bytes
        self._first_key = self._last_key = b""
        self._part: dict[str, Any] = {}
        self._save()

    # -- opening ----------------------------------------------------------------------------------
    def _open(self, resume_from: str | None) -> None:
        root = self.root
        if root.exists() and not root.is_dir():
            raise UsageError(f"{root} is not a directory: --format parquet writes a dataset")
        if not root.exists():
            try:
                root.mkdir()
            except FileNotFoundError:
                raise UsageError(f"the directory {root.parent} does not exist") from None
            except OSError as exc:
                raise StorageError(f"cannot create {root}: {exc.strerror}") from None
            self._created = True
            return
        entries = list(root.iterdir())
        if not entries:
            return
        manifest = root / MANIFEST
        if resume_from is None:
            raise UsageError(
                f"{root} is not empty: a new Parquet export needs a new or empty directory",
                hint="remove it, or resume a stopped export with --after CURSOR",
            )
        try:
            old = json.loads(manifest.read_text())
        except (OSError, ValueError):
            raise UsageError(
                f"{root} is not empty and holds no kvtool manifest to resume", hint="remove it"
            ) from None
        if old.get("cursor") is None:
            raise UsageError(f"{root} holds a complete export: nothing to resume")
        if old.get("cursor") != resume_from:
            raise UsageError(
                f"{root} stopped at another cursor than --after gives",
                hint=f"resume it with --after {old['cursor']}",
            )
        if old.get("options") != self._manifest["options"] or old.get("format") != FORMAT:
            raise UsageError(
                f"{root} was written with other options ({json.dumps(old.get('options'))})",
                hint="resume with the options it was written with",
            )
        self.parts = [Part(**p) for p in old["parts"]]
        self._manifest["runs"] = old["runs"]
        self._manifest["records"] = old["records"]
        listed = {p.path for p in self.parts}
        # What a killed run left: its `.inprogress` part, or a part it closed but had not yet
        # listed (its records come again after the manifest's cursor): ours by name, so removed.
        with contextlib.suppress(FileNotFoundError):
            (root / SUCCESS).unlink()
        for path in root.rglob("part-*"):
            relative = str(path.relative_to(root))
            if _PART.match(path.name) and relative not in listed:
                path.unlink()

    # -- writing ----------------------------------------------------------------------------------
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
                    self._close_part()
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
                self._close_part()

    def _flush(self) -> None:
        """Write the pending batches as one row group of the open part (opening one if none)."""
        if not self._pending:
            return
        if self._writer is None:
            name = f"part-{self._next:05d}.parquet"
            self._next += 1
            relative = f"{self._partition}/{name}" if self._partition else name
            path = self.root / relative
            path.parent.mkdir(exist_ok=True)
            with _storage(path):
                self._writer = PartWriter(path.with_name(name + IN_PROGRESS), self._schema)
            self._part = {
                "path": relative,
                "records": 0,
                "arrow_bytes": 0,
                "file_bytes": 0,
                "first_key": self._first_key.hex(),
            }
        with _storage(self.root / self._part["path"]):
            self._writer.write(self._pending)
        self._part["records"] += self._pending_rows
        self._part["arrow_bytes"] += self._buffered
        self._part["last_key"] = self._last_key.hex()
        self._pending = []
        self._pending_rows = self._buffered = 0

    def _close_part(self) -> None:
        """Close the open part (after its last row group) and list it in the manifest."""
        self._flush()
        if self._writer is None:
            return
        final = self.root / self._part["path"]
        with _storage(final):
            self._writer.close()
            os.replace(self._writer.path, final)
        self._writer = None
        self._part["file_bytes"] = final.stat().st_size
        part = Part(**self._part)
        self.parts.append(part)
        self._run["records"] += part.records
        self._bytes_this_run += part.file_bytes
        self._manifest["records"] += part.records
        self._manifest["cursor"] = self._run["cursor"] = self._cursor_after(
            bytes.fromhex(part.last_key)
        )
        self._save()

    def _save(self) -> None:
        """Rewrite the manifest atomically (a temp file renamed over it)."""
        self._manifest["parts"] = [asdict(p) for p in self.parts]
        temp = self.root / (MANIFEST + IN_PROGRESS)
        temp.write_text(json.dumps(self._manifest, indent=1) + "\n")
        os.replace(temp, self.root / MANIFEST)

    # -- ending -----------------------------------------------------------------------------------
    def end(self, *, state: str, cursor: str | None) -> None:
        """Close the open part and record how the run ended: "complete" writes `_SUCCESS` last;
        "stopped" keeps `cursor` for the resume."""
        self._close_part()
        if state == "complete" and not self.parts:
            self._empty_part()
        self._manifest["state"] = self._run["state"] = state
        self._manifest["cursor"] = self._run["cursor"] = cursor
        self._save()
        if state == "complete":
            (self.root / SUCCESS).write_bytes(b"")

    def _empty_part(self) -> None:
        """A part with the schema and no rows, for an empty range: engines refuse a glob that
        matches no file (DuckDB: "No files found"), but count an empty file as zero rows."""
        name = f"part-{self._next:05d}.parquet"
        self._next += 1
        final = self.root / name
        with _storage(final):
            writer = PartWriter(final.with_name(name + IN_PROGRESS), self._schema)
            writer.close()
            os.replace(writer.path, final)
        self.parts.append(Part(name, 0, 0, final.stat().st_size, "", ""))

    def abandon(self) -> None:
        """A failed run: drop the open part; the closed ones stay, resumable from the manifest's
        cursor (a directory this run created and left no part in is removed)."""
        if self._writer is not None:
            self._writer.discard()
            with contextlib.suppress(OSError):
                self._writer.path.unlink()
            self._writer = None
        if self._created and not self.parts:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def bytes_written(self) -> int:
        """The size of the part files this run closed."""
        return self._bytes_this_run


@contextlib.contextmanager
def _storage(path: Path) -> Iterator[None]:
    """An I/O error writing `path` (a full disk) as a StorageError (exit 74) naming it."""
    try:
        yield
    except OSError as exc:
        raise StorageError(f"writing {path}: {exc.strerror or exc}") from None


def _number(relative: str) -> int:
    return int(relative.rsplit("part-", 1)[1].split(".", 1)[0])


def dataset_files(root: Path) -> list[Path]:
    """The part files of the dataset at `root`, in the manifest's order when there is one (key
    order), else every `*.parquet` under it by path (names starting with _ or . are not data)."""
    manifest = root / MANIFEST
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        listed = json.loads(manifest.read_text())["parts"]
        return [root / p["path"] for p in listed]
    return sorted(
        path
        for path in root.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in path.relative_to(root).parts)
    )
