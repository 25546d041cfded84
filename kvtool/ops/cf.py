"""Column families: list, create, drop."""

from __future__ import annotations

from pathlib import Path

from kvtool.engine import OpenMode, open_db


def list_column_families(path: Path) -> list[str]:
    with open_db(path, OpenMode.READ_ONLY) as db:
        return db.column_families


def create_column_family(
    path: Path, name: str, *, wait_lock: float = 0.0, force: bool = False
) -> None:
    with open_db(path, OpenMode.READ_WRITE, wait_lock=wait_lock, force=force) as db:
        db.create_column_family(name)


def drop_column_family(
    path: Path, name: str, *, wait_lock: float = 0.0, force: bool = False
) -> None:
    with open_db(path, OpenMode.READ_WRITE, wait_lock=wait_lock, force=force) as db:
        db.drop_column_family(name)
