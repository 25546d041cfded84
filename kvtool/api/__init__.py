"""The Python library: one function per kvtool operation, thin keyword-argument wrappers over
kvtool.ops that run in the calling process, change no process-wide setting and release every
native handle before they return (or, for a record stream, when it is closed or dropped).

`from kvtool import scan, export, count, ...` reaches these (kvtool/__init__.py loads this module
on first use). docs/library.md shows them at work. Errors are the exceptions of kvtool.errors,
each with the `exit_code` the command line would exit with.
"""

from kvtool.api.reads import column_families, count, diff, export, get, info, verify
from kvtool.api.records import RecordStream, scan
from kvtool.api.writes import checkpoint, compact, delete, delete_range, import_records, put
from kvtool.engine import Entity
from kvtool.ops.checkpoint import CheckpointResult
from kvtool.ops.compact import CompactResult
from kvtool.ops.count import CountResult
from kvtool.ops.delete_range import DeleteRangeResult
from kvtool.ops.diff import DiffResult
from kvtool.ops.export import ExportResult
from kvtool.ops.importer import ImportStats
from kvtool.ops.info import DbInfo
from kvtool.ops.verify import VerifyResult

__all__ = [
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
]
