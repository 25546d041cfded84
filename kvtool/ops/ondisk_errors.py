"""How the ondisk readers' and the OS's failures become kvtool's errors, for the operations that
read RocksDB's files directly (`sst`, `wal`, `manifest`, `du --sample`)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kvtool.errors import (
    CorruptionError,
    DatabaseNotFoundError,
    PermissionDeniedError,
    UnavailableError,
    UsageError,
)
from kvtool.ondisk.coding import FormatError, UnsupportedFormat


@contextmanager
def reading(path: Path, what: str = "file") -> Iterator[None]:
    """Turn the ondisk readers' and the OS's failures into kvtool errors naming `path`."""
    try:
        yield
    except UnsupportedFormat as exc:
        raise UnavailableError(f"{path}: {exc}") from None
    except FormatError as exc:
        raise CorruptionError(f"{path}: {exc}") from None
    except FileNotFoundError:
        raise DatabaseNotFoundError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a {what}") from None
    except PermissionError:
        raise PermissionDeniedError(f"{path}: permission denied") from None


def seekable(path: Path, what: str) -> None:
    """Refuse a pipe or device where a file read by offset (an SST file) is needed: a pipe's
    size is 0, which read as "too short to be a table"."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # `reading` names what is wrong when the file is opened
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise UsageError(
            f"{path} is not a regular file (a pipe or a device): a {what} is read by offset",
            hint="save it to a file first",
        )
