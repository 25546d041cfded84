"""Iterator bounds: every read of [lower, upper) returns exactly the keys a sorted list says.

rocksdict 0.3.29 mishandles `iterate_lower_bound`, so the engine keeps that bound itself; these
tests pin the behaviour a native bound has, in both directions and for every read call.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from pathlib import Path

import pytest

from kvtool.engine import OpenMode, open_db, position

from .conftest import make_db

# Every test runs on each installed engine (conftest.engine).
pytestmark = pytest.mark.usefixtures("engine")

KEYS = sorted({bytes([a, b]) for a in (0x00, 0x41, 0x42, 0xFF) for b in (0x00, 0x10, 0xFF)})
BOUNDS = [None, b"", b"\x00", b"\x00\x10", b"A", b"A\x05", b"B\xff", b"B\xff\x00", b"\xff\xff\x01"]


@pytest.fixture(scope="module")
def bounds_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bounds") / "b.db"
    return make_db(path, {key: b"v" + key for key in KEYS})


# READ_ONLY views read through rocksdict's bulk streams, READ_WRITE ones step the native iterator.
@pytest.fixture(params=[OpenMode.READ_ONLY, OpenMode.READ_WRITE], ids=["bulk", "stepping"])
def mode(request: pytest.FixtureRequest) -> OpenMode:
    mode: OpenMode = request.param
    return mode


def _expected(lower: bytes | None, upper: bytes | None) -> list[bytes]:
    return [k for k in KEYS if (lower is None or k >= lower) and (upper is None or k < upper)]


def _pairs() -> list[tuple[bytes | None, bytes | None]]:
    return [(lo, up) for lo in BOUNDS for up in BOUNDS if lo is None or up is None or lo < up]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("batch", [1, 2, 5, 100])
def test_batches_hold_exactly_the_range(
    bounds_db: Path, mode: OpenMode, reverse: bool, batch: int
) -> None:
    with open_db(bounds_db, mode) as db:
        for lower, upper in _pairs():
            got = [
                k
                for b in db.batches(lower=lower, upper=upper, reverse=reverse, batch_size=batch)
                for k, _ in b
            ]
            want = _expected(lower, upper)
            assert got == (want[::-1] if reverse else want), (lower, upper)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_keys_and_counts_hold_exactly_the_range(
    bounds_db: Path, mode: OpenMode, reverse: bool
) -> None:
    with open_db(bounds_db, mode) as db:
        for lower, upper in _pairs():
            want = _expected(lower, upper)
            with db.iterator(lower=lower, upper=upper) as it:
                position(it, reverse=reverse, after=None)
                assert it.read_keys(100, reverse=reverse) == (want[::-1] if reverse else want)
                assert (
                    it.read_keys(100, reverse=reverse) == []
                )  # spent, as a native bound leaves it
            with db.iterator(lower=lower, upper=upper) as it:
                position(it, reverse=reverse, after=None)
                assert it.count(3, reverse=reverse) + it.count(100, reverse=reverse) == len(want)


def test_seeks_outside_the_bounds_behave_like_native_bounds(
    bounds_db: Path, mode: OpenMode
) -> None:
    lower, upper = b"A\x05", b"B\xff"
    want = _expected(lower, upper)
    with open_db(bounds_db, mode) as db, db.iterator(lower=lower, upper=upper) as it:
        it.seek(b"\x00")  # before the range: lands on its first key
        assert it.read_keys(1) == want[:1]
        it.seek_for_prev(b"\x00\xff")  # before the range: nothing, whichever way we read
        assert it.read_keys(5) == []
        assert it.read_batch(5, reverse=True) == []
        assert it.count(5, reverse=True) == 0
        it.seek_for_prev(b"\xff")  # after the range: its last key
        assert it.read_keys(100, reverse=True) == want[::-1]
        it.seek_to_first()  # a new seek makes a spent iterator usable again
        assert it.count(100) == len(want)


def test_resuming_after_any_key_gives_the_rest(bounds_db: Path, mode: OpenMode) -> None:
    rng = random.Random(7)
    with open_db(bounds_db, mode) as db:
        for _ in range(300):
            lower, upper = rng.choice(_pairs())
            reverse = rng.random() < 0.5
            after = rng.choice([*KEYS, b"A\x10\x01", b"\x00"])
            want = _expected(lower, upper)
            if reverse:
                rest = want[: bisect_left(want, after)][::-1]
            else:
                rest = want[bisect_right(want, after) :]
            got = [
                k
                for b in db.batches(
                    lower=lower, upper=upper, reverse=reverse, after=after, batch_size=2
                )
                for k, _ in b
            ]
            assert got == rest, (lower, upper, reverse, after)
