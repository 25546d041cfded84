"""kvtool: a command-line toolkit and Python library for RocksDB databases.

The library (docs/library.md): `open_db`, one function per operation (`scan`, `export`, `count`,
`diff`, `get`, `put`, `delete`, `import_records`, `verify`, `checkpoint`, `compact`, ...) and the
exceptions they raise. Every name is loaded on first use, so `import kvtool` stays cheap (shell
completion and start-up import it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from kvtool.api import (
        CheckpointResult,
        CompactResult,
        CountResult,
        DbInfo,
        DeleteRangeResult,
        DiffResult,
        Entity,
        ExportResult,
        ImportStats,
        RecordStream,
        VerifyResult,
        checkpoint,
        column_families,
        compact,
        count,
        delete,
        delete_range,
        diff,
        export,
        get,
        import_records,
        info,
        put,
        scan,
        verify,
    )
    from kvtool.engine import OpenMode, open_db
    from kvtool.errors import (
        BadInputError,
        CorruptionError,
        DamagedDatabaseError,
        DatabaseBusyError,
        DatabaseNotFoundError,
        ExitCode,
        KeyNotFoundError,
        KvtoolError,
        PermissionDeniedError,
        StoppedError,
        StorageError,
        UnavailableError,
        UsageError,
    )

__all__ = [
    "BadInputError",
    "CheckpointResult",
    "CompactResult",
    "CorruptionError",
    "CountResult",
    "DamagedDatabaseError",
    "DatabaseBusyError",
    "DatabaseNotFoundError",
    "DbInfo",
    "DeleteRangeResult",
    "DiffResult",
    "Entity",
    "ExitCode",
    "ExportResult",
    "ImportStats",
    "KeyNotFoundError",
    "KvtoolError",
    "OpenMode",
    "PermissionDeniedError",
    "RecordStream",
    "StoppedError",
    "StorageError",
    "UnavailableError",
    "UsageError",
    "VerifyResult",
    "__version__",
    "checkpoint",
    "column_families",
    "compact",
    "count",
    "delete",
    "delete_range",
    "diff",
    "export",
    "get",
    "import_records",
    "info",
    "open_db",
    "put",
    "scan",
    "verify",
]

# Where each public name lives (imported when first asked for).
_HOMES: dict[str, str] = {
    **dict.fromkeys(
        (
            "CheckpointResult",
            "CompactResult",
            "CountResult",
            "DbInfo",
            "DeleteRangeResult",
            "DiffResult",
            "Entity",
            "ExportResult",
            "ImportStats",
            "RecordStream",
            "VerifyResult",
            "checkpoint",
            "column_families",
            "compact",
            "count",
            "delete",
            "delete_range",
            "diff",
            "export",
            "get",
            "import_records",
            "info",
            "put",
            "scan",
            "verify",
        ),
        "kvtool.api",
    ),
    **dict.fromkeys(
        (
            "BadInputError",
            "CorruptionError",
            "DamagedDatabaseError",
            "DatabaseBusyError",
            "DatabaseNotFoundError",
            "ExitCode",
            "KeyNotFoundError",
            "KvtoolError",
            "PermissionDeniedError",
            "StoppedError",
            "StorageError",
            "UnavailableError",
            "UsageError",
        ),
        "kvtool.errors",
    ),
    **dict.fromkeys(("OpenMode", "open_db"), "kvtool.engine"),
}


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562), so `import kvtool` does not load the native engine.
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kvtool' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
