"""How this binding's native calls are spoken to: its errors as kvtool's, what it does not offer,
and keys that name a column family."""

from __future__ import annotations

from typing import Any

from kvtool.engine.pyrocksdb.options import ENGINE
from kvtool.errors import KvtoolError, UnavailableError
from kvtool.errors import from_native as _status_error

_ALTERNATIVE = "use the default engine: --engine rocksdict"


def lacks(what: str) -> UnavailableError:
    """The one error for what this binding does not offer (exit 69)."""
    return UnavailableError(f"the {ENGINE} engine (RocksDB 6.14) cannot {what}", hint=_ALTERNATIVE)


def from_native(exc: BaseException, *, context: str = "") -> KvtoolError:
    """`errors.from_native` for this binding, whose errors carry their status as bytes."""
    if isinstance(exc, KvtoolError):
        return exc
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], bytes):
        exc = RuntimeError(args[0].decode("utf-8", errors="replace"))
    elif isinstance(exc, Exception) and str(exc).startswith("Unknown error: b"):
        exc = RuntimeError(str(exc)[len("Unknown error: b") + 1 : -1])
    return _status_error(exc, context=context)


def cf_key(cf: Any, key: bytes) -> Any:
    """The binding names a column family by passing `(handle, key)` where a key goes."""
    return key if cf is None else (cf, key)
