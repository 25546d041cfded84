"""A private stand-in for a database's directory, so a read-only open writes nothing there.

Every rocksdict open writes `rocksdict-config.json` into the directory it opens, and RocksDB may add
an info LOG. Opening a private shadow instead leaves the real directory untouched, works when it is
not writable, and needs no write permission on the files themselves. Files the engine writes
(config, LOG) are never linked, so they land in the shadow and vanish with it.

A frozen shadow (read-only opens) also pins a view of a live database: its files are hard links
where the filesystem allows (a file the owner deletes after that stays readable through the link);
elsewhere (another filesystem, a read-only mount, someone else's files) each data file is held
open and linked as `/proc/PID/fd/N`, which opens the same file even after the owner deleted it;
CURRENT and the MANIFEST it names are copied, so the owner's later edits
(naming files the shadow never saw) are not read. The order makes every view consistent or a
loud failure: data files are linked first, then the MANIFEST is copied, then the SST and blob
files created meanwhile are linked. A WAL the MANIFEST still needs was linked before the copy;
an SST it names that vanished before the last step makes the open fail, and the engine builds a
fresh shadow and opens again (`rebuild`). WALs created after the first step are not linked: they
hold only writes newer than everything else in the view.

Errors from the engine name files by their shadow path; the shadow registers its path with
`kvtool.errors` so that every mapped error names the database's own files instead.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
from pathlib import Path

from kvtool.engine.workdirs import make_owned_dir
from kvtool.errors import register_path_alias

# Files of the real directory that must not be reached through the shadow: ones the engine writes.
_NOT_LINKED = frozenset({"LOCK", "LOG", "rocksdict-config.json"})
# Copied, not linked, in a frozen shadow: the owner rewrites CURRENT and appends to the MANIFEST.
_COPIED = ("CURRENT", "MANIFEST-")
# Data files that a live owner creates and deletes; linked again after the MANIFEST is copied.
_DATA_SUFFIXES = (".sst", ".blob")
# Pinned by an open descriptor when a hard link is not possible.
_PINNED_SUFFIXES = (*_DATA_SUFFIXES, ".log")


def _linkable(name: str) -> bool:
    return name not in _NOT_LINKED and not name.startswith("LOG.old")


class ShadowDir:
    """The database's files in a fresh temporary directory; `remove()` deletes it.

    `display` is the database path as the user gave it: errors name its files.
    """

    def __init__(self, source: Path, *, display: Path | None = None, frozen: bool = True) -> None:
        self.source = source.resolve()
        self.display = display if display is not None else source
        self.frozen = frozen
        # Named after this process: a later read removes it if a SIGKILL left it (its hard
        # links would otherwise keep deleted SST files' space in use).
        self.path = make_owned_dir("kvtool-ro-")
        self._fds: list[int] = []  # descriptors that pin files linked through /proc
        # RocksDB opens every file too: pin by descriptor while a third of the limit is left.
        self._fd_budget = resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 3
        if not os.path.isdir(f"/proc/{os.getpid()}/fd"):
            self._fd_budget = 0  # not Linux: symlinks, and the engine's retries
        register_path_alias(str(self.path), str(self.display))
        try:
            self.populate()
        except BaseException:
            self.remove()
            raise

    def populate(self) -> None:
        """Fill the shadow with the source's files, in the order the module docstring explains."""
        if not self.frozen:
            self.refresh()
            return
        for name in os.listdir(self.source):
            if _linkable(name) and not name.startswith(_COPIED):
                self._link(name)
        self._copy_current_and_manifest()
        present = set(os.listdir(self.path))
        for name in os.listdir(self.source):
            if name.endswith(_DATA_SUFFIXES) and name not in present:
                self._link(name)

    def rebuild(self) -> None:
        """Empty the shadow and populate it again (the source moved on while it was opened)."""
        for entry in os.scandir(self.path):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        self._close_fds()
        self.populate()

    def refresh(self) -> None:
        """Link files the source gained since the last refresh (a live writer's new SSTs, WALs)."""
        present = set(os.listdir(self.path))
        for name in os.listdir(self.source):
            if _linkable(name) and name not in present:
                os.symlink(self.source / name, self.path / name)

    def _link(self, name: str) -> None:
        source, target = self.source / name, self.path / name
        try:
            os.link(source, target)
            return
        except FileNotFoundError:
            return  # deleted by the owner since the listing: not part of this view
        except OSError:
            pass  # another filesystem, a read-only mount, protected_hardlinks
        if name.endswith(_PINNED_SUFFIXES) and len(self._fds) < self._fd_budget:
            try:
                fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return
            except OSError:
                pass
            else:
                self._fds.append(fd)
                os.symlink(f"/proc/{os.getpid()}/fd/{fd}", target)
                return
        os.symlink(source, target)

    def _close_fds(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    def _copy_current_and_manifest(self) -> None:
        """Copy CURRENT and the MANIFEST it names; the owner may switch to a new MANIFEST
        between the two reads, so a vanished MANIFEST means reading CURRENT again."""
        for _ in range(20):
            current = (self.source / "CURRENT").read_bytes()
            manifest = current.decode("ascii", "replace").strip()
            if not manifest.startswith("MANIFEST-") or "/" in manifest:
                break  # a damaged CURRENT: copied as it is, for RocksDB to report
            try:
                shutil.copyfile(self.source / manifest, self.path / manifest)
            except FileNotFoundError:
                continue
            break
        (self.path / "CURRENT").write_bytes(current)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._close_fds()
        register_path_alias(str(self.path), None)
