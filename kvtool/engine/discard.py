"""Undoing a database's creation: what a write that created a database (`import --create`) removes
when it fails before its first commit, and only when the directory holds nothing but that empty
database."""

from __future__ import annotations

import errno
import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path

# What RocksDB (and rocksdict) write into a database directory that holds no data yet, temp
# files included; anything else there is not this run's, and the directory is kept.
_EMPTY_DB_FILE = re.compile(
    r"CURRENT|IDENTITY|LOCK|LOG(\.old\.\d+)?|(MANIFEST|OPTIONS)-\d+|\d+\.log|"
    r"[A-Za-z0-9_.-]+\.dbtmp|rocksdict-config\.json"
)


# A listing that fails so says the open created nothing at the path.
_NOTHING_THERE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG})


@dataclass(frozen=True)
class Discarded:
    """What `NewDatabase.discard` did: `removed` the database, or kept it (`kept_because`), or
    found none (neither: the open failed before RocksDB created it)."""

    removed: bool = False
    kept_because: str | None = None


@dataclass(frozen=True)
class NewDatabase:
    """A database about to be created at `path`: `top` is the outermost directory of `path` that
    did not exist (`path` itself, or an ancestor RocksDB creates with it), None when `path` was
    an existing empty directory (kept, only emptied, by `discard`)."""

    path: Path
    top: Path | None

    @classmethod
    def before_create(cls, path: Path) -> NewDatabase | None:
        """What a create at `path` would make, looked at before the open; None when anything is
        there already (a database, a file, a directory with entries, a symlink)."""
        path = path.absolute()
        if os.path.lexists(path):
            if path.is_symlink() or not path.is_dir():
                return None
            try:
                if any(path.iterdir()):
                    return None
            except OSError:
                return None
            return cls(path, None)
        top = path
        while top.parent != top and not os.path.lexists(top.parent):
            top = top.parent
        return cls(path, top)

    def discard(self) -> Discarded:
        """Remove the database this process created at `path`, once every handle on it is closed:
        its files, then the directories created for it (`top`, each only if empty). Kept when
        another process holds its LOCK (it opened the database since), when it holds data (an SST
        or blob file, a non-empty WAL: a commit landed) or any file RocksDB does not write into
        an empty database."""
        try:
            names = sorted(os.listdir(self.path))
        except OSError as exc:
            if exc.errno not in _NOTHING_THERE:
                return Discarded(kept_because=f"it cannot be listed ({exc.strerror})")
            self._remove_dirs()
            return Discarded()
        lock = -1
        try:
            if "LOCK" in names:
                lock = os.open(self.path / "LOCK", os.O_RDWR)
                try:
                    # RocksDB's own lock (a POSIX write lock on LOCK): held, the database is in
                    # use by another process, which may have written to it.
                    fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return Discarded(kept_because="another process has it open")
            for name in names:
                why = _data_in(self.path / name)
                if why is not None:
                    return Discarded(kept_because=why)
            for name in names:
                (self.path / name).unlink()
        except OSError as exc:
            return Discarded(kept_because=f"it cannot be removed ({exc.strerror})")
        finally:
            if lock >= 0:
                os.close(lock)
        self._remove_dirs()
        return Discarded(removed=True)

    def _remove_dirs(self) -> None:
        """Remove `path` and its ancestors up to `top`, innermost first, each only if empty."""
        if self.top is None:
            return
        current = self.path
        while True:
            try:
                current.rmdir()
            except OSError:
                return
            if current == self.top:
                return
            current = current.parent


def _data_in(path: Path) -> str | None:
    """Why the file `path` of a database directory means it holds data (or is not only
    RocksDB's), else None."""
    name = path.name
    if path.is_symlink() or not path.is_file() or not _EMPTY_DB_FILE.fullmatch(name):
        return f"it holds {name}, which an empty database does not"
    if name.endswith(".log") and path.stat().st_size > 0:
        return f"its write-ahead log {name} holds records"
    return None
