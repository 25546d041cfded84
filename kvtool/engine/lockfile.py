"""Who holds a database's LOCK file: asked of the kernel, without taking the lock or writing."""

from __future__ import annotations

import fcntl
import os
import struct
from pathlib import Path

# struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid.
_FLOCK = "hhqqi"


def lock_holder(db_dir: Path) -> int | None:
    """The pid holding `db_dir/LOCK` (RocksDB takes a POSIX write lock on it), else None."""
    try:
        fd = os.open(db_dir / "LOCK", os.O_RDONLY)
    except OSError:
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        l_type, _, _, _, pid = struct.unpack(_FLOCK, answer)
        return pid if l_type != fcntl.F_UNLCK and pid > 0 else None
    except OSError:
        return None
    finally:
        os.close(fd)
