"""A private directory of symlinks to a database's files, so a read-only open writes nothing there.

Every rocksdict open writes `rocksdict-config.json` into the directory it opens, and RocksDB may add
an info LOG. Opening a private shadow of symlinks instead leaves the real directory untouched, works
when it is not writable, and needs no write permission on the files themselves. Files the engine
writes (config, LOG) are never linked, so they land in the shadow and vanish with it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Files of the real directory that must not be reached through the shadow: ones the engine writes.
_NOT_LINKED = frozenset({"LOCK", "LOG", "rocksdict-config.json"})


def _linkable(name: str) -> bool:
    return name not in _NOT_LINKED and not name.startswith("LOG.old")


class ShadowDir:
    """Symlinks to the database's files in a fresh temporary directory; `remove()` deletes it."""

    def __init__(self, source: Path) -> None:
        self.source = source.resolve()
        self.path = Path(tempfile.mkdtemp(prefix="kvtool-ro-"))
        try:
            self.refresh()
        except BaseException:
            self.remove()
            raise

    def refresh(self) -> None:
        """Link files the source gained since the last refresh (a live writer's new SSTs, WALs)."""
        present = set(os.listdir(self.path))
        for name in os.listdir(self.source):
            if _linkable(name) and name not in present:
                os.symlink(self.source / name, self.path / name)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
