"""The engine layer: opening databases and owning every native handle they give out."""

from __future__ import annotations

import enum
import importlib
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


class EngineName(str, enum.Enum):
    """Every engine that can open databases, by the name `--engine` and KVTOOL_ENGINE take."""

    ROCKSDICT = "rocksdict"
    PYTHON_ROCKSDB = "python-rocksdb"


# Each engine's "module:callable" that returns it, imported only when chosen. Registering an
# engine is its name above and its line here.
ENGINES: dict[str, str] = {
    EngineName.ROCKSDICT: "kvtool.engine.rdict:RdictEngine",
    EngineName.PYTHON_ROCKSDB: "kvtool.engine.pyrocksdb:load_engine",
}
DEFAULT_ENGINE = EngineName.ROCKSDICT

log = logging.getLogger("kvtool")


class DamagePolicy:
    """Whether opens may read or write a damaged database as RocksDB recovers it (dropping what
    it cannot place); the CLI's root option `--allow-data-loss` sets it for one process."""

    allow_data_loss = False


DAMAGE_POLICY = DamagePolicy()


class EngineChoice:
    """Which engine opens databases in this process: the CLI's root option `--engine` sets it;
    unset, KVTOOL_ENGINE names it, else DEFAULT_ENGINE. Every open without an `engine=` (every
    op) uses it, forked range workers included."""

    name: str | None = None

    def current(self) -> str:
        return self.name or os.environ.get("KVTOOL_ENGINE") or DEFAULT_ENGINE.value


ENGINE_CHOICE = EngineChoice()


def check_engine_name(name: str) -> str:
    """`name` if it is a registered engine, else UsageError (exit 2) listing them."""
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}", hint=f"choose one of: {', '.join(ENGINES)}")
    return name


def get_engine(name: str | None = None) -> Engine:
    """The engine `name`, by default the one ENGINE_CHOICE gives."""
    module, _, factory = ENGINES[check_engine_name(name or ENGINE_CHOICE.current())].partition(":")
    engine: Engine = getattr(importlib.import_module(module), factory)()
    return engine


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
                    exc.waited = wait_lock
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
    "DEFAULT_ENGINE",
    "ENGINES",
    "ENGINE_CHOICE",
    "REVERSE_BYTEWISE",
    "TRACER",
    "Bottommost",
    "Bounds",
    "Database",
    "Engine",
    "EngineIterator",
    "EngineName",
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
    "check_engine_name",
    "get_engine",
    "key_order",
    "open_db",
    "position",
]
