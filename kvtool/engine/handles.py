"""The registry of every native handle kvtool opens: who owns it, and the one reference to it.

rocksdict's iterators, snapshots and batches refuse weak references and keep the database (its LOCK,
its files) alive for as long as anything refers to them. So the native object lives in exactly one
place, a cell that only its `Handle` and that handle's finalizer can reach; everything outside the
engine holds the `Handle`, and releasing a handle empties the cell, which frees the native object
whatever else still holds the `Handle` (a paused generator, a kept traceback, a saved result).

The registry and a handle's parent refer to the handle weakly, as plyvel's `DB.iterators` does: a
child that nobody holds any more (an iterator dropped without `release()`) is freed when it is
collected, and `close()` on the parent still releases the live ones first, child before parent. A
child keeps its parent alive, so a database is never collected under its iterators. Databases are
held strongly until released: a database is closed explicitly (or at exit), never by the collector.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import weakref
from typing import Any, ClassVar, TextIO

from kvtool.errors import KvtoolError

# Release order when a database closes: children before their parents.
_RELEASE_ORDER = {"iterator": 0, "sst-writer": 0, "batch": 1, "snapshot": 2, "column-family": 3}


class HandleClosedError(KvtoolError):
    """A handle was used after it was released."""


class HandleTracer:
    """Logs opens and releases (--trace-handles) and knows which handles are still open."""

    def __init__(self) -> None:
        self.stream: TextIO | None = None
        self.live: weakref.WeakValueDictionary[int, Handle] = weakref.WeakValueDictionary()
        self._pinned: dict[int, Handle] = {}  # databases: held until released

    def enable(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr

    def disable(self) -> None:
        self.stream = None

    def log(self, event: str, kind: str, ident: int, owner: int | None) -> None:
        if self.stream is not None:
            where = f" in db#{owner}" if owner is not None else ""
            print(f"kvtool: handle {event} {kind}#{ident}{where}", file=self.stream)

    def open_handles(self) -> list[Handle]:
        return sorted(self.live.values(), key=lambda h: h.id)


TRACER = HandleTracer()


def _collected(cell: list[Any], kind: str, ident: int, owner: int | None) -> None:
    """A handle was collected without `release()`: free its native object now."""
    if cell[0] is not None:
        cell[0] = None
        TRACER.log("collected", kind, ident, owner)


class Handle:
    """One native object, owned by the registry; `release()` is idempotent."""

    kind: ClassVar[str] = "handle"
    _ids: ClassVar[itertools.count[int]] = itertools.count(1)

    def __init__(self, native: Any, owner: Handle | None = None) -> None:
        self.id = next(Handle._ids)
        self.owner = owner
        self._cell: list[Any] = [native]
        self._children: weakref.WeakValueDictionary[int, Handle] = weakref.WeakValueDictionary()
        owner_id = owner.id if owner is not None else None
        self._finalizer = weakref.finalize(
            self, _collected, self._cell, self.kind, self.id, owner_id
        )
        self._finalizer.atexit = False  # at exit the natives go with the process
        if owner is not None:
            owner._children[self.id] = self
        else:
            TRACER._pinned[self.id] = self
        TRACER.live[self.id] = self
        TRACER.log("open", self.kind, self.id, owner_id)

    @property
    def _native(self) -> Any:
        return self._cell[0]

    @_native.setter
    def _native(self, native: Any) -> None:
        self._cell[0] = native

    @property
    def released(self) -> bool:
        return self._cell[0] is None

    def _require(self) -> Any:
        native = self._cell[0]
        if native is None:
            raise HandleClosedError(f"{self.kind}#{self.id} was already released")
        return native

    def _close_native(self, native: Any) -> None:
        """Subclasses free native resources here (e.g. `Rdict.close()`)."""

    def release(self) -> None:
        if self._cell[0] is None:
            return
        children = sorted(self._children.values(), key=lambda h: _RELEASE_ORDER.get(h.kind, 9))
        for child in children:
            child.release()
        del children
        native, self._cell[0] = self._cell[0], None
        self._finalizer.detach()
        try:
            self._close_native(native)
        finally:
            del native
            self._children.clear()
            if self.owner is not None:
                self.owner._children.pop(self.id, None)
            TRACER.live.pop(self.id, None)
            TRACER._pinned.pop(self.id, None)
            TRACER.log("release", self.kind, self.id, self.owner.id if self.owner else None)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_exc_info: object) -> None:
        if exc_type is None:
            self.release()
            return
        # An error is already on its way out: a close that fails too (the same full disk) must
        # not replace it, and with it the account it gives (what was committed, where to resume).
        with contextlib.suppress(Exception):
            self.release()

    def __repr__(self) -> str:
        state = "released" if self.released else "open"
        return f"<{type(self).__name__} {self.kind}#{self.id} {state}>"
