"""What RocksDB's recovery leaves out of a database without an error: the checks behind `damage`.

Measured on rocksdict 0.3.29 (RocksDB 9.8): a MANIFEST cut short is read up to the cut with no
error in every WAL recovery mode and with paranoid_checks (a torn last record is how a crash
mid-write looks), so SST files that the lost edits added are simply not part of the recovered
database, and the first read-write open deletes them. Those files are what this module finds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kvtool.engine.ondisk import file_number, sst_format_version


@dataclass(frozen=True)
class UnreferencedFile:
    """An SST file in the database directory that the recovered version does not reference."""

    name: str
    size: int


def unreferenced_tables(db_dir: Path, live: Iterable[str]) -> list[UnreferencedFile]:
    """Complete SST files of `db_dir` newer than every file of the recovered version `live`.

    Not every file outside the version is lost data. A flush or compaction that a crash
    interrupted leaves a partial file (no table footer yet), and obsolete inputs that a crashed
    owner did not get to delete are older than the compaction output that replaced them; RocksDB
    deletes both, losing nothing. A complete file newer than everything the version holds is
    what a lost MANIFEST edit leaves behind.
    """
    numbers = {file_number(name) for name in live}
    newest = max(numbers, default=-1)
    out: list[UnreferencedFile] = []
    for entry in os.scandir(db_dir):
        number = file_number(entry.name)
        if not entry.name.endswith(".sst") or number in numbers or number <= newest:
            continue
        if sst_format_version(Path(entry.path)) is None:
            continue
        out.append(UnreferencedFile(entry.name, entry.stat().st_size))
    return sorted(out, key=lambda f: file_number(f.name))


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


def describe_damaged_wal(display: Path, wals: list[str], *, recoverable: bool = True) -> str:
    """One sentence: which WAL is damaged before its end, and what recovery would drop."""
    named = ", ".join(str(display / name) for name in wals)
    if not recoverable:
        return f"the WAL {named} is damaged before its end, and later WALs hold newer writes"
    return (
        f"the WAL {named} is damaged before its end: RocksDB's recovery stops at the damaged "
        "record and drops every later write in it"
    )
