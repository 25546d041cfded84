"""Single-key operations: get, put, delete."""

from __future__ import annotations

from pathlib import Path

from kvtool.engine import OpenMode, open_db
from kvtool.engine.base import Entity
from kvtool.errors import KeyNotFoundError, UsageError
from kvtool.formats.codecs import printable


def get_value(path: Path, key: bytes, *, cf: str | None = None) -> bytes:
    """The value stored under `key`; KeyNotFoundError when there is none. A wide-column entity
    with more than a default column is refused (UsageError): a point read gives its default
    column alone, and printing that would drop the others without a word."""
    with open_db(path, OpenMode.READ_ONLY) as db:
        value = db.get(key, cf)
        if value is not None:
            with db.iterator(cf, lower=key, upper=key, upper_closed=True) as it:
                it.seek_to_first()
                found = it.read_entries(1)
            if found and isinstance(found[0][1], Entity):
                raise UsageError(
                    f"{printable(key)} holds a wide-column entity of "
                    f"{len(found[0][1].columns)} columns, more than get prints",
                    hint="kvtool export (--start KEY --limit 1) or scan prints every column",
                )
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
