"""Every reading command, on databases other programs wrote with prefix extractors and bloom
filters, a reverse comparator and column families with different options, against the writer.

The writer is the oracle: `ldb` 7.8's own scan, RocksDB 6.14's own iteration (in a subprocess),
or rocksdict with the same options. Expected ranges are cut from the writer's full read with the
writer's definition of its order (reverse bytewise: `a` sorts before `b` when `a > b`), never
with kvtool's key order code. Workers are forced with `--workers 2` (by default they start only
over 64 MB of SST files, `kvtool.ops.range_plan.MIN_SST_BYTES`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from . import oracles
from .conftest import dir_state, run_kvtool
from .oracles import Record, Spec, put

PREFIX_GROUPS = (b"aaaa", b"cccc", b"eeee")


def _group(prefix: bytes) -> list[Record]:
    return [(prefix + b"%04d" % i, b"v%d" % i) for i in range(100)]


# -- the databases --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ldb_prefix(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    """Issue 9's database: three `ldb load` runs with a 4-byte prefix extractor and bloom
    filters, one SST file per group: a seek to `bbbb...` must not skip the `cccc` file."""
    db = tmp_path_factory.mktemp("ldbp") / "db"
    for prefix in PREFIX_GROUPS:
        oracles.ldb_load(db, _group(prefix), "--fix_prefix_len=4", "--bloom_bits=10")
    return db, oracles.ldb_scan(db)


@pytest.fixture(scope="module")
def r614_prefix(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    """The same groups from RocksDB 6.14 with a fixed prefix transform and a bloom filter; the
    last group only in the WAL."""
    db = tmp_path_factory.mktemp("r614p") / "db"
    spec = Spec(prefix_len=4, bloom_bits=10)
    runs = [[put(k, v) for k, v in _group(p)] for p in PREFIX_GROUPS[:2]]
    oracles.rocksdb614_write(db, runs, wal=[put(k, v) for k, v in _group(b"eeee")], spec=spec)
    return db, oracles.rocksdb614_read(db, spec=spec, read_only=True)


@pytest.fixture(scope="module")
def rdict_prefix(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    """rocksdict with `set_prefix_extractor(create_fixed_prefix(4))` and a bloom filter, one
    flushed SST file per group; read back by the same rocksdict options."""
    db = tmp_path_factory.mktemp("rdictp") / "db"
    out = oracles.rocksdict_script(
        """
        path, groups = sys.argv[1], json.loads(sys.argv[2])
        def options():
            opts = rd.Options(raw_mode=True)
            opts.create_if_missing(True)
            opts.set_prefix_extractor(rd.SliceTransform.create_fixed_prefix(4))
            table = rd.BlockBasedOptions()
            table.set_bloom_filter(10, False)
            table.set_format_version(5)
            opts.set_block_based_table_factory(table)
            return opts
        db = rd.Rdict(path, options())
        for group in groups:
            for i in range(100):
                db[group.encode() + b"%04d" % i] = b"v%d" % i
            db.flush()
        db.close()
        db = rd.Rdict(path, options(), access_type=rd.AccessType.read_only())
        ro = rd.ReadOptions()
        ro.set_total_order_seek(True)
        for key, value in db.items(read_opt=ro):
            print(key.hex(), value.hex())
        db.close()
        """,
        db,
        json.dumps([p.decode() for p in PREFIX_GROUPS]),
    )
    return db, _hex_lines(out)


REVERSE_KEYS = 352


def _reverse_records() -> list[Record]:
    return [(b"r:%04d" % i, b"v%d" % i) for i in range(REVERSE_KEYS)]


@pytest.fixture(scope="module")
def r614_reverse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    """Issue 9's RocksDB 6.14 database ordered by `rocksdb.ReverseBytewiseComparator`, 352
    records in three SST files and the WAL."""
    db = tmp_path_factory.mktemp("r614r") / "db"
    spec = Spec(comparator="reverse")
    ops = [put(k, v) for k, v in _reverse_records()]
    oracles.rocksdb614_write(db, [ops[:100], ops[100:200], ops[200:300]], wal=ops[300:], spec=spec)
    return db, oracles.rocksdb614_read(db, spec=spec, read_only=True)


def _hex_lines(out: str) -> list[Record]:
    return [
        (bytes.fromhex(k), bytes.fromhex(v))
        for k, _, v in (line.partition(" ") for line in out.splitlines())
    ]


# -- kvtool's view --------------------------------------------------------------------------------
def _ok(*args: str | Path) -> bytes:
    result = run_kvtool(*args)
    assert result.returncode == 0, (args, result.stderr.decode()[-2000:])
    return result.stdout


def _export(db: Path, *args: str) -> list[Record]:
    out = _ok("export", db, "-q", "--value-format", "hex", *args)
    return _rows(out)


def _rows(out: bytes) -> list[Record]:
    """Records of JSON Lines with text keys (every key here is ASCII) and hex values."""
    rows = [json.loads(line) for line in out.splitlines()]
    return [(r["key"].encode(), bytes.fromhex(r["value"])) for r in rows]


def _pages(db: Path, size: int, *args: str) -> list[Record]:
    """Every page of `scan`, each continuing after the cursor the last one printed."""
    got: list[Record] = []
    after: list[str] = []
    for _ in range(1000):
        result = run_kvtool(
            "scan", db, "-n", str(size), "-f", "jsonl", "--value-format", "hex", *args, *after
        )
        assert result.returncode == 0, result.stderr.decode()
        got += _rows(result.stdout)
        token = re.search(rb"--after (\S+)", result.stderr)
        if token is None:
            return got
        after = ["--after", token.group(1).decode()]
    raise AssertionError("scan never printed its last page")


def _count(db: Path, *args: str) -> int:
    return int(_ok("count", db, *args))


# -- prefix extractors with bloom filters ----------------------------------------------------------
PREFIX_DBS = ["ldb_prefix", "r614_prefix", "rdict_prefix"]


@pytest.fixture(params=PREFIX_DBS)
def prefix_db(request: pytest.FixtureRequest) -> tuple[Path, list[Record]]:
    db: tuple[Path, list[Record]] = request.getfixturevalue(request.param)
    return db


def test_the_writers_agree(prefix_db: tuple[Path, list[Record]]) -> None:
    _db, want = prefix_db
    assert want == sorted(r for p in PREFIX_GROUPS for r in _group(p))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_every_read_from_a_key_sees_every_file(
    prefix_db: tuple[Path, list[Record]], workers: str
) -> None:
    """A seek to a key whose prefix no file holds (`bbbb`) must not let the bloom filters skip
    the files after it; forward, reverse and both worker modes."""
    db, want = prefix_db
    before = dir_state(db)
    cases: list[tuple[list[str], Callable[[bytes], bool]]] = [
        (["--start", "bbbb0000"], lambda k: k >= b"bbbb0000"),
        (["--start", "aaaa0050", "--end", "dddd"], lambda k: b"aaaa0050" <= k < b"dddd"),
        (["--start", "cccc0042", "--end", "eeee0001"], lambda k: b"cccc0042" <= k < b"eeee0001"),
        (["--prefix", "cccc"], lambda k: k.startswith(b"cccc")),
        (["--prefix", "bbbb"], lambda k: k.startswith(b"bbbb")),
    ]
    for args, keep in cases:
        expected = [r for r in want if keep(r[0])]
        assert _export(db, "--workers", workers, *args) == expected, args
        rev = _export(db, "--workers", workers, "--reverse", *args)
        assert rev == expected[::-1], args
        assert _count(db, "--workers", workers, *args) == len(expected), args
    assert _count(db, "--workers", workers) == len(want)
    assert dir_state(db) == before


def test_scan_pages_and_cursors(prefix_db: tuple[Path, list[Record]]) -> None:
    """Page 2 continues right after page 1 (it jumped from aaaa0099 to eeee0000)."""
    db, want = prefix_db
    assert _pages(db, 100) == want
    below = [r for r in want if r[0] < b"dddd"]
    assert _pages(db, 130, "--reverse", "--end", "dddd") == below[::-1]
    assert _pages(db, 150, "--start", "bbbb") == [r for r in want if r[0] >= b"bbbb"]


def test_delete_range_counts_what_it_deletes(
    prefix_db: tuple[Path, list[Record]], tmp_path: Path
) -> None:
    db, want = prefix_db
    expected = sum(1 for k, _ in want if b"aaaa0050" <= k < b"dddd")
    dry = run_kvtool(
        "delete-range", db, "--dry-run", "--start", "aaaa0050", "--end", "dddd", "--stats", "json"
    )
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stderr)["records_in_range"] == expected == 150


def test_diff_and_verify(prefix_db: tuple[Path, list[Record]], tmp_path: Path) -> None:
    """A plain copy of the records (one ldb load, no prefix extractor): the same database to
    diff; verify reads every record."""
    db, want = prefix_db
    plain = oracles.ldb_load(tmp_path / "plain", [r for r in want if r[0] != b"cccc0007"])
    for args in ([], ["--start", "bbbb0000"], ["--start", "bbbb", "--reverse"]):
        result = run_kvtool("diff", db, plain, *args)
        assert result.returncode == 1, result.stderr  # they differ, as diff(1) says
        ops = [json.loads(line) for line in result.stdout.splitlines()]
        assert ops == [{"op": "removed", "key": "cccc0007", "value": "v7"}], args
    stats = run_kvtool("verify", db, "--stats", "json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout or stats.stderr)["records"] == len(want)


# -- a reverse bytewise comparator -----------------------------------------------------------------
def test_reverse_comparator_reads_every_record(r614_reverse: tuple[Path, list[Record]]) -> None:
    db, want = r614_reverse
    assert [k for k, _ in want] == sorted((k for k, _ in _reverse_records()), reverse=True)
    before = dir_state(db)
    for workers in ("1", "2"):
        assert _export(db, "--workers", workers) == want
        assert _export(db, "--workers", workers, "--reverse") == want[::-1]
        assert _count(db, "--workers", workers) == len(want)
    assert dir_state(db) == before


# The writer's order: reverse bytewise, so "at or after K" is `k <= K` bytewise.
REVERSE_CASES: list[tuple[list[str], Callable[[bytes], bool]]] = [
    (["--prefix", "r:01"], lambda k: k.startswith(b"r:01")),
    (["--start", "r:0100"], lambda k: k <= b"r:0100"),
    (["--start", "r:0300", "--end", "r:0050"], lambda k: b"r:0050" < k <= b"r:0300"),
    (["--end", "r:02"], lambda k: k > b"r:02"),
    (["--prefix", "r:01", "--start", "r:0150"], lambda k: k.startswith(b"r:01") and k <= b"r:0150"),
    (["--prefix", "r:03", "--end", "r:0320"], lambda k: k.startswith(b"r:03") and k > b"r:0320"),
    (["--prefix", "r:0"], lambda k: k.startswith(b"r:0")),
    (["--prefix", "r:1"], lambda k: False),
]


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(("args", "keep"), REVERSE_CASES)
def test_reverse_comparator_ranges(
    r614_reverse: tuple[Path, list[Record]],
    workers: str,
    args: list[str],
    keep: Callable[[bytes], bool],
) -> None:
    db, want = r614_reverse
    expected = [r for r in want if keep(r[0])]
    assert _export(db, "--workers", workers, *args) == expected
    assert _export(db, "--workers", workers, "--reverse", *args) == expected[::-1]
    assert _count(db, "--workers", workers, *args) == len(expected)


def test_reverse_comparator_pages(r614_reverse: tuple[Path, list[Record]]) -> None:
    db, want = r614_reverse
    assert _pages(db, 150) == want
    assert _pages(db, 33, "--prefix", "r:01") == [r for r in want if r[0].startswith(b"r:01")]
    expected = [r for r in want if r[0].startswith(b"r:02")][::-1]
    assert _pages(db, 40, "--prefix", "r:02", "--reverse") == expected
    # A cursor continues a count and a parallel export too.
    scan = run_kvtool("scan", db, "-n", "30", "--prefix", "r:01")
    token = re.search(rb"--after (\S+)", scan.stderr)
    assert token is not None, scan.stderr
    rest = [r for r in want if r[0].startswith(b"r:01")][30:]
    after = ["--prefix", "r:01", "--after", token.group(1).decode()]
    assert _count(db, *after) == len(rest) == 70
    assert _export(db, "--workers", "2", *after) == rest


def test_reverse_comparator_start_after_end_is_its_order(
    r614_reverse: tuple[Path, list[Record]],
) -> None:
    db, _ = r614_reverse
    wrong = run_kvtool("count", db, "--start", "r:0050", "--end", "r:0300")
    assert wrong.returncode == 2
    assert b"--start sorts after --end" in wrong.stderr
    assert b"rocksdb.ReverseBytewiseComparator" in wrong.stderr


def test_reverse_comparator_delete_range_diff_verify(
    r614_reverse: tuple[Path, list[Record]], tmp_path: Path
) -> None:
    db, want = r614_reverse
    dry = run_kvtool(
        "delete-range", db, "--dry-run", "--start", "r:0300", "--end", "r:0050", "--stats", "json"
    )
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stderr)["records_in_range"] == 250
    # Another RocksDB 6.14 database in the same order, one record changed, one missing.
    other = tmp_path / "other"
    records = dict(_reverse_records())
    records[b"r:0200"] = b"changed"
    del records[b"r:0010"]
    spec = Spec(comparator="reverse")
    oracles.rocksdb614_write(other, [[put(k, v) for k, v in records.items()]], spec=spec)
    result = run_kvtool("diff", db, other)
    assert result.returncode == 1, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"op": "changed", "key": "r:0200", "old": "v200", "new": "changed"},
        {"op": "removed", "key": "r:0010", "value": "v10"},
    ]
    result = run_kvtool("diff", db, other, "--reverse", "--start", "r:0250")
    assert [json.loads(line)["key"] for line in result.stdout.splitlines()] == ["r:0010", "r:0200"]
    plain = oracles.ldb_load(tmp_path / "plain", want)
    mixed = run_kvtool("diff", db, plain)
    assert mixed.returncode == 69
    assert mixed.stderr.count(b"\n") == 1 and b"ReverseBytewiseComparator" in mixed.stderr
    stats = run_kvtool("verify", db, "--stats", "json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout or stats.stderr)["records"] == len(want)


# -- column families with different options -------------------------------------------------------
@pytest.fixture(scope="module")
def r614_mixed_cfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RocksDB 6.14: `default` bytewise, `rev` reverse bytewise, `pfx` a 4-byte prefix extractor
    with bloom filters; each CF flushed in two runs (one SST file each)."""
    db = tmp_path_factory.mktemp("mixed") / "db"
    oracles.rocksdb614(
        """
        path = sys.argv[1]
        def cfs():
            rev = make_options({"comparator": "reverse"})
            pfx = make_options({"prefix_len": 4, "bloom_bits": 10})
            return {b"rev": rev, b"pfx": pfx}
        for groups in (("aaaa", "cccc"), ("eeee",)):
            db = rocksdb.DB(path, make_options({}), column_families=cfs())
            for name in (b"default", b"rev", b"pfx"):
                cf = db.get_column_family(name)
                for g in groups:
                    for i in range(50):
                        db.put((cf, g.encode() + b"%04d" % i), name + b"-%d" % i)
            db.close()
        db = rocksdb.DB(path, make_options({}), column_families=cfs())
        db.close()
        """,
        db,
    )
    return db


@pytest.mark.parametrize("cf", ["default", "rev", "pfx"])
def test_column_families_each_in_their_own_order(r614_mixed_cfs: Path, cf: str) -> None:
    db = r614_mixed_cfs
    want = _read_cf_614(db, cf)
    assert len(want) == 150
    assert want[0][0] == (b"eeee0049" if cf == "rev" else b"aaaa0000")
    before = dir_state(db)
    for workers in ("1", "2"):
        assert _export(db, "--cf", cf, "--workers", workers) == want
        got = _export(db, "--cf", cf, "--workers", workers, "--prefix", "cccc")
        assert got == [r for r in want if r[0].startswith(b"cccc")]
        got = _export(db, "--cf", cf, "--workers", workers, "--start", "bbbb")
        start = (lambda k: k <= b"bbbb") if cf == "rev" else (lambda k: k >= b"bbbb")
        assert got == [r for r in want if start(r[0])]
    assert _pages(db, 40, "--cf", cf, "--prefix", "cccc") == [
        r for r in want if r[0].startswith(b"cccc")
    ]
    assert dir_state(db) == before


def _read_cf_614(db: Path, cf: str) -> list[Record]:
    """RocksDB 6.14's read of one column family, every CF opened with its own options."""
    out = oracles.rocksdb614(
        """
        path, cf = sys.argv[1], sys.argv[2]
        rev = make_options({"comparator": "reverse"})
        pfx = make_options({"prefix_len": 4, "bloom_bits": 10})
        db = rocksdb.DB(
            path, make_options({}), column_families={b"rev": rev, b"pfx": pfx}, read_only=True
        )
        it = db.iteritems(db.get_column_family(cf.encode()))
        it.seek_to_first()
        for (_, key), value in it:
            print(key.hex(), value.hex())
        del it
        db.close()
        """,
        db,
        cf,
    )
    return _hex_lines(out)


def test_over_64_mb_the_default_workers_follow_the_order(tmp_path: Path) -> None:
    """Issue 9: over 64 MB of SST files `export` starts two range workers by default, and on a
    reverse-comparator database wrote 1 record of 272 (exit 0). Incompressible 250 KB values."""
    db = tmp_path / "big"
    oracles.rocksdb614(
        """
        import os
        path = sys.argv[1]
        opts = make_options({"comparator": "reverse"})
        opts.compression = rocksdb.CompressionType.no_compression
        db = rocksdb.DB(path, opts)
        for i in range(272):
            db.put(b"r:%04d" % i, os.urandom(250_000))
        db.close()
        db = rocksdb.DB(path, opts)  # recovery flushes the WAL into SST files
        db.close()
        """,
        db,
    )
    assert sum(f.stat().st_size for f in db.glob("*.sst")) > 64 << 20
    want = [k for k, _ in oracles.rocksdb614_read(db, spec=Spec(comparator="reverse"))]
    assert len(want) == 272 and want == sorted(want, reverse=True)
    out = _ok("export", db, "-q", "--keys-only")
    rows = [json.loads(line)["key"].encode() for line in out.splitlines()]
    assert rows == want
    assert _count(db) == 272
    assert _count(db, "--prefix", "r:01") == 100
