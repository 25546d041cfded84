"""How the ondisk readers' and the OS's failures become kvtool's errors, for the operations that
read RocksDB's files directly (`sst`, `wal`, `manifest`, `du --sample`)."""

from __future__ import annotations

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
