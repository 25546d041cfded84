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

An export of several column families (kvtool.ops.export_parquet_cfs) writes them one after the
other into the same directory, each part file holding one (its `cf` column and manifest entry
name it), and the manifest's `column_families` gives each one's range, state (complete;
partial: begun when the run stopped; pending: not begun), records, parts and the sequence
numbers of the runs that read it. The cursor names its column family, so a resume knows which
are done.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kvtool.errors import StorageError, UsageError
from kvtool.formats.jsonl import Record
from kvtool.formats.output_guards import other_database
from kvtool.formats.parquet import PartSchema, PartWriter
from kvtool.formats.parts import (
    IN_PROGRESS,
    PART_BYTES,
    ROW_GROUP_BYTES,
    Part,
    PartSeries,
    storage,
)

MANIFEST = "_kvtool_manifest.json"
SUCCESS = "_SUCCESS"
FORMAT = "kvtool-parquet/1"
# Part files this module or a range worker names: a resume deletes those the manifest does not list.
_PART = re.compile(r"^(?:part|chunk)-[\d-]+\.parquet(?:\.inprogress)?$")


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
        column_families: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.root = root
        self._schema = schema
        self._cursor_after = cursor_after
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
        if column_families is not None:
            self._manifest["column_families"] = [
                {**cf, "state": "pending", "records": 0, "parts": 0, "sequences": []}
                for cf in column_families
            ]
        self._cf: dict[str, Any] | None = None  # the column family being written
        self._original: str | None = None  # the manifest as this run found it
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
        self._series = PartSeries(
            root,
            schema,
            name=self._new_name,
            closed=self.add,
            part_bytes=part_bytes,
            row_group_bytes=row_group_bytes,
            partition_by_prefix=partition_by_prefix,
        )
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
            self._original = manifest.read_text()
            old = json.loads(self._original)
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
        mismatch = other_database(old, self._manifest.get("database_identity"))
        if mismatch:
            raise UsageError(
                f"{root} {mismatch}: its records after the cursor would join the dataset as the "
                "rest",
                hint="resume with the database the export began with, or export to a new directory",
            )
        if old.get("options") != self._manifest["options"] or old.get("format") != FORMAT:
            raise UsageError(
                f"{root} was written with other options ({json.dumps(old.get('options'))})",
                hint="resume with the options it was written with",
            )
        self.parts = [Part(**p) for p in old["parts"]]
        self._manifest["runs"] = old["runs"]
        self._manifest["records"] = old["records"]
        if "column_families" in self._manifest:
            self._manifest["column_families"] = old["column_families"]
        listed = {p.path for p in self.parts}
        # What a killed run left: its `.inprogress` part, or a part it closed but had not yet
        # listed (its records come again after the manifest's cursor): ours by name, so removed.
        with contextlib.suppress(FileNotFoundError):
            (root / SUCCESS).unlink()
        for path in [*root.rglob("part-*"), *root.rglob("chunk-*")]:
            relative = str(path.relative_to(root))
            if _PART.match(path.name) and relative not in listed:
                path.unlink()

    # -- writing ----------------------------------------------------------------------------------
    def _new_name(self) -> str:
        name = f"part-{self._next:05d}.parquet"
        self._next += 1
        return name

    def write(self, batch: Sequence[Record]) -> None:
        """Append a batch (in key order): see `PartSeries.write`."""
        self._series.write(batch)

    def begin_cf(self, name: str, cursor_after: Callable[[bytes], str | None]) -> None:
        """Write column family `name` from now on (its cursors by `cursor_after`): closes the
        open part (a part holds one column family); the one written before is complete."""
        self._series.close()
        if self._cf is not None:
            self._cf["state"] = "complete"
        self._cursor_after = cursor_after
        self._schema.cf = name
        self._cf = next(c for c in self._manifest["column_families"] if c["name"] == name)
        self._cf["state"] = "partial"
        sequence = self._run["sequence"]
        if sequence is not None and sequence not in self._cf["sequences"]:
            self._cf["sequences"].append(sequence)
        self._save()

    def add(self, part: Part) -> None:
        """List a closed part (in key order) in the manifest; its last key is the new cursor."""
        self.parts.append(part)
        if self._cf is not None:
            self._cf["records"] += part.records
            self._cf["parts"] += 1
        self._run["records"] += part.records
        self._bytes_this_run += part.file_bytes
        self._manifest["records"] += part.records
        self._manifest["cursor"] = self._run["cursor"] = self._cursor_after(
            bytes.fromhex(part.last_key)
        )
        self._save()

    def adopt(self, path: Path, part: Part) -> None:
        """List `part`, written by a range worker as `path` (under root), as the next part."""
        name = self._new_name()
        relative = str(Path(part.path).with_name(name))
        with storage(self.root / relative):
            os.replace(path, self.root / relative)
        part.path = relative
        self.add(part)

    def _save(self) -> None:
        """Rewrite the manifest atomically (a temp file renamed over it)."""
        self._manifest["parts"] = [_listed(p) for p in self.parts]
        temp = self.root / (MANIFEST + IN_PROGRESS)
        temp.write_text(json.dumps(self._manifest, indent=1) + "\n")
        os.replace(temp, self.root / MANIFEST)

    # -- ending -----------------------------------------------------------------------------------
    def end(self, *, state: str, cursor: str | None) -> None:
        """Close the open part and record how the run ended: "complete" writes `_SUCCESS` last;
        "stopped" keeps `cursor` for the resume."""
        self._series.close()
        if state != "complete" and not self.parts and cursor is None:
            self.withdraw()  # stopped before its first record: run the same command again
            return
        if state == "complete" and not self.parts:
            self._empty_part()
        self._manifest["state"] = self._run["state"] = state
        self._manifest["cursor"] = self._run["cursor"] = cursor
        if state == "complete":
            for cf in self._manifest.get("column_families", ()):
                cf["state"] = "complete"
        self._save()
        if state == "complete":
            (self.root / SUCCESS).write_bytes(b"")

    def _empty_part(self) -> None:
        """A part with the schema and no rows, for an empty range: engines refuse a glob that
        matches no file (DuckDB: "No files found"), but count an empty file as zero rows."""
        name = f"part-{self._next:05d}.parquet"
        self._next += 1
        final = self.root / name
        with storage(final):
            writer = PartWriter(final.with_name(name + IN_PROGRESS), self._schema)
            writer.close()
            os.replace(writer.path, final)
        self.parts.append(Part(name, 0, 0, final.stat().st_size, "", ""))

    def note_sequence(self, sequence: int) -> None:
        """The sequence number of this run's view, once range workers have agreed on one."""
        self._manifest["sequence"] = self._run["sequence"] = sequence
        self._save()

    def withdraw(self) -> None:
        """Undo the opening (no part was written): the directory as this run found it."""
        if self._created:
            shutil.rmtree(self.root, ignore_errors=True)
        elif self._original is None:
            with contextlib.suppress(OSError):
                (self.root / MANIFEST).unlink()
        else:
            (self.root / MANIFEST).write_text(self._original)

    def abandon(self) -> None:
        """A failed run: drop the open part; the closed ones stay, resumable from the manifest's
        cursor (without any, the directory is left as this run found it)."""
        self._series.discard()
        if not self.parts:
            self.withdraw()

    def close_part(self) -> str | None:
        """Close the open part: the cursor is then right after the last record written."""
        self._series.close()
        cursor: str | None = self._manifest["cursor"]
        return cursor

    @property
    def bytes_written(self) -> int:
        """The size of the part files this run closed."""
        return self._bytes_this_run


def _listed(part: Part) -> dict[str, Any]:
    """A part as the manifest lists it (`cf` only in an export of several column families)."""
    listed = asdict(part)
    if listed["cf"] is None:
        del listed["cf"]
    return listed


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
