"""kvtool: a command-line toolkit and Python library for RocksDB databases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from kvtool.engine import OpenMode, open_db

__all__ = ["OpenMode", "__version__", "open_db"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import kvtool` (and shell completion) does not load the native engine.
    if name in ("open_db", "OpenMode"):
        import kvtool.engine

        return getattr(kvtool.engine, name)
    raise AttributeError(f"module 'kvtool' has no attribute {name!r}")
