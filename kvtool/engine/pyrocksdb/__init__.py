"""The python-rocksdb engine (`--engine python-rocksdb`): RocksDB 6.14 through `import rocksdb`
(faust-streaming-rocksdb), for databases whose applications run that library."""

from __future__ import annotations

from kvtool.engine.base import Engine
from kvtool.errors import UnavailableError

NAME = "python-rocksdb"


def load_engine() -> Engine:
    """The engine, or UnavailableError (exit 69) saying how to install it."""
    try:
        import rocksdb  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        raise UnavailableError(
            f"the {NAME} engine is not installed (it needs the `rocksdb` module)",
            hint="pip install 'kvtool[pyrocksdb]', or use the default engine: --engine rocksdict",
        ) from None
    from kvtool.engine.pyrocksdb.engine import PyRocksdbEngine

    return PyRocksdbEngine()
