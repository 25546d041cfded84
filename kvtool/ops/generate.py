"""Synthetic databases for trying kvtool and for benchmarks, reproducible from a seed."""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from kvtool.engine import OpenMode, open_db
from kvtool.errors import UsageError

_ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789"
_POOL_SIZE = 1 << 16


@dataclass(frozen=True)
class GenerateStats:
    records: int
    key_bytes: int
    value_bytes: int
    elapsed: float


def generate(
    path: Path,
    *,
    keys: int = 100_000,
    value_size: int = 100,
    seed: int = 0,
    key_prefix: str = "key:",
    batch_records: int = 10_000,
) -> GenerateStats:
    """Create a new database at `path` holding `keys` records `<prefix><12-digit index>`.

    Values are `value_size` printable ASCII bytes drawn from a seeded generator, so the same
    arguments always give the same content. The path must not exist yet.
    """
    if keys < 0 or value_size < 0 or batch_records < 1:
        raise UsageError("--keys and --value-size must be >= 0")
    if path.exists():
        raise UsageError(f"{path} already exists", hint="generate writes a new database only")
    rng = random.Random(seed)
    pool = bytes(rng.choices(_ALPHABET, k=_POOL_SIZE + value_size))
    prefix = key_prefix.encode("utf-8")
    started = time.monotonic()
    try:
        key_bytes = _fill(path, keys, value_size, rng, pool, prefix, batch_records)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # it is new: leave nothing half-written behind
        raise
    return GenerateStats(
        records=keys,
        key_bytes=key_bytes,
        value_bytes=keys * value_size,
        elapsed=time.monotonic() - started,
    )


def _fill(
    path: Path,
    keys: int,
    value_size: int,
    rng: random.Random,
    pool: bytes,
    prefix: bytes,
    batch_records: int,
) -> int:
    key_bytes = 0
    with open_db(path, OpenMode.READ_WRITE, create=True) as db:
        with db.write_batch() as batch:
            put = batch.put
            offsets = rng.choices(range(_POOL_SIZE), k=min(keys, _POOL_SIZE)) or [0]
            for i in range(keys):
                key = prefix + b"%012d" % i
                key_bytes += len(key)
                off = offsets[i % len(offsets)]
                put(key, pool[off : off + value_size])
                if (i + 1) % batch_records == 0:
                    db.write(batch)
                    batch.clear()
            db.write(batch)
        db.flush()
    return key_bytes
