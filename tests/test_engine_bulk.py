"""Bulk reads: on a READ_ONLY open the iterator reads from rocksdict's Rust-side streams; every
sequence of seeks and reads must give exactly what native stepping (a READ_WRITE open) gives."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from kvtool.engine import TRACER, EngineIterator, HandleClosedError, OpenMode, open_db

from .conftest import make_db

# Every test runs on each installed engine (conftest.engine).
pytestmark = pytest.mark.usefixtures("engine")

KEYS = sorted({bytes([a, b]) for a in (0x00, 0x41, 0x42, 0xFF) for b in (0x00, 0x10, 0xFF)})
PROBES = [*KEYS, b"", b"\x00\x05", b"A", b"A\x10\x01", b"B\xff\x00", b"\xff\xff\xff"]
BOUNDS = [None, b"\x00\x10", b"A\x05", b"B\xff", b"\xff\x10"]


@pytest.fixture(scope="module")
def bulk_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bulk") / "b.db"
    return make_db(path, {key: b"v" + key for key in KEYS})


def _script(rng: random.Random, length: int) -> list[tuple[Any, ...]]:
    ops: list[tuple[Any, ...]] = []
    for _ in range(length):
        kind = rng.choice(
            ["first", "last", "seek", "prev", "batch", "keys", "count"] + ["batch"] * 3
        )
        if kind in ("seek", "prev"):
            ops.append((kind, rng.choice(PROBES)))
        elif kind in ("batch", "keys", "count"):
            ops.append((kind, rng.choice([1, 2, 3, 100]), rng.random() < 0.3))
        else:
            ops.append((kind,))
    return ops


def _play(it: EngineIterator, ops: list[tuple[Any, ...]]) -> list[Any]:
    seen: list[Any] = []
    for op in ops:
        if op[0] == "first":
            it.seek_to_first()
        elif op[0] == "last":
            it.seek_to_last()
        elif op[0] == "seek":
            it.seek(op[1])
        elif op[0] == "prev":
            it.seek_for_prev(op[1])
        elif op[0] == "batch":
            seen.append(it.read_batch(op[1], reverse=op[2]))
        elif op[0] == "keys":
            seen.append(it.read_keys(op[1], reverse=op[2]))
        else:
            seen.append(it.count(op[1], reverse=op[2]))
    return seen


def test_bulk_reads_match_native_stepping(bulk_db: Path) -> None:
    rng = random.Random(11)
    cases = []
    for _ in range(1000):
        lower, upper = rng.choice(BOUNDS), rng.choice(BOUNDS)
        if lower is not None and upper is not None and lower >= upper:
            continue
        # Mostly one seek then reads one way (the scan pattern), sometimes anything at all.
        ops = _script(rng, rng.randint(1, 12))
        if rng.random() < 0.6:
            ops = [
                rng.choice(
                    [
                        ("first",),
                        ("last",),
                        ("seek", rng.choice(PROBES)),
                        ("prev", rng.choice(PROBES)),
                    ]
                )
            ] + [op for op in ops if op[0] in ("batch", "keys", "count")]
        cases.append((lower, upper, ops))
    results = {}
    for mode in (OpenMode.READ_WRITE, OpenMode.READ_ONLY):
        with open_db(bulk_db, mode) as db:
            results[mode] = [
                _play(db.iterator(lower=lower, upper=upper), ops) for lower, upper, ops in cases
            ]
    pairs = zip(cases, results[OpenMode.READ_WRITE], results[OpenMode.READ_ONLY], strict=True)
    for case, native, bulk in pairs:
        assert bulk == native, case
    assert TRACER.open_handles() == []


def test_closing_the_database_releases_a_paused_bulk_stream(bulk_db: Path, engine: str) -> None:
    if engine != "rocksdict":
        pytest.skip("rocksdict-only: the other engines have no bulk streams")
    db = open_db(bulk_db)
    it = db.iterator()
    it.seek_to_first()
    assert it.read_batch(2) == [(k, b"v" + k) for k in KEYS[:2]]
    assert getattr(it, "_stream", None) is not None  # a stream is open: the bulk path ran
    db.close()  # the iterator goes first, and its stream with it
    assert getattr(it, "_stream", "gone") is None
    assert TRACER.open_handles() == []
    with pytest.raises(HandleClosedError):
        it.read_batch(2)
