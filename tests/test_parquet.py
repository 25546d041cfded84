"""`export --format parquet` and `import` of Parquet (issue 15), checked with the readers analysts
use: DuckDB and pyarrow read the dataset kvtool writes from a database ldb wrote, and ldb reads
what kvtool imports back."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import IN_CI, kvtool_executable, run_kvtool
from .oracles import ldb_load, ldb_ok, ldb_scan, rocksdict_script

if not IN_CI:
    pytest.importorskip("pyarrow")
    pytest.importorskip("duckdb")
import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

Record = tuple[bytes, bytes]

# Keys over three first bytes (so prefix partitions differ), some not UTF-8, an empty value.
RECORDS: list[Record] = sorted(
    [(b"a:%05d" % i, b"value %d " % i * (i % 7)) for i in range(1500)]
    + [(b"b:%05d" % i, os.urandom(i % 40)) for i in range(1200)]
    + [(b"\xff\x00bin%d" % i, b"\x80\x81" * i) for i in range(300)]
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ldb_load(tmp_path_factory.mktemp("pq") / "db", RECORDS)


@pytest.fixture(scope="module")
def dataset(db: Path) -> Path:
    """The whole db as a dataset of several parts (--part-size), written once for the module."""
    out = db.parent / "ds"
    result = run_kvtool("export", db, "--format", "parquet", "-o", out, "--part-size", "40KB")
    assert result.returncode == 0, result.stderr
    return out


def rows(path: Path) -> list[dict[str, Any]]:
    """Every row of the dataset at `path`, part files in the manifest's (key) order."""
    manifest = json.loads((path / "_kvtool_manifest.json").read_text())
    out: list[dict[str, Any]] = []
    for part in manifest["parts"]:
        out += pq.read_table(path / part["path"]).to_pylist()
    return out


def test_duckdb_counts_what_kvtool_counts_and_sees_ldbs_range(db: Path, dataset: Path) -> None:
    count, low, high = duckdb.sql(
        f"SELECT count(*), min(key), max(key) FROM read_parquet('{dataset}/**/*.parquet')"
    ).fetchall()[0]
    counted = run_kvtool("count", db)
    assert counted.returncode == 0, counted.stderr
    oracle = ldb_scan(db)
    assert count == int(counted.stdout) == len(oracle) == len(RECORDS)
    assert (low, high) == (oracle[0][0], oracle[-1][0])


def test_pyarrow_reads_back_every_record_byte_exact(db: Path, dataset: Path) -> None:
    manifest = json.loads((dataset / "_kvtool_manifest.json").read_text())
    assert len(manifest["parts"]) >= 3 and manifest["state"] == "complete"
    assert manifest["records"] == len(RECORDS) and manifest["sequence"] > 0
    assert manifest["rocksdb"] and manifest["kvtool"]
    names = sorted(p.name for p in dataset.iterdir())
    assert names[:2] == ["_SUCCESS", "_kvtool_manifest.json"]
    # Each part sorted, the parts in key order: together ldb's scan, byte for byte.
    got = rows(dataset)
    assert [(r["key"], r["value"]) for r in got] == ldb_scan(db)
    assert all(r["columns"] is None for r in got)
    schema = pq.read_schema(dataset / manifest["parts"][0]["path"])
    assert schema.field("key").type == pa.binary() and schema.field("value").type == pa.binary()
    for part in manifest["parts"]:
        keys = pq.read_table(dataset / part["path"], columns=["key"])["key"].to_pylist()
        assert keys == sorted(keys) and len(keys) == part["records"]
        assert (keys[0].hex(), keys[-1].hex()) == (part["first_key"], part["last_key"])
        # Row groups are flushed as they fill: a part of 40 KB holds one at most 40 KB big.
        meta = pq.ParquetFile(dataset / part["path"]).metadata
        assert meta.num_row_groups >= 1


@pytest.mark.parametrize("mode", ["batch", "sst"])
def test_round_trip_export_import_export_is_identical(
    db: Path, dataset: Path, tmp_path: Path, mode: str
) -> None:
    copy = tmp_path / "copy"
    result = run_kvtool("import", "--create", "--mode", mode, copy, dataset)
    assert result.returncode == 0, result.stderr
    assert ldb_scan(copy) == ldb_scan(db)  # ldb reads what kvtool wrote
    again = tmp_path / "again"
    result = run_kvtool("export", copy, "--format", "parquet", "-o", again, "--part-size", "40KB")
    assert result.returncode == 0, result.stderr
    assert rows(again) == rows(dataset)


def test_utf8_formats_write_strings_and_keys_only_writes_keys(tmp_path: Path) -> None:
    db = ldb_load(tmp_path / "db", [(b"k1", "vé".encode()), (b"k2", b"")])
    out = tmp_path / "ds"
    args = ["--key-format", "utf8", "--value-format", "utf8"]
    result = run_kvtool("export", db, "--format", "parquet", "-o", out, *args)
    assert result.returncode == 0, result.stderr
    table = pads.dataset(out, format="parquet").to_table()
    assert table.schema.field("key").type == pa.string()
    assert table.select(["key", "value"]).to_pylist() == [
        {"key": "k1", "value": "vé"},
        {"key": "k2", "value": ""},
    ]
    # A string column comes back as its UTF-8 bytes.
    copy = tmp_path / "copy"
    assert run_kvtool("import", "--create", copy, out).returncode == 0
    assert ldb_scan(copy) == ldb_scan(db)
    keys = tmp_path / "keys"
    result = run_kvtool("export", db, "--format", "parquet", "-o", keys, "--keys-only")
    assert result.returncode == 0, result.stderr
    table = pads.dataset(keys, format="parquet").to_table()
    assert table.column_names == ["key"] and table["key"].to_pylist() == [b"k1", b"k2"]


WRITE_ENTITY = r"""
opts = rd.Options(raw_mode=True)
opts.create_if_missing(True)
db = rd.Rdict(sys.argv[1], opts)
db.put(b"a", b"plain")
db.put_entity(b"e", [b"", b"color", b"\xff"], [b"dflt", b"red", b"\x00"])
db.close()
"""


@pytest.mark.slow  # several kvtool runs
def test_wide_column_entities_are_a_columns_list_and_import_back(tmp_path: Path) -> None:
    db = tmp_path / "db"
    rocksdict_script(WRITE_ENTITY, db)
    out = tmp_path / "ds"
    result = run_kvtool("export", db, "--format", "parquet", "-o", out)
    assert result.returncode == 0, result.stderr
    got = rows(out)
    assert got[0] == {"key": b"a", "value": b"plain", "columns": None}
    assert got[1] == {
        "key": b"e",
        "value": None,
        "columns": [
            {"name": b"", "value": b"dflt"},
            {"name": b"color", "value": b"red"},
            {"name": b"\xff", "value": b"\x00"},
        ],
    }
    # The JSON Lines export of the same database names the same columns.
    jsonl = run_kvtool("export", db, "--value-format", "hex", "--key-format", "hex")
    entity = json.loads(jsonl.stdout.splitlines()[1])
    assert [(c["name"], c["value"]) for c in entity["columns"]] == [
        (c["name"].hex(), c["value"].hex()) for c in got[1]["columns"]
    ]
    copy = tmp_path / "copy"
    assert run_kvtool("import", "--create", copy, out).returncode == 0
    again = tmp_path / "again"
    assert run_kvtool("export", copy, "--format", "parquet", "-o", again).returncode == 0
    assert rows(again) == got


def test_partition_by_prefix_writes_hive_directories_engines_prune(
    db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    result = run_kvtool(
        "export", db, "--format", "parquet", "-o", out, "--partition-by-prefix", "1"
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.glob("prefix=*")) == ["prefix=61", "prefix=62", "prefix=ff"]
    query = (
        f"SELECT prefix, count(*) FROM read_parquet('{out}/**/*.parquet', hive_partitioning=true,"
        " hive_types={'prefix': VARCHAR}) GROUP BY prefix ORDER BY prefix"
    )
    assert duckdb.sql(query).fetchall() == [("61", 1500), ("62", 1200), ("ff", 300)]
    got = rows(out)
    assert [(r["key"], r["value"]) for r in got] == RECORDS
    copy = tmp_path / "copy"
    assert run_kvtool("import", "--create", copy, out).returncode == 0
    assert ldb_scan(copy) == RECORDS


@pytest.mark.slow  # several kvtool runs
def test_a_stopped_export_resumes_into_the_same_directory_without_duplicates(
    db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    # Paced: 3000 records at 300/s take 10 s at least. Ctrl-C lands once the first part file is
    # listed, so some records are written and most are not, however loaded the machine is.
    command = [kvtool_executable(), "export", str(db), "--format", "parquet", "-o", str(out),
               "--part-size", "20KB", "--rate", "300", "-q"]  # fmt: skip
    with subprocess.Popen(command, stderr=subprocess.PIPE) as process:
        manifest_path = out / "_kvtool_manifest.json"
        for _ in range(1200):  # a bounded wait for the condition, not a timing assumption
            with contextlib.suppress(OSError, ValueError):
                if json.loads(manifest_path.read_text())["parts"]:
                    break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    manifest = json.loads(manifest_path.read_text())
    assert manifest["state"] == "stopped" and not (out / "_SUCCESS").exists()
    cursor = manifest["cursor"]
    assert cursor and f"--after {cursor} -o {out}" in stderr.decode()
    done = rows(out)
    assert 0 < len(done) < len(RECORDS)
    # A killed run leaves an unfinished part and maybe a part the manifest does not list yet:
    # the resume removes both, so no record is there twice.
    (out / "part-00077.parquet.inprogress").write_bytes(b"junk")
    (out / "part-00078.parquet").write_bytes(b"junk")
    wrong = run_kvtool("export", db, "--format", "parquet", "-o", out, "--keys-only",
                       "--after", cursor)  # fmt: skip
    assert wrong.returncode == 2 and b"other options" in wrong.stderr
    resumed = run_kvtool("export", db, "--format", "parquet", "-o", out, "--part-size", "20KB",
                         "--after", cursor)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert [(r["key"], r["value"]) for r in rows(out)] == RECORDS
    assert not list(out.glob("*.inprogress")) and not (out / "part-00078.parquet").exists()
    (count,) = duckdb.sql(f"SELECT count(*) FROM '{out}/*.parquet'").fetchall()[0]
    assert count == len(RECORDS)
    manifest = json.loads((out / "_kvtool_manifest.json").read_text())
    assert [r["state"] for r in manifest["runs"]] == ["stopped", "complete"]
    assert (out / "_SUCCESS").exists()


def test_refusals(db: Path, dataset: Path, tmp_path: Path) -> None:
    busy = run_kvtool("export", db, "--format", "parquet", "-o", dataset)
    assert busy.returncode == 2 and b"is not empty" in busy.stderr
    stdout = run_kvtool("export", db, "--format", "parquet")
    assert stdout.returncode == 2 and b"give -o DIR" in stdout.stderr
    json_values = run_kvtool(
        "export", db, "-f", "parquet", "-o", tmp_path / "j", "--value-format", "json"
    )  # fmt: skip
    assert json_values.returncode == 2 and not (tmp_path / "j").exists()
    for result in (busy, stdout, json_values):
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith(b"kvtool: error: ")


HIDE_PYARROW = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("hidden by the test")
sys.meta_path.insert(0, Hide())
"""


def test_without_pyarrow_it_says_how_to_install_it(db: Path, dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(HIDE_PYARROW)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    for args in (
        ["export", db, "--format", "parquet", "-o", tmp_path / "ds"],
        ["import", "--create", tmp_path / "copy", dataset],
    ):
        result = run_kvtool(*args, env=env)
        assert result.returncode == 69, result.stderr
        assert result.stderr.splitlines() == [
            b"kvtool: error: Parquet needs pyarrow, which is not installed "
            b"(pip install 'kvtool[parquet]')"
        ]
    assert not (tmp_path / "ds").exists() and not (tmp_path / "copy").exists()


@pytest.mark.slow  # several kvtool runs
def test_import_reads_any_parquet_with_key_and_value_and_names_a_bad_row(tmp_path: Path) -> None:
    # Written by pyarrow, not kvtool: large strings and binaries, an extra column, no manifest.
    table = pa.table(
        {
            "key": pa.array(["k1", "k2", "ké"], pa.large_string()),
            "value": pa.array([b"\x00\xff", b"", b"v"], pa.large_binary()),
            "note": ["x", "y", "z"],
        }
    )
    source = tmp_path / "plain.data"  # known by its magic bytes, not its name
    pq.write_table(table, source)
    copy = tmp_path / "copy"
    result = run_kvtool("import", "--create", copy, source)
    assert result.returncode == 0, result.stderr
    assert ldb_scan(copy) == [(b"k1", b"\x00\xff"), (b"k2", b""), ("ké".encode(), b"v")]
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"key": [b"a", None, b"c"], "value": [b"1", b"2", b"3"]}), bad)
    result = run_kvtool("import", "--create", tmp_path / "other", bad, "--batch-records", "1")
    assert result.returncode == 65
    assert re.match(
        rb"kvtool: error: row 2: the key is null; committed 1 records from rows 1-1, "
        rb"nothing after row 1",
        result.stderr,
    ), result.stderr
    assert ldb_scan(tmp_path / "other") == [(b"a", b"1")]
    skipped = run_kvtool("import", "--on-error", "skip", tmp_path / "other", bad)
    assert skipped.returncode == 0 and ldb_scan(tmp_path / "other")[-1] == (b"c", b"3")


@pytest.mark.slow  # several kvtool runs
def test_the_fleet_recipe_in_docs_analytics_runs(tmp_path: Path) -> None:
    """docs/analytics.md's DuckDB code, run as written over three hosts' exports on two days
    (every column family but on the older day, partitioned by prefix)."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "analytics.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    code = next(b for b in blocks if "glob.glob" in b and "duckdb" in b)
    fleet = {
        ("2026-11-23", "web1"): {"acme": 2, "beta": 3},
        ("2026-11-30", "web1"): {"acme": 5, "beta": 3},
        ("2026-11-30", "web2"): {"gamma": 1},
    }
    for (day, host), tenants in fleet.items():
        records = sorted(
            (b"tenant:%s:%d" % (name.encode(), i), b"x")
            for name, n in tenants.items()
            for i in range(n)
        )
        db = ldb_load(tmp_path / f"{day}-{host}.db", records)
        # The same keys in a second column family: the recipe counts default's alone.
        ldb_ok(f"--db={db}", "create_column_family", "audit")
        ldb_load(db, records, "--column_family=audit")
        out = tmp_path / "kvstate" / f"date={day}" / f"host={host}"
        out.parent.mkdir(parents=True, exist_ok=True)
        # The older day's is a one-CF export (no cf column), as before a host took --all-cfs.
        cfs = ["--cf", "default"] if day == "2026-11-23" else ["--all-cfs"]
        exported = run_kvtool("export", db, "--format", "parquet", "-o", out, *cfs,
                              "--partition-by-prefix", "1")  # fmt: skip
        assert exported.returncode == 0, exported.stderr
    # A dataset still being written (no _SUCCESS) is left out.
    (tmp_path / "kvstate" / "date=2026-11-30" / "host=web3").mkdir()
    pq.write_table(
        pa.table({"key": [b"tenant:zeta:1"], "value": [b"x"]}),
        tmp_path / "kvstate" / "date=2026-11-30" / "host=web3" / "part-00000.parquet",
    )
    scope: dict[str, Any] = {}
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "docs/analytics.md", "exec"), scope)
    finally:
        os.chdir(cwd)
    assert scope["growth"] == [("acme", 3), ("gamma", 1)]


def test_an_empty_range_is_one_empty_part_that_engines_count_as_zero(
    db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    result = run_kvtool("export", db, "--format", "parquet", "-o", out, "--prefix", "nothing")
    assert result.returncode == 0, result.stderr
    assert duckdb.sql(f"SELECT count(*) FROM '{out}/*.parquet'").fetchall() == [(0,)]
    assert (out / "_SUCCESS").exists()


@pytest.fixture(scope="module")
def multi_sst_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RECORDS in three SST files (one ldb load each), so range workers get three chunks."""
    db = tmp_path_factory.mktemp("pq-multi") / "db"
    for first in (b"a", b"b", b"\xff"):
        ldb_load(db, [r for r in RECORDS if r[0][:1] == first])
    return db


def test_range_workers_write_each_chunk_as_parts_in_key_order(
    multi_sst_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    result = run_kvtool("export", multi_sst_db, "--format", "parquet", "-o", out, "--workers", "2")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "_kvtool_manifest.json").read_text())
    parts = manifest["parts"]
    # A part for each chunk that holds records: one a file at least (the last one cut finer for
    # the second worker), named in key order.
    assert len(parts) >= 3 and manifest["sequence"] > 0
    assert all(p["records"] > 0 for p in parts)
    assert [p["path"] for p in parts] == [f"part-{i:05d}.parquet" for i in range(len(parts))]
    assert not list(out.glob("chunk-*"))
    assert [(r["key"], r["value"]) for r in rows(out)] == ldb_scan(multi_sst_db) == RECORDS
    assert duckdb.sql(f"SELECT count(*) FROM '{out}/*.parquet'").fetchall() == [(len(RECORDS),)]


def test_a_stop_keeps_the_chunks_from_the_start_and_the_resume_adds_the_rest(
    multi_sst_db: Path, tmp_path: Path
) -> None:
    """What the parent keeps when workers stop out of order: chunk 0 stopped part-way (one of
    its parts closed), chunk 1 whole. Only chunk 0's closed part may stay; chunk 1's files go,
    and the cursor resumes right after chunk 0's part."""
    from kvtool.formats.dataset import Dataset
    from kvtool.formats.parquet import PartSchema
    from kvtool.formats.parts import Part, PartSeries
    from kvtool.ops.export_parquet_parallel import ParallelOutcome, _Chunk, keep_prefix
    from kvtool.stream import KeyRange, ReadSpec, ScanStats

    spec = ReadSpec(krange=KeyRange())
    schema = PartSchema("auto", "auto", keys_only=False)
    options = {
        "key_format": "auto",
        "value_format": "auto",
        "keys_only": False,
        "partition_by_prefix": None,
        "range": {"cf": "default", "start": None, "end": None, "prefix": None, "reverse": False},
    }
    out = tmp_path / "ds"
    dataset = Dataset(
        out, schema, options=options, meta={"sequence": 1}, resume_from=None,
        cursor_after=spec.cursor_after,
    )  # fmt: skip
    outcome = ParallelOutcome(plan=[None, None, None])  # type: ignore[list-item]
    chunks = {0: RECORDS[:1500], 1: RECORDS[1500:2700]}
    for number, records in chunks.items():
        parts: list[Part] = []
        names = iter(f"chunk-{number:05d}-{k:03d}.parquet" for k in range(1, 9))
        series = PartSeries(out, schema, name=lambda names=names: next(names), closed=parts.append)
        series.write(records[:1000])
        series.close()
        series.write(records[1000:])
        series.close()
        outcome.chunks[number] = _Chunk(
            parts=parts[:1] if number == 0 else parts, whole=number == 1
        )
    stats = ScanStats()
    assert not keep_prefix(dataset, outcome, stats)
    cursor = spec.cursor_after(stats.last_key)
    dataset.end(state="stopped", cursor=cursor)
    assert stats.records == 1000 and stats.last_key == RECORDS[999][0]
    assert sorted(p.name for p in out.iterdir()) == ["_kvtool_manifest.json", "part-00000.parquet"]
    # What a killed parent would leave: a worker's chunk file nobody listed.
    (out / "chunk-00001-001.parquet").write_bytes(b"junk")
    # The resume (range workers again) deletes the unlisted chunk file and adds the rest.
    resumed = run_kvtool("export", multi_sst_db, "--format", "parquet", "-o", out,
                         "--after", cursor, "--workers", "2")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert [(r["key"], r["value"]) for r in rows(out)] == RECORDS
    assert not list(out.glob("chunk-*"))
