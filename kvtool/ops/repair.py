"""`repair`: RocksDB's repair made safe: refused while another process holds the database, a
copy of the directory first (or an explicit choice not to), and a report of what it found and
what it changed."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvtool.engine.ondisk import missing_parts
from kvtool.errors import DatabaseBusyError, DatabaseNotFoundError, UsageError
from kvtool.ondisk.coding import FormatError
from kvtool.ondisk.manifest import current_manifest, read_edits, replay

# Immutable once written: hard-linked into a backup when the filesystem allows.
_IMMUTABLE = (".sst", ".blob")


@dataclass
class DirState:
    files: dict[str, int]  # name -> size, lost/ included as lost/NAME
    manifest: str | None
    live: dict[str, list[int]] = field(default_factory=dict)  # column family -> SST numbers
    last_sequence: int | None = None
    problem: str | None = None  # why the MANIFEST could not be read


@dataclass
class RepairReport:
    path: Path
    backup: Path | None
    before: DirState
    after: DirState

    def as_dict(self) -> dict[str, Any]:
        before, after = self.before.files, self.after.files
        return {
            "path": str(self.path),
            "backup": str(self.backup) if self.backup else None,
            "before": _state_dict(self.before),
            "after": _state_dict(self.after),
            "added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)),
            "changed": sorted(n for n in set(before) & set(after) if before[n] != after[n]),
            "lost": sorted(n for n in after if n.startswith("lost/")),
        }


def _state_dict(s: DirState) -> dict[str, Any]:
    return {
        "manifest": s.manifest,
        "manifest_problem": s.problem,
        "sst_files": sum(1 for n in s.files if n.endswith(".sst") and "/" not in n),
        "wal_files": sum(1 for n in s.files if n.endswith(".log") and "/" not in n),
        "live_sst_files": {cf: len(v) for cf, v in s.live.items()},
        "last_sequence": s.last_sequence,
    }


def dir_state(path: Path) -> DirState:
    files: dict[str, int] = {}
    for entry in os.scandir(path):
        if entry.is_file(follow_symlinks=False):
            files[entry.name] = entry.stat().st_size
        elif entry.is_dir(follow_symlinks=False):
            for root, _dirs, names in os.walk(entry.path):
                for name in names:
                    full = Path(root) / name
                    files[str(full.relative_to(path))] = full.stat().st_size
    state = DirState(files, None)
    try:
        manifest = current_manifest(path)
        state.manifest = manifest.name
        version, damage = replay(read_edits(manifest))
        state.last_sequence = version.last_sequence
        for cf in version.column_families.values():
            state.live[cf.name] = sorted(n for files in cf.levels.values() for n in files)
        if damage:
            state.problem = f"{damage[0].reason} at byte {damage[0].offset}"
    except (OSError, FormatError) as exc:
        state.problem = str(exc)
    return state


def backup_directory(src: Path, dest: Path) -> int:
    """Copy the database directory to `dest` (new, or empty): SST and blob files hard-linked
    when on the same filesystem (they are never modified), everything else copied."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"--backup {dest} exists and is not an empty directory")
    if ".." in missing_parts(dest):
        # `OTHER/new/..` is OTHER once `new` is made: a directory never checked above.
        raise UsageError(
            f"--backup {dest} goes up ('..') past a directory that does not exist",
            hint="give the backup's path without '..'",
        )
    if dest.resolve().is_relative_to(src.resolve()):
        raise UsageError("--backup must be outside the database directory")
    dest.mkdir(parents=True, exist_ok=True)
    copied = 0
    for root, _dirs, names in os.walk(src):
        rel = Path(root).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in names:
            source, target = Path(root) / name, dest / rel / name
            if name.endswith(_IMMUTABLE):
                try:
                    os.link(source, target)
                    copied += 1
                    continue
                except OSError:
                    pass
            shutil.copy2(source, target)
            copied += 1
    return copied


def repair_database(path: Path, backup: Path | None) -> RepairReport:
    from kvtool.engine.lockfile import lock_holder
    from kvtool.engine.repair import repair

    if not path.is_dir():
        raise DatabaseNotFoundError(f"{path}: no such database directory")
    if (
        not (path / "CURRENT").exists()
        and not any(path.glob("*.sst"))
        and not any(path.glob("*.log"))
    ):
        raise DatabaseNotFoundError(f"{path}: not a RocksDB database (no CURRENT, SST or WAL file)")
    holder = lock_holder(path)
    if holder is not None:
        raise DatabaseBusyError(
            f"{path} is in use by process {holder}",
            hint="stop its owner first: repair rewrites the MANIFEST",
        )
    if backup is not None:
        backup_directory(path, backup)
    before = dir_state(path)
    repair(path)
    return RepairReport(path, backup, before, dir_state(path))
