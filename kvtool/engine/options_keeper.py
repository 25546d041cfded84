"""`OptionsKeeper`: a write session's newest OPTIONS file kept loadable by the owner's RocksDB.

Every read-write open (and every column family created or dropped) makes RocksDB write a new
OPTIONS-<n> file in its own vocabulary; RocksDB 9.8 names options that older releases do not know,
and their `LoadLatestOptions` (ldb, RocksJava's `OptionsUtil`) then refuse the database. RocksDB
itself never reads the file back (measured: a database opens and checkpoints the same whatever the
newest OPTIONS file holds), so after RocksDB writes one, kvtool replaces its content: with the
owner's own previous file (the settings kvtool loaded and opened with, in the owner's words), or,
for a database that had none (one kvtool creates), with RocksDB's file cut down to the options
RocksDB 6.14 knows (ldb 7.8 loads those too). docs/design.md, "The owner's OPTIONS file".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kvtool.engine.options_file import options_texts
from kvtool.engine.options_text import is_kvtool_file, portable_text, restored_text, version_of


def owner_text(before: dict[int, str], after: dict[int, str], written: int) -> str | None:
    """The owner's newest OPTIONS text, from the files before and after an open writing `written`.

    RocksDB keeps the two newest OPTIONS files, so the owner's is still there after the open (it is
    read again under the LOCK, in case the owner wrote one in between); `before` covers files the
    open deleted. A newest file that claims exactly the engine's RocksDB version, carries no kvtool
    note and follows a file of another version was left by a kvtool write that stopped before it
    could restore it (a crash between RocksDB's write and kvtool's): the file before it is the
    owner's. None when the database had no OPTIONS file.
    """
    files = {**before, **after}
    older = sorted((n for n in files if n < written), reverse=True)
    if not older:
        return None
    newest = files[older[0]]
    engine = version_of(after.get(written, ""))
    if (
        len(older) > 1
        and engine is not None
        and version_of(newest) == engine
        and not is_kvtool_file(newest)
        and version_of(files[older[1]]) != engine
    ):
        return files[older[1]]
    return newest


def replace_options_file(path: Path, text: str) -> None:
    """Replace `path` by `text` atomically: a temp file, fsynced, renamed over it.

    The temp file is named as RocksDB names its own (`OPTIONS-<n>.dbtmp`): a crash before the
    rename leaves a file that no options loader picks up (RocksDB parses it as a temp file), and
    the next write session removes it (`OptionsKeeper.restore`; RocksDB 9.8 leaves it, measured).
    """
    tmp = path.with_name(path.name + ".dbtmp")
    with tmp.open("wb") as f:
        f.write(text.encode("utf-8", "surrogateescape"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _options_path(db_dir: Path, number: int) -> Path:
    return db_dir / f"OPTIONS-{number:06d}"


class OptionsKeeper:
    """Keeps a write session's newest OPTIONS file in the owner's words.

    Made before the read-write open (it remembers the OPTIONS files there were); `restore()` after
    anything that makes RocksDB write an OPTIONS file (the open, creating or dropping a column
    family) and after the close. Only files written since this keeper was made are rewritten.
    """

    def __init__(self, db_dir: Path) -> None:
        self.db_dir = db_dir
        self._before = options_texts(db_dir)
        self._owner: str | None = None
        self._decided = False
        self._engine_wrote: dict[int, str] = {}  # the texts replaced, by file number

    @contextmanager
    def as_the_engine_wrote_it(self) -> Iterator[None]:
        """Within the block, the newest OPTIONS file holds the text the engine wrote; after it,
        the owner's again. RocksDB's checkpoint copies that file (to another filesystem: a copy,
        not a link) by the size it wrote and fails on any other size ("File smaller than expected
        for copy"). A crash inside the block leaves the engine's text, which `owner_text` repairs
        at the next write."""
        files = options_texts(self.db_dir)
        newest = max(files, default=-1)
        text = self._engine_wrote.get(newest)
        if text is not None:
            replace_options_file(_options_path(self.db_dir, newest), text)
        try:
            yield
        finally:
            if text is not None:
                self.restore()

    def restore(self, target: Path | None = None) -> None:
        """Rewrite the newest OPTIONS file of the database, or of its checkpoint `target`."""
        where = target if target is not None else self.db_dir
        files = options_texts(where)
        if not files:
            return
        newest = max(files)
        written = files[newest]
        if newest <= max(self._before, default=-1) or is_kvtool_file(written):
            return
        if not self._decided:
            self._owner = owner_text(self._before, options_texts(self.db_dir), newest)
            self._decided = True
        engine = version_of(written) or "unknown"
        if self._owner is not None:
            text = restored_text(
                self._owner,
                written,
                f"RocksDB {engine} wrote this file for a kvtool write; kvtool put back the "
                f"options as the owner's RocksDB {version_of(self._owner) or '(unknown)'} "
                "wrote them, which it had opened the database with.",
            )
        else:
            text = portable_text(
                written,
                f"RocksDB {engine} wrote this file; kvtool kept only the options RocksDB 6.14 "
                "knows, so that older releases (ldb 7.8, RocksDB 6.14) load it.",
            )
        if target is None:
            self._engine_wrote[newest] = written
        replace_options_file(_options_path(where, newest), text)
        # Under the LOCK nothing else writes OPTIONS files here: a temp one is left by a crash.
        for stale in where.glob("OPTIONS-*.dbtmp"):
            stale.unlink(missing_ok=True)
