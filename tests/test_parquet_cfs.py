"""`export --format parquet` of several column families (`--cf A --cf B`, `--all-cfs`) and the
import of such a dataset (issue 15), on a database RocksDB 6.14 wrote, with the writer, ldb,
DuckDB and pyarrow as the oracles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from .conftest import IN_CI, run_kvtool, run_stopped_by_deadline
from .oracles import Spec, ldb_scan, put, rocksdb614_read, rocksdb614_write

if not IN_CI:
    pytest.importorskip("pyarrow")
    pytest.importorskip("duckdb")
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

Record = tuple[bytes, bytes]
CFS = ("default", "users", "events", "empty")
SPEC = Spec(column_families=CFS[1:])
# Each CF its own keys (some not UTF-8, one empty value); "users" shares keys with "default",
# so only the cf column tells their rows apart.
DATA: dict[str, list[Record]] = {
    "default": [(b"k%04d" % i, b"d%d" % i) for i in range(500)],
    "users": [(b"k%04d" % i, b"user \xff%d" % i * (i % 5)) for i in range(700)],
    "events": [(b"\x00\xfe%03d" % i, os.urandom(i % 30)) for i in range(600)],
    "empty": [],
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The column families written by RocksDB 6.14 in two runs (two SST files each)."""
    ops = [put(k, v, cf) for cf, records in DATA.items() for k, v in records]
    path = tmp_path_factory.mktemp("pqcf") / "db"
    return rocksdb614_write(path, [ops[::2], ops[1::2]], spec=SPEC)


@pytest.fixture(scope="module")
def oracle(db: Path) -> dict[str, list[Record]]:
    """What RocksDB 6.14 reads in each column family."""
    read = {cf: rocksdb614_read(db, spec=SPEC, cf=cf, read_only=True) for cf in CFS}
    assert {cf: sorted(r) for cf, r in DATA.items()} == read
    return read


@pytest.fixture(scope="module")
def dataset(db: Path) -> Path:
    out = db.parent / "ds"
    result = run_kvtool("export", db, "--format", "parquet", "-o", out, "--all-cfs",
                        "--part-size", "8KB")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def manifest(path: Path) -> dict[str, Any]:
    return json.loads((path / "_kvtool_manifest.json").read_text())  # type: ignore[no-any-return]


def rows_by_cf(path: Path) -> dict[str, list[Record]]:
    """The records of the dataset at `path` per cf column value, parts in the manifest's order."""
    out: dict[str, list[Record]] = {}
    for part in manifest(path)["parts"]:
        for row in pq.read_table(path / part["path"]).to_pylist():
            out.setdefault(row["cf"], []).append((row["key"], row["value"]))
    return out


def test_duckdb_counts_per_cf_what_kvtool_counts_per_cf(
    db: Path, dataset: Path, oracle: dict[str, list[Record]]
) -> None:
    counted = dict(
        duckdb.sql(
            f"SELECT cf, count(*) FROM read_parquet('{dataset}/**/*.parquet', "
            "union_by_name=true) GROUP BY cf"
        ).fetchall()
    )
    for cf in CFS:
        result = run_kvtool("count", db, "--cf", cf)
        assert result.returncode == 0, result.stderr
        assert counted.get(cf, 0) == int(result.stdout) == len(oracle[cf])
    assert set(counted) == {"default", "users", "events"}  # an empty CF has no rows


def test_pyarrow_reads_each_cf_back_byte_exact_and_the_manifest_lists_each_cf(
    db: Path, dataset: Path, oracle: dict[str, list[Record]]
) -> None:
    assert rows_by_cf(dataset) == {cf: r for cf, r in oracle.items() if r}
    listed = manifest(dataset)
    assert listed["state"] == "complete" and (dataset / "_SUCCESS").exists()
    shown = run_kvtool("cf", "list", db)
    order = shown.stdout.decode().split()  # --all-cfs: the order `kvtool cf list` shows
    assert sorted(order) == sorted(CFS) and listed["options"]["range"]["cf"] == order
    entries = {c["name"]: c for c in listed["column_families"]}
    assert list(entries) == order
    for cf in CFS:
        entry = entries[cf]
        parts = [p for p in listed["parts"] if p.get("cf") == cf]
        assert entry["records"] == len(oracle[cf]) == sum(p["records"] for p in parts)
        assert entry["parts"] == len(parts) and (cf == "empty") == (not parts)
        assert entry["state"] == "complete" and entry["sequences"] == [listed["sequence"]]
        assert entry["range"] == {"cf": cf, "start": None, "end": None, "prefix": None,
                                  "reverse": False}  # fmt: skip
    # The cf column is a string, dictionary-encoded in the file and in Arrow.
    part = pq.ParquetFile(dataset / listed["parts"][0]["path"])
    assert part.schema_arrow.field("cf").type == pa.dictionary(pa.int32(), pa.string())
    assert "RLE_DICTIONARY" in part.metadata.row_group(0).column(0).encodings
    assert part.schema_arrow.names == ["cf", "key", "value", "columns"]


def test_a_one_cf_export_has_no_cf_column_and_duckdb_queries_the_union(
    db: Path, dataset: Path, tmp_path: Path
) -> None:
    one = tmp_path / "one"
    result = run_kvtool("export", db, "--format", "parquet", "-o", one, "--cf", "users")
    assert result.returncode == 0, result.stderr
    assert "cf" not in pq.read_schema(next(one.glob("*.parquet"))).names
    assert "column_families" not in manifest(one)
    union = duckdb.sql(
        f"SELECT cf, count(*) FROM read_parquet(['{dataset}/**/*.parquet', '{one}/*.parquet'], "
        "union_by_name=true) GROUP BY cf ORDER BY cf NULLS FIRST"
    ).fetchall()
    assert union == [(None, 700), ("default", 500), ("events", 600), ("users", 700)]


def test_cf_given_twice_exports_those_in_that_order(
    db: Path, tmp_path: Path, oracle: dict[str, list[Record]]
) -> None:
    out = tmp_path / "ds"
    result = run_kvtool("export", db, "--format", "parquet", "-o", out, "--cf", "users",
                        "--cf", "default", "--prefix", "k00")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [p["cf"] for p in manifest(out)["parts"]] == ["users", "default"]
    got = rows_by_cf(out)
    assert got == {cf: [r for r in oracle[cf] if r[0].startswith(b"k00")] for cf in got}


def test_round_trip_export_import_export_is_identical(
    db: Path, dataset: Path, tmp_path: Path, oracle: dict[str, list[Record]]
) -> None:
    """Through import --mode sst: one sorted ingest per column family, each row into its own."""
    copy = tmp_path / "copy"
    missing = run_kvtool("import", copy, dataset)
    assert missing.returncode == 66, missing.stderr
    imported = run_kvtool("import", "--create", "--mode", "sst", copy, dataset, "--stats", "json")
    assert imported.returncode == 0, imported.stderr
    stats = json.loads(imported.stderr.decode().strip().splitlines()[-1])
    assert stats["records"] == sum(len(r) for r in oracle.values())
    for cf in CFS:  # ldb reads every CF back, the empty one created too
        assert ldb_scan(copy, f"--column_family={cf}") == oracle[cf]
    again = tmp_path / "again"
    result = run_kvtool("export", copy, "--format", "parquet", "-o", again, "--all-cfs",
                        "--part-size", "8KB")  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, second = manifest(dataset), manifest(again)
    assert first["parts"] == second["parts"]
    for entry in (*first["column_families"], *second["column_families"]):
        del entry["sequences"]  # the copy's own (an ingest writes at sequence 0)
    assert first["column_families"] == second["column_families"]
    for part in first["parts"]:
        assert (dataset / part["path"]).read_bytes() == (again / part["path"]).read_bytes()


def test_import_refuses_missing_cfs_creates_them_with_create_and_cf_overrides(
    dataset: Path, tmp_path: Path, oracle: dict[str, list[Record]]
) -> None:
    target = tmp_path / "target"
    rocksdb614_write(target, [[put(b"x", b"1", "users")]], spec=Spec(column_families=["users"]))
    refused = run_kvtool("import", target, dataset)
    assert refused.returncode == 2
    assert refused.stderr.decode().count("\n") == 1 and b"Traceback" not in refused.stderr
    assert b"no column family 'empty', 'events'" in refused.stderr
    assert ldb_scan(target, "--column_family=users") == [(b"x", b"1")]  # nothing written
    created = run_kvtool("import", "--create", target, dataset)  # batch mode
    assert created.returncode == 0, created.stderr
    assert ldb_scan(target, "--column_family=users") == oracle["users"] + [(b"x", b"1")]
    for cf in ("default", "events", "empty"):
        assert ldb_scan(target, f"--column_family={cf}") == oracle[cf]
    # --cf puts every row into one column family, in the dataset's order: a key of both default
    # and users keeps the value of the later row, as a key on two lines does.
    into = run_kvtool("import", target, dataset, "--cf", "empty")
    assert into.returncode == 0, into.stderr
    expected = {}
    for cf in manifest(dataset)["options"]["range"]["cf"]:
        expected.update(oracle[cf])
    assert ldb_scan(target, "--column_family=empty") == sorted(expected.items())


def test_a_stopped_export_resumes_with_the_cf_its_cursor_names_and_no_duplicates(
    db: Path, tmp_path: Path, oracle: dict[str, list[Record]]
) -> None:
    out = tmp_path / "ds"
    args = ("export", db, "--format", "parquet", "-o", out, "--all-cfs", "--part-size", "2KB")
    # At most 2000 records/s * 0.4 s = 800 of the 1800: users (the last 700) is not begun.
    stopped = run_stopped_by_deadline(*args, rate=2000, timeout=0.4)
    assert stopped.returncode == 124, stopped.stderr
    listed = manifest(out)
    assert listed["state"] == "stopped" and not (out / "_SUCCESS").exists()
    states = [c["state"] for c in listed["column_families"]]
    at = states.index("partial")  # the CF the cursor is in: those before are done
    assert states == ["complete"] * at + ["partial"] + ["pending"] * (len(states) - at - 1)
    assert states[-1] == "pending"
    done = rows_by_cf(out)
    assert 0 < sum(map(len, done.values())) < 1800
    for cf, records in done.items():
        assert records == oracle[cf][: len(records)]
    cursor = listed["cursor"]
    assert f"--after {cursor} -o {out}" in stopped.stderr.decode()
    wrong = run_kvtool("export", db, "--format", "parquet", "-o", out, "--cf", "users",
                       "--cf", "default", "--after", cursor)  # fmt: skip
    assert wrong.returncode == 2, wrong.stderr
    resumed = run_kvtool(*args, "--after", cursor)
    assert resumed.returncode == 0, resumed.stderr
    assert rows_by_cf(out) == {cf: r for cf, r in oracle.items() if r}
    (count,) = duckdb.sql(f"SELECT count(*) FROM '{out}/*.parquet'").fetchall()[0]
    assert count == 1800
    assert [c["state"] for c in manifest(out)["column_families"]] == ["complete"] * 4


_WRITER = textwrap.dedent(
    """
    import os, sys
    import rocksdict as rd
    path, stop = sys.argv[1], sys.argv[2]
    opts = rd.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    cfs = {"a": rd.Options(raw_mode=True), "b": rd.Options(raw_mode=True)}
    db = rd.Rdict(path, opts, column_families=cfs)
    a, b = db.get_column_family_handle("a"), db.get_column_family_handle("b")
    i = 0
    while not os.path.exists(stop):
        batch = rd.WriteBatch(raw_mode=True)  # the same key into both CFs, atomically
        batch.put(b"%08d" % i, b"x" * 20, a)
        batch.put(b"%08d" % i, b"y" * 20, b)
        db.write(batch)
        i += 1
        if i == 2000:
            print("ready", flush=True)
    db.close()
    print(i)
    """
)


def test_several_cfs_are_one_point_in_time_while_a_writer_is_live(tmp_path: Path) -> None:
    """A live owner writes key i into CFs a and b in one batch, without pause, through the
    whole export: both CFs hold the same keys in the dataset only if one view read them."""
    path, stop, out = tmp_path / "live", tmp_path / "stop", tmp_path / "ds"
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(stop)], stdout=subprocess.PIPE, text=True
    ) as writer:
        assert writer.stdout is not None
        try:
            assert writer.stdout.readline().strip() == "ready"
            result = run_kvtool("export", path, "--format", "parquet", "-o", out,
                                "--cf", "a", "--cf", "b", "--keys-only")  # fmt: skip
            stop.touch()
            written = int(writer.stdout.read())
        finally:
            stop.touch()
    assert result.returncode == 0, result.stderr
    keys: dict[str, list[bytes]] = {}
    for part in manifest(out)["parts"]:
        for row in pq.read_table(out / part["path"]).to_pylist():
            keys.setdefault(row["cf"], []).append(row["key"])
    assert 2000 <= len(keys["a"]) < written  # the writer went on after the view was taken
    assert keys["a"] == keys["b"]
    listed = manifest(out)
    assert {s for c in listed["column_families"] for s in c["sequences"]} == {listed["sequence"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cf", "users", "--cf", "default"], b"only with --format parquet"),
        (["--format", "parquet", "--all-cfs", "--cf", "users"], b"not both"),
        (["--format", "parquet", "--all-cfs", "-j", "2"], b"one point in time"),
        (["--format", "parquet", "--all-cfs", "--limit", "5"], b"--limit"),
        (["--format", "parquet", "--cf", "users", "--cf", "nope"], b"no column family 'nope'"),
    ],
)
def test_refusals(db: Path, tmp_path: Path, args: list[str], message: bytes) -> None:
    out = tmp_path / "ds"
    result = run_kvtool("export", db, "-o", out, *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count(b"\n") == 1 and message in result.stderr
    assert not out.exists()


def test_any_parquet_file_with_a_cf_column_is_routed_row_by_row(tmp_path: Path) -> None:
    """A file another program wrote (pyarrow here), its CFs interleaved: each row goes to its
    CF; a row without one is a bad row, counted once, by its number in the file."""
    source = tmp_path / "mixed.parquet"
    pq.write_table(
        pa.table({
            "cf": ["b", "a", None, "b", "a"],
            "key": [b"k1", b"k2", b"k3", b"k4", b"\xffk5"],
            "value": [b"1", b"2", b"3", b"4", b"5"],
        }),
        source,
        row_group_size=2,
    )  # fmt: skip
    copy = tmp_path / "copy"
    result = run_kvtool("import", "--create", copy, source, "--on-error", "skip",
                        "--stats", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stderr.decode().strip().splitlines()[-1])
    assert (stats["records"], stats["lines"], stats["skipped_lines"]) == (4, 5, 1)
    assert ldb_scan(copy, "--column_family=a") == [(b"k2", b"2"), (b"\xffk5", b"5")]
    assert ldb_scan(copy, "--column_family=b") == [(b"k1", b"1"), (b"k4", b"4")]
    stopped = run_kvtool("import", "--create", tmp_path / "other", source)
    assert stopped.returncode == 65
    assert b"row 3: the row names no column family" in stopped.stderr
