"""RocksDB's RepairDB through the chosen engine (`Engine.repair`)."""

from __future__ import annotations

from pathlib import Path


def repair(path: Path) -> None:
    """Run RocksDB's repair on `path` with the engine `--engine` chose (the caller has checked
    nobody holds its LOCK); see the engine's `repair`."""
    from kvtool.engine import get_engine

    get_engine().repair(path)
