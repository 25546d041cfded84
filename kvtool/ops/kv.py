"""Single-key operations: get, put, delete."""

from __future__ import annotations

from pathlib import Path

from kvtool.engine import OpenMode, open_db
from kvtool.errors import KeyNotFoundError
from kvtool.formats.codecs import printable


def get_value(path: Path, key: bytes, *, cf: str | None = None) -> bytes:
    """The value stored under `key`; KeyNotFoundError when there is none."""
    with open_db(path, OpenMode.READ_ONLY) as db:
        value = db.get(key, cf)
    if value is None:
        raise KeyNotFoundError(f"key not found: {printable(key)}")
    return value


def put_value(
    path: Path,
    key: bytes,
    value: bytes,
    *,
    cf: str | None = None,
    wait_lock: float = 0.0,
    force: bool = False,
) -> None:
    with open_db(path, OpenMode.READ_WRITE, wait_lock=wait_lock, force=force) as db:
        db.put(key, value, cf)


def delete_key(
    path: Path, key: bytes, *, cf: str | None = None, wait_lock: float = 0.0, force: bool = False
) -> bool:
    """Delete `key`; returns whether it was there."""
    with open_db(path, OpenMode.READ_WRITE, wait_lock=wait_lock, force=force) as db:
        existed = db.get(key, cf) is not None
        db.delete(key, cf)
    return existed
