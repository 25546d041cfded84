"""The registry that holds the only strong reference to every native handle kvtool opens.

rocksdict's iterators, snapshots and batches refuse weak references and keep the database (its LOCK,
its files) alive for as long as anything refers to them. So the native object lives in exactly one
place, `Handle._native`; everything outside the engine holds the `Handle`, and releasing a handle
drops that one reference, which frees the native object whatever else still holds the `Handle`
(a paused generator, a kept traceback, a test runner's saved result).
"""

from __future__ import annotations

import itertools
import sys
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
        self.live: dict[int, Handle] = {}

    def enable(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr

    def disable(self) -> None:
        self.stream = None

    def log(self, event: str, handle: Handle) -> None:
        if self.stream is not None:
            owner = f" in db#{handle.owner.id}" if handle.owner is not None else ""
            print(f"kvtool: handle {event} {handle.kind}#{handle.id}{owner}", file=self.stream)

    def open_handles(self) -> list[Handle]:
        return sorted(self.live.values(), key=lambda h: h.id)


TRACER = HandleTracer()


class Handle:
    """One native object, owned by the registry; `release()` is idempotent."""

    kind: ClassVar[str] = "handle"
    _ids: ClassVar[itertools.count[int]] = itertools.count(1)

    def __init__(self, native: Any, owner: Handle | None = None) -> None:
        self.id = next(Handle._ids)
        self.owner = owner
        self._native: Any = native
        self._children: dict[int, Handle] = {}
        if owner is not None:
            owner._children[self.id] = self
        TRACER.live[self.id] = self
        TRACER.log("open", self)

    @property
    def released(self) -> bool:
        return self._native is None

    def _require(self) -> Any:
        native = self._native
        if native is None:
            raise HandleClosedError(f"{self.kind}#{self.id} was already released")
        return native

    def _close_native(self, native: Any) -> None:
        """Subclasses free native resources here (e.g. `Rdict.close()`)."""

    def release(self) -> None:
        if self._native is None:
            return
        for child in sorted(self._children.values(), key=lambda h: _RELEASE_ORDER.get(h.kind, 9)):
            child.release()
        native, self._native = self._native, None
        try:
            self._close_native(native)
        finally:
            del native
            self._children.clear()
            if self.owner is not None:
                self.owner._children.pop(self.id, None)
            TRACER.live.pop(self.id, None)
            TRACER.log("release", self)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self.released else "open"
        return f"<{type(self).__name__} {self.kind}#{self.id} {state}>"
