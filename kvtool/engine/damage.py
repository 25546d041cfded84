"""What RocksDB's recovery leaves out of a database without an error: the checks behind `damage`.

Measured on rocksdict 0.3.29 (RocksDB 9.8): a MANIFEST cut short is read up to the cut with no
error in every WAL recovery mode and with paranoid_checks (a torn last record is how a crash
mid-write looks), so SST files that the lost edits added are simply not part of the recovered
database, and the first read-write open deletes them. Those files are what this module finds,
told apart from the files a crash leaves with nothing lost (engine/leftover.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kvtool.engine.ondisk import file_number, sst_format_version


@dataclass(frozen=True)
class UnreferencedFile:
    """An SST file in the database directory that the recovered version does not reference."""

    name: str
    size: int


@dataclass(frozen=True)
class Unreferenced:
    """The complete SST files outside the recovered version: `lost` hold records found nowhere
    else; `leftover` ones are what a crash left behind with nothing lost (engine/leftover.py)."""

    lost: list[UnreferencedFile] = field(default_factory=list)
    leftover: list[UnreferencedFile] = field(default_factory=list)


def unreferenced_tables(
    db_dir: Path, live: Iterable[str], *, older_manifests: Path | None = None
) -> Unreferenced:
    """The complete SST files of `db_dir` outside the recovered version `live`, lost or left.

    A flush or compaction that a crash interrupted mid-file leaves a partial file (no table
    footer yet): RocksDB deletes it and nothing is lost, so it is not listed. A complete file is
    a leftover when a recorded edit retired it (a compaction input, a dropped column family's
    file that the crashed owner did not get to delete) or when each of its records is in what
    recovery keeps (`leftover.loses_nothing`); else it is what a lost MANIFEST edit leaves
    behind. MANIFEST-* files other than the current one are read from `older_manifests`.
    """
    numbers = {file_number(name) for name in live}
    found: list[UnreferencedFile] = []
    for entry in os.scandir(db_dir):
        number = file_number(entry.name)
        if not entry.name.endswith(".sst") or number in numbers:
            continue
        if sst_format_version(Path(entry.path)) is None:
            continue
        found.append(UnreferencedFile(entry.name, entry.stat().st_size))
    out = Unreferenced()
    if not found:
        return out
    # Only now: the on-disk readers (and hashlib) are no part of an ordinary open's start-up.
    from kvtool.engine.leftover import loses_nothing, read_history

    history = read_history(db_dir, older_manifests)
    if history is not None and history.live() != numbers:
        history = None  # kvtool's reader and RocksDB disagree: nothing can be shown
    for f in sorted(found, key=lambda f: file_number(f.name)):
        left = history is not None and (
            file_number(f.name) in history.retired
            or loses_nothing(db_dir, db_dir / f.name, history)
        )
        (out.leftover if left else out.lost).append(f)
    return out


def manifest_name(db_dir: Path) -> str:
    """The MANIFEST that `db_dir/CURRENT` names ("MANIFEST" when it cannot be read)."""
    try:
        name = (db_dir / "CURRENT").read_text("ascii", "replace").strip()
    except OSError:
        return "MANIFEST"
    return name if name.startswith("MANIFEST-") and "/" not in name else "MANIFEST"


def describe_unreferenced(display: Path, manifest: str, files: list[UnreferencedFile]) -> str:
    """One sentence: which MANIFEST leaves out which files, and what that means."""
    listed = ", ".join(f"{display / f.name} ({f.size:,} bytes)" for f in files)
    what = "a complete SST file" if len(files) == 1 else f"{len(files)} complete SST files"
    return (
        f"{display / manifest} does not reference {what} in the directory, {listed}: the "
        "MANIFEST is damaged or cut short; reads would miss those records and a write would "
        "delete the files"
    )


def describe_leftover(display: Path, files: list[UnreferencedFile]) -> str:
    """One sentence: which SST files a crash left behind with nothing lost."""
    listed = ", ".join(f"{display / f.name} ({f.size:,} bytes)" for f in files)
    if len(files) == 1:
        return (
            f"{listed} is an SST file left by an interrupted flush/compaction; RocksDB "
            "removes it on the next read-write open"
        )
    return (
        f"{listed} are SST files left by interrupted flushes/compactions; RocksDB removes "
        "them on the next read-write open"
    )


class LeftoverNotes:
    """Says once per process, on the `kvtool` logger, which leftover SST files an open found
    (a command may open a database more than once). A forked range worker other than the first
    is `muted`, so a command says it once."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, tuple[str, ...]]] = set()
        self.muted = False

    def note(self, display: Path, files: list[UnreferencedFile]) -> None:
        key = (str(display), tuple(f.name for f in files))
        if self.muted or key in self.seen:
            return
        self.seen.add(key)
        logging.getLogger("kvtool").warning("note: %s", describe_leftover(display, files))


LEFTOVER_NOTES = LeftoverNotes()


def describe_damaged_wal(display: Path, wals: list[str], *, recoverable: bool = True) -> str:
    """One sentence: which WAL is damaged before its end, and what recovery would drop."""
    named = ", ".join(str(display / name) for name in wals)
    if not recoverable:
        return f"the WAL {named} is damaged before its end, and later WALs hold newer writes"
    return (
        f"the WAL {named} is damaged before its end: RocksDB's recovery stops at the damaged "
        "record and drops every later write in it"
    )
