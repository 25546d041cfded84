"""Private work directories and temp files named after the process that owns them, and the
clean-up of ones whose process is gone (a SIGKILL runs no clean-up code).

A directory is named `PREFIX` + `PID@HOST.` + random characters. A later run removes those of
its own host whose PID no longer exists: a directory of a running process, or of another host
sharing the filesystem, is left alone, and so is anything named otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def make_owned_dir(prefix: str, parent: Path | None = None) -> Path:
    """A new directory `PREFIX PID@HOST.XXXXXXXX` in `parent` (the system temp dir by default),
    after removing the ones there that a dead process of this host left."""
    remove_stale_dirs(prefix, parent)
    tag = f"{prefix}{os.getpid()}@{_host()}."
    return Path(tempfile.mkdtemp(prefix=tag, dir=parent))


def remove_stale_dirs(prefix: str, parent: Path | None = None) -> list[Path]:
    """Remove the directories `PREFIX PID@HOST.*` in `parent` whose process is gone."""
    where = parent if parent is not None else Path(tempfile.gettempdir())
    host = _host()
    removed: list[Path] = []
    try:
        entries = list(where.iterdir())
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix) or "@" not in name:
            continue
        pid_text, _, rest = name[len(prefix) :].partition("@")
        owner_host, dot, _ = rest.rpartition(".")
        if not pid_text.isdigit() or not dot or owner_host != host:
            continue
        if _alive(int(pid_text)) or not entry.is_dir() or entry.is_symlink():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def owner_tag() -> str:
    """`PID@HOST` of this process: what a name carries for `remove_stale_files`."""
    return f"{os.getpid()}@{_host()}"


def remove_stale_files(parent: Path, prefix: str, suffix: str) -> list[Path]:
    """Remove the regular files `PREFIX PID@HOST.* SUFFIX` in `parent` that a process of this
    host left when it was killed (its PID is gone); anything else is left alone."""
    host = _host()
    removed: list[Path] = []
    try:
        names = [n for n in os.listdir(parent) if n.startswith(prefix) and n.endswith(suffix)]
    except OSError:
        return removed
    for name in names:
        pid_text, at, rest = name[len(prefix) : len(name) - len(suffix)].partition("@")
        owner_host, dot, _ = rest.rpartition(".")
        if not at or not pid_text.isdigit() or not dot or owner_host != host:
            continue
        entry = parent / name
        if _alive(int(pid_text)) or entry.is_symlink() or not entry.is_file():
            continue
        with contextlib.suppress(OSError):
            entry.unlink()
            removed.append(entry)
    return removed


def _host() -> str:
    # The kernel's host name, as socket.gethostname() reads it, without importing socket on
    # every open (read-only opens make a work dir too).
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True
