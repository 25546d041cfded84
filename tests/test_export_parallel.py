"""Parallel export (--workers 2): forked range workers must write exactly what one process
writes, in order, stop and resume at record boundaries, fail on corruption, and refuse to mix two
views of a database that a live writer changes under them."""

from __future__ import annotations

import bisect
import gzip
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvtool.engine import BYTEWISE, REVERSE_BYTEWISE, Bounds, KeyOrder, LiveFile
from kvtool.ops.range_plan import plan_chunks
from kvtool.stream import KeyRange, ReadSpec

from .conftest import dir_state, kvtool_executable, make_db, run_kvtool

N = 120_000


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120k records (several chunks), a few of them binary or needing JSON escapes."""
    path = tmp_path_factory.mktemp("parallel") / "p.db"
    records = {b"k:%08d" % i: b"value %d" % i for i in range(N)}
    records.update({b"k:00050000\xff": b"\x00\xff", b'k:00070000"q': b"tab\there\\"})
    return make_db(path, records)


def _export(db: Path, *args: str | Path) -> bytes:
    result = run_kvtool("export", db, "-q", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--reverse"],
        ["--start", "k:00010000", "--end", "k:00090000"],
        ["--prefix", "k:0006", "--reverse"],
        ["--keys-only"],
        ["--format", "csv"],
        ["--key-format", "hex", "--value-format", "base64"],
    ],
    ids=["all", "reverse", "start-end", "prefix-reverse", "keys", "csv", "hex-base64"],
)
def test_two_workers_write_exactly_what_one_process_writes(big_db: Path, args: list[str]) -> None:
    one = _export(big_db, "--workers", "1", *args)
    two = _export(big_db, "--workers", "2", *args)
    assert two == one
    assert one.count(b"\n") > 1000


def test_resuming_after_a_cursor_and_files(big_db: Path, tmp_path: Path) -> None:
    whole = _export(big_db, "--workers", "1")
    for reverse in ([], ["--reverse"]):
        scan = run_kvtool("scan", big_db, "-n", "777", *reverse)
        token = scan.stderr.decode().split("--after ")[1].split()[0]
        rest = _export(big_db, "--workers", "2", "--after", token, *reverse)
        assert rest == _export(big_db, "--workers", "1", "--after", token, *reverse)
    target, packed = tmp_path / "out.jsonl", tmp_path / "out.jsonl.gz"
    _export(big_db, "--workers", "2", "-o", target)
    _export(big_db, "--workers", "2", "-o", packed)  # gzip: read by one process
    assert target.read_bytes() == whole
    assert gzip.decompress(packed.read_bytes()) == whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.jsonl.gz"]


def test_the_database_dir_is_untouched_and_no_temp_dirs_are_left(
    big_db: Path, tmp_path: Path
) -> None:
    tmp = tmp_path / "tmpdir"  # the run's own TMPDIR: other runs on the machine share /tmp
    tmp.mkdir()
    before = dir_state(big_db)
    result = run_kvtool("export", big_db, "-q", "--workers", "2", env={"TMPDIR": str(tmp)})
    assert result.returncode == 0, result.stderr
    assert dir_state(big_db) == before
    assert list(tmp.iterdir()) == []


def test_sigint_stops_at_a_record_boundary_and_the_cursor_resumes(big_db: Path) -> None:
    whole = _export(big_db, "--workers", "1")
    proc = subprocess.Popen(
        [kvtool_executable(), "export", str(big_db), "--workers", "2", "--stats", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # the workers are writing
    proc.send_signal(signal.SIGINT)
    head = first + proc.stdout.read()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, err
    assert head.endswith(b"\n") and whole.startswith(head)
    token = err.decode().rsplit("--after ", 1)[1].split()[0]
    rest = _export(big_db, "--workers", "2", "--after", token)
    assert head + rest == whole


def test_a_closed_pipe_ends_quietly(big_db: Path) -> None:
    proc = subprocess.Popen(
        [kvtool_executable(), "export", str(big_db), "--workers", "2", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b'{"key":')
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert b"Traceback" not in err


def test_corruption_fails_with_74_and_leaves_no_file(tmp_path: Path) -> None:
    source = make_db(tmp_path / "good.db", {b"c:%06d" % i: os.urandom(200) for i in range(40_000)})
    copy = tmp_path / "corrupt.db"
    shutil.copytree(source, copy)
    sst = max(copy.glob("*.sst"), key=lambda p: p.stat().st_size)
    data = bytearray(sst.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    sst.write_bytes(bytes(data))
    result = run_kvtool("export", copy, "--workers", "2")
    assert result.returncode == 74, result.stderr
    assert result.stderr.startswith(b"kvtool: error: ") and b"Traceback" not in result.stderr
    target = tmp_path / "never.jsonl"
    assert run_kvtool("export", copy, "--workers", "2", "-o", target).returncode == 74
    assert not any(p.name.startswith((".never", "never")) for p in tmp_path.iterdir())


def test_a_live_writer_never_gets_two_views_mixed(big_db: Path, tmp_path: Path) -> None:
    """The writer puts a:N and z:N in one batch, N rising; a consistent export holds both or
    neither. Workers opening at different moments would see different N: the run must notice
    (sequence numbers differ) and read in one process instead."""
    db = tmp_path / "live.db"
    shutil.copytree(big_db, db)
    code = (
        "import sys, itertools\n"
        "from rocksdict import Rdict, Options, WriteBatch\n"
        "o, cfs = Options.load_latest(sys.argv[1])\n"
        "db = Rdict(sys.argv[1], o, column_families=cfs)\n"
        "print('ready', flush=True)\n"
        "for n in itertools.count():\n"
        "    b = WriteBatch(raw_mode=True)\n"
        "    b.put(b'a:%09d' % n, b'x')\n"
        "    b.put(b'z:%09d' % n, b'x')\n"
        "    db.write(b)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        time.sleep(0.2)  # let the WAL grow (not synchronisation: any amount of data will do)
        for _ in range(3):
            out = _export(db, "--workers", "2", "--keys-only", "--key-format", "hex")
            keys = [bytes.fromhex(line[8:-2].decode()) for line in out.splitlines()]
            low = {k[2:] for k in keys if k.startswith(b"a:")}
            high = {k[2:] for k in keys if k.startswith(b"z:")}
            assert low == high
            assert len(keys) == N + 2 + 2 * len(low)
    finally:
        writer.kill()
        writer.wait(timeout=30)


def _file(smallest: bytes, largest: bytes, entries: int) -> LiveFile:
    return LiveFile("1.sst", "default", 6, 1, entries, 0, smallest, largest)


def test_chunks_tile_the_range_in_output_order() -> None:
    files = [_file(b"k:0000", b"k:4999", 5000), _file(b"k:5000", b"k:9999", 5000)]
    for spec in (
        ReadSpec(),
        ReadSpec(krange=KeyRange(lower=b"k:1", upper=b"k:7")),
        ReadSpec(krange=KeyRange(reverse=True)),
        ReadSpec(krange=KeyRange(lower=b"k:2"), after=b"k:3000"),
        ReadSpec(krange=KeyRange(upper=b"k:8", reverse=True), after=b"k:6000"),
        ReadSpec(krange=KeyRange(prefix=b"k:3")),
    ):
        chunks = plan_chunks(files, spec, BYTEWISE, target=1000)
        _assert_tiles(chunks, spec, BYTEWISE)


def test_chunks_follow_a_reverse_bytewise_order() -> None:
    """Under rocksdb.ReverseBytewiseComparator a file's smallest key is bytewise its largest."""
    rev = REVERSE_BYTEWISE
    files = [_file(b"k:9999", b"k:5000", 5000), _file(b"k:4999", b"k:0000", 5000)]
    for spec in (
        ReadSpec(),
        ReadSpec(krange=KeyRange(lower=b"k:7", upper=b"k:1")),
        ReadSpec(krange=KeyRange(reverse=True)),
        ReadSpec(krange=KeyRange(prefix=b"k:3")),
        ReadSpec(krange=KeyRange(prefix=b"k:3", reverse=True), after=b"k:3500"),
        ReadSpec(krange=KeyRange(lower=b"k:8"), after=b"k:6000"),
    ):
        chunks = plan_chunks(files, spec, rev, target=1000)
        _assert_tiles(chunks, spec, rev)


def _assert_tiles(chunks: list[Bounds], spec: ReadSpec, order: KeyOrder) -> None:
    """The chunks, in key order, meet edge to edge and cover exactly the range's bounds."""
    assert len(chunks) >= 2, spec
    ordered = chunks[::-1] if spec.krange.reverse else chunks
    for low, high in itertools.pairwise(ordered):
        assert low.upper == high.lower and low.upper is not None
        assert not low.upper_closed and not high.lower_open
        assert high.upper is None or order.lt(high.lower, high.upper)
    want = spec.krange.bounds(order)
    if spec.after is not None:
        want = order.after(want, spec.after, reverse=spec.krange.reverse)
    first, last = ordered[0], ordered[-1]
    assert (first.lower, first.lower_open) == (want.lower, want.lower_open)
    assert (last.upper, last.upper_closed) == (want.upper, want.upper_closed)
    inner = sum(len(_keys_in(c, order)) for c in chunks)
    assert inner == len(_keys_in(want, order)), spec


def _keys_in(bounds: Bounds, order: KeyOrder) -> list[bytes]:
    return [k for k in (b"k:%04d" % i for i in range(10_000)) if order.contains(bounds, k)]


def test_two_workers_count_exactly_what_one_process_counts(big_db: Path) -> None:
    scan = run_kvtool("scan", big_db, "-n", "777", "--reverse", "--start", "k:00004")
    token = scan.stderr.decode().split("--after ")[1].split()[0]
    for args in (
        [],
        ["--prefix", "k:0001"],
        ["--start", "k:00010000", "--end", "k:00090000"],
        ["--reverse", "--start", "k:00004", "--after", token],
    ):
        counts = [
            run_kvtool("count", big_db, "--workers", workers, *args) for workers in ("1", "2")
        ]
        assert counts[0].returncode == counts[1].returncode == 0, counts[1].stderr
        assert counts[0].stdout == counts[1].stdout, args
    assert run_kvtool("count", big_db, "--workers", "2").stdout.strip() == str(N + 2).encode()


def test_count_with_workers_fails_on_corruption(tmp_path: Path) -> None:
    source = make_db(tmp_path / "good.db", {b"c:%06d" % i: os.urandom(200) for i in range(40_000)})
    sst = max(source.glob("*.sst"), key=lambda p: p.stat().st_size)
    data = bytearray(sst.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    sst.write_bytes(bytes(data))
    result = run_kvtool("count", source, "--workers", "2")
    assert result.returncode == 74, result.stderr
    assert result.stderr.startswith(b"kvtool: error: ") and b"Traceback" not in result.stderr


def test_a_deadline_stops_cleanly_and_the_rest_follows(big_db: Path) -> None:
    whole = _export(big_db, "--workers", "1")
    for timeout in ("0.05", "0.3"):  # before the workers start, or while they write
        first = run_kvtool("export", big_db, "--workers", "2", "--timeout", timeout)
        if first.returncode == 0:  # finished in time: nothing to resume
            assert first.stdout == whole
            continue
        assert first.returncode == 124, first.stderr
        assert first.stdout == b"" or first.stdout.endswith(b"\n")
        assert whole.startswith(first.stdout)
        if b"--after " not in first.stderr:  # stopped before writing anything
            assert first.stdout == b""
            continue
        token = first.stderr.decode().split("--after ")[1].split()[0]
        assert first.stdout + _export(big_db, "--workers", "2", "--after", token) == whole


def _random_keys(count: int) -> list[bytes]:
    rng = random.Random(7)
    return sorted(b"\x00b:" + rng.randbytes(8) for _ in range(count))


@pytest.mark.parametrize(
    "keys",
    [
        [b"key:%012d" % i for i in range(100_000)],
        [b"user:%05x" % i for i in range(100_000)],
        [b"%08d" % i for i in range(50_000)],
        _random_keys(50_000),
    ],
    ids=["decimal", "hex", "digits-only", "binary"],
)
def test_chunks_of_a_file_hold_about_the_target(keys: list[bytes]) -> None:
    """Cut points inside a file follow the characters its keys are made of: keys of decimal
    digits split by decimal value (read in base 256, most cut points fell where no such key
    lies: some chunks empty, one with 41% of the records)."""
    count = len(keys)
    files = [_file(keys[0], keys[-1], count)]
    chunks = plan_chunks(files, ReadSpec(), BYTEWISE, target=count // 10)
    sizes = [_count_in(keys, c) for c in chunks]
    assert sum(sizes) == count
    assert max(sizes) <= 2 * count // 10, sizes
    assert sizes.count(0) <= 1, sizes


def _count_in(keys: list[bytes], bounds: Bounds) -> int:
    """How many of the sorted `keys` lie in `bounds` (a plan's [lower, upper) chunk)."""
    assert not bounds.lower_open and not bounds.upper_closed
    low = 0 if bounds.lower is None else bisect.bisect_left(keys, bounds.lower)
    high = len(keys) if bounds.upper is None else bisect.bisect_left(keys, bounds.upper)
    return high - low


@pytest.mark.parametrize(
    ("reverse", "lower", "upper"),
    [
        (False, None, None),
        (True, None, None),
        (False, None, b"key:000000065000"),
        (True, b"key:000000025000", None),
    ],
    ids=["forward", "reverse", "forward-to-an-end", "reverse-to-a-start"],
)
def test_the_last_chunks_are_cut_finer_for_the_workers(
    reverse: bool, lower: bytes | None, upper: bytes | None
) -> None:
    """With 2 workers the last 2 chunks in output order hold about half the target each (the
    worker that takes the last chunk reads it alone), and the plan still covers every key once;
    in a range that ends before the files do, the tail is cut at the range's end."""
    keys = [b"key:%012d" % i for i in range(90_000)]
    files = [_file(keys[0], keys[-1], len(keys))]
    spec = ReadSpec(krange=KeyRange(lower=lower, upper=upper, reverse=reverse))
    keys = [k for k in keys if (lower is None or k >= lower) and (upper is None or k < upper)]
    one = plan_chunks(files, spec, BYTEWISE, target=10_000)
    two = plan_chunks(files, spec, BYTEWISE, target=10_000, workers=2)
    sizes = [_count_in(keys, c) for c in two]
    assert sum(sizes) == len(keys)
    assert len(two) == len(one) + 2
    held = [n for n in sizes if n]  # the chunk before the first key holds none
    assert max(held[-4:]) <= 6_000 < min(held[:-4]), sizes
    # Each chunk starts where the one before it (in key order) ends.
    in_key_order = two[::-1] if reverse else two
    assert (in_key_order[0].lower, in_key_order[-1].upper) == (lower, upper)
    assert all(a.upper == b.lower for a, b in itertools.pairwise(in_key_order))
    assert len({c.lower for c in two}) == len(two)  # no chunk is empty by its bounds
