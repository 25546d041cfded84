"""Private work directories named after the process that owns them, and the clean-up of ones
whose process is gone (a SIGKILL runs no clean-up code).

A directory is named `PREFIX` + `PID@HOST.` + random characters. A later run removes those of
its own host whose PID no longer exists: a directory of a running process, or of another host
sharing the filesystem, is left alone, and so is anything named otherwise.
"""

from __future__ import annotations

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
