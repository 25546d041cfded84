"""Engine bounds on databases other writers made: a reverse comparator (RocksDB 6.14) and a
prefix extractor with bloom filters (ldb 7.8), through both read paths.

Every read of bounds (open or closed on either side) must return exactly the keys the writer's
own full read holds there, cut with the writer's definition of its order, forward and reverse,
after any seek. READ_ONLY reads come from rocksdict's bulk streams, SECONDARY reads step the
native iterator.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from kvtool.engine import BYTEWISE, REVERSE_BYTEWISE, Bounds, KeyOrder, OpenMode, open_db
from kvtool.errors import UnavailableError

from . import oracles
from .oracles import Spec, put

# Every test runs on each installed engine (conftest.engine).
pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture(scope="module")
def reverse_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    db = tmp_path_factory.mktemp("rev") / "db"
    keys = [b"k%03d" % i for i in range(0, 300, 3)] + [b"k", b"k\xff", b"j", b"l"]
    ops = [put(k, b"v" + k) for k in keys]
    spec = Spec(comparator="reverse")
    oracles.rocksdb614_write(db, [ops[:40], ops[40:80]], wal=ops[80:], spec=spec)
    return db, [k for k, _ in oracles.rocksdb614_read(db, spec=spec, read_only=True)]


@pytest.fixture(scope="module")
def prefix_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    db = tmp_path_factory.mktemp("pfx") / "db"
    for group in (b"aaaa", b"cccc", b"eeee"):
        records = [(group + b"%03d" % i, b"v") for i in range(0, 60, 2)]
        oracles.ldb_load(db, records, "--fix_prefix_len=4", "--bloom_bits=10")
    return db, [k for k, _ in oracles.ldb_scan(db)]


@pytest.fixture(params=[OpenMode.READ_ONLY, OpenMode.SECONDARY], ids=["bulk", "stepping"])
def mode(request: pytest.FixtureRequest) -> OpenMode:
    mode: OpenMode = request.param
    return mode


def _reverse_before(a: bytes, b: bytes) -> bool:
    """The writer's comparator (tests/oracles.py ReverseBytewise): a sorts before b."""
    return a > b


def _bytewise_before(a: bytes, b: bytes) -> bool:
    return a < b


def _inside(bounds: Bounds, before: Callable[[bytes, bytes], bool], key: bytes) -> bool:
    low, high = bounds.lower, bounds.upper
    if low is not None and (before(key, low) or (bounds.lower_open and key == low)):
        return False
    return high is None or not (before(high, key) or (not bounds.upper_closed and key == high))


def _random_bounds(rng: random.Random, probes: list[bytes]) -> Bounds:
    lower, upper = rng.choice([None, *probes]), rng.choice([None, *probes])
    return Bounds(lower, upper, rng.random() < 0.5, rng.random() < 0.5)


def _check(
    db_path: Path,
    mode: OpenMode,
    keys: list[bytes],
    order: KeyOrder,
    before: Callable[[bytes, bytes], bool],
    probes: list[bytes],
) -> None:
    rng = random.Random(9)
    with open_db(db_path, mode) as db:
        assert db.key_order() == order
        for _ in range(150):
            bounds = _random_bounds(rng, probes)
            want = [k for k in keys if _inside(bounds, before, k)]
            batch = rng.choice([1, 3, 1000])
            with db.bounded(None, bounds) as it:
                it.seek_to_first()
                got = _drain(lambda: it.read_keys(batch))  # noqa: B023 (called at once)
                assert got == want, bounds
                it.seek_to_first()
                got = _drain(lambda: [k for k, _ in it.read_entries(batch)])  # noqa: B023
                assert got == want, bounds
                it.seek_to_last()
                got = _drain(lambda: [k for k, _ in it.read_batch(batch, reverse=True)])  # noqa: B023
                assert got == want[::-1], bounds
                # A seek anywhere: forward from the first key at or after it, in the range.
                probe = rng.choice(probes)
                it.seek(probe)
                rest = [k for k in want if not before(k, probe)]
                assert it.count(1000) == len(rest), (bounds, probe)
                it.seek_for_prev(probe)
                head = [k for k in want if not before(probe, k)]
                assert it.read_keys(1000, reverse=True) == head[::-1], (bounds, probe)


def _drain(read: Callable[[], list[bytes]]) -> list[bytes]:
    out: list[bytes] = []
    while batch := read():
        out += batch
    return out


def test_reverse_comparator_bounds(
    reverse_db: tuple[Path, list[bytes]], mode: OpenMode, engine: str
) -> None:
    path, keys = reverse_db
    if engine == "python-rocksdb":  # its binding loads no comparator by name: refused, 69
        with pytest.raises(UnavailableError, match="ReverseBytewiseComparator"):
            open_db(path, mode)
        return
    assert keys == sorted(keys, reverse=True)  # the writer's order
    probes = [*keys[::7], b"k", b"k0", b"k1", b"k150\x00", b"a", b"z", b"k\xff\xff"]
    _check(path, mode, keys, REVERSE_BYTEWISE, _reverse_before, probes)


def test_prefix_bloom_bounds(
    prefix_db: tuple[Path, list[bytes]], mode: OpenMode, engine: str
) -> None:
    """Seeks to keys whose prefix no file holds (bbbb, dddd) still find the next file's keys."""
    if engine == "python-rocksdb":  # rocksdict wrote XXH3 checksums: RocksDB 6.14 refuses, 69
        with pytest.raises(UnavailableError, match="XXH3 block checksums"):
            open_db(prefix_db[0], mode)
        return
    path, keys = prefix_db
    probes = [*keys[::9], b"bbbb", b"bbbb000", b"dddd010", b"cccc001", b"a", b"f", b"cccc"]
    _check(path, mode, keys, BYTEWISE, _bytewise_before, probes)


def test_verify_locates_damage_in_the_key_order() -> None:
    """verify names the file that holds the record after the last good key: in a reverse order
    that is the file whose keys are bytewise below it."""
    from kvtool.engine import LiveFile
    from kvtool.ops.verify import _files_after

    def sst(name: str, smallest: bytes, largest: bytes) -> LiveFile:
        return LiveFile(name, "default", 1, 1, 1, 0, smallest, largest)

    files = [sst("9.sst", b"k4", b"k0"), sst("8.sst", b"k9", b"k5")]
    assert [f.name for f in _files_after(files, b"k6", REVERSE_BYTEWISE)] == ["8.sst"]
    assert [f.name for f in _files_after(files, b"k3", REVERSE_BYTEWISE)] == ["9.sst"]
    plain = [sst("7.sst", b"k0", b"k4"), sst("6.sst", b"k5", b"k9")]
    assert [f.name for f in _files_after(plain, b"k4", BYTEWISE)] == ["6.sst"]
