"""The engine layer: opening databases and owning every native handle they give out."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from kvtool.engine.base import (
    DEFAULT_CF,
    Bottommost,
    Database,
    Engine,
    EngineIterator,
    Entity,
    Entry,
    LiveFile,
    OpenMode,
    Record,
    Snapshot,
    SstWriter,
    WriteBatch,
    position,
)
from kvtool.engine.handles import TRACER, Handle, HandleClosedError
from kvtool.engine.keyorder import BYTEWISE, REVERSE_BYTEWISE, Bounds, KeyOrder, key_order
from kvtool.errors import DatabaseBusyError, UsageError

ENGINES = ("rocksdict", "python-rocksdb")

log = logging.getLogger("kvtool")


class DamagePolicy:
    """Whether opens may read or write a damaged database as RocksDB recovers it (dropping what
    it cannot place); the CLI's root option `--allow-data-loss` sets it for one process."""

    allow_data_loss = False


DAMAGE_POLICY = DamagePolicy()


def get_engine(name: str | None = None) -> Engine:
    """The engine `name`; by default the one KVTOOL_ENGINE names, else rocksdict."""
    if name is None:
        name = os.environ.get("KVTOOL_ENGINE") or "rocksdict"
    if name == "python-rocksdb":
        from kvtool.engine.pyrocksdb import load_engine

        return load_engine()
    if name == "rocksdict":
        from kvtool.engine.rdict import RdictEngine

        return RdictEngine()
    raise UsageError(f"unknown engine {name!r}", hint=f"choose one of: {', '.join(ENGINES)}")


def open_db(
    path: str | Path,
    mode: OpenMode = OpenMode.READ_ONLY,
    *,
    create: bool = False,
    force: bool = False,
    wait_lock: float = 0.0,
    io_rate: int | None = None,
    engine: str | None = None,
    allow_data_loss: bool | None = None,
) -> Database:
    """Open a database; use it as a context manager so every handle is released on every path.

    A busy database (LOCK held by another process) raises DatabaseBusyError at once, or after
    retrying with backoff for up to `wait_lock` seconds. `io_rate` (bytes/s, READ_WRITE only)
    limits what flushes and compactions write, with RocksDB's rate limiter.

    A damaged database (SST files its MANIFEST does not reference, a WAL damaged before its end)
    raises CorruptionError unless `allow_data_loss` (default: `DAMAGE_POLICY`); then reads see
    what RocksDB recovers, `Database.damage` says what is left out, and a write open lets RocksDB
    delete it.
    """
    impl = get_engine(engine)
    if allow_data_loss is None:
        allow_data_loss = DAMAGE_POLICY.allow_data_loss
    deadline = time.monotonic() + max(wait_lock, 0.0)
    delay = 0.05
    waited = False
    while True:
        try:
            return impl.open(
                Path(path),
                mode,
                create=create,
                force=force,
                io_rate=io_rate,
                allow_data_loss=allow_data_loss,
            )
        except DatabaseBusyError as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if wait_lock > 0:
                    exc.message += f"; gave up after waiting {wait_lock:g}s"
                raise
            if not waited:
                log.warning("%s; waiting up to %gs for the lock", exc.message, wait_lock)
                waited = True
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)


__all__ = [
    "BYTEWISE",
    "DAMAGE_POLICY",
    "DEFAULT_CF",
    "REVERSE_BYTEWISE",
    "TRACER",
    "Bottommost",
    "Bounds",
    "Database",
    "Engine",
    "EngineIterator",
    "Entity",
    "Entry",
    "Handle",
    "HandleClosedError",
    "KeyOrder",
    "LiveFile",
    "OpenMode",
    "Record",
    "Snapshot",
    "SstWriter",
    "WriteBatch",
    "get_engine",
    "key_order",
    "open_db",
    "position",
]
