"""Import of Parquet files other programs wrote (pyarrow with its own column types): a key or
value column that is dictionary-encoded or a string/binary view is still a string or binary
column and reads byte-exact; a `columns` column of another shape than list<struct<name, value>>
is bad input (exit 65, one line), never a crash; a Ctrl-C during a Parquet import says to run it
again, not to fix the input. ldb reads back what the import wrote."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import IN_CI, dir_state, run_kvtool, run_stopped_by_deadline
from .oracles import ldb_load, ldb_scan

if not IN_CI:
    pytest.importorskip("pyarrow")
import pyarrow as pa
import pyarrow.parquet as pq

VALUES = ["1", "1", "3"]


def test_string_and_binary_columns_of_any_arrow_encoding_import_exactly(tmp_path: Path) -> None:
    """One directory of files (read by path), each with other Arrow types for key and value."""
    source = tmp_path / "in"
    source.mkdir()
    expected = []
    for n, name in enumerate(["dictionary-key", "dictionary-value", "views", "large"]):
        keys = [f"{name}/{k}" for k in ("a", "b", "c\u00e9")]
        key, value = pa.array(keys), pa.array(VALUES)
        if name == "dictionary-key":
            key = key.dictionary_encode()
        elif name == "dictionary-value":
            value = value.dictionary_encode()
        elif name == "views":
            key, value = key.cast(pa.string_view()), value.cast(pa.binary_view())
        else:
            key, value = key.cast(pa.large_string()), value.cast(pa.large_binary())
        pq.write_table(pa.table({"key": key, "value": value}), source / f"{n}.parquet")
        expected += [(k.encode(), v.encode()) for k, v in zip(keys, VALUES, strict=True)]
    result = run_kvtool("import", "--create", "-q", tmp_path / "db", source)
    assert result.returncode == 0, result.stderr
    assert ldb_scan(tmp_path / "db") == sorted(expected)


@pytest.mark.parametrize(
    "columns",
    [
        pa.array([1, 2]),
        pa.array([[{"n": "x", "v": "y"}], None]),
        pa.array([{"name": "x", "value": "y"}, None]),
        pa.array([[1], None]),
    ],
    ids=["int", "struct-without-name", "struct-not-list", "list-of-int"],
)
def test_a_columns_column_of_another_shape_is_bad_input(tmp_path: Path, columns: object) -> None:
    source = tmp_path / "in.parquet"
    table = pa.table({"key": ["a", "b"], "value": pa.array([None, "2"]), "columns": columns})
    pq.write_table(table, source)
    result = run_kvtool("import", "--create", "-q", tmp_path / "db", source)
    assert result.returncode == 65, result.stderr
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvtool: error: "), lines
    assert "columns" in lines[0]


# The import itself sends SIGINT after reading row argv[1], so the stop lands mid-input whatever
# the machine's speed (the guard defers it to the next batch boundary).
_INTERRUPT_AT_ROW = """
import os, signal, sys
import kvtool.ops.import_parquet as ip
from kvtool.cli.app import main

read = ip.read_records
row = int(sys.argv.pop(1))

def read_records(*args, **kwargs):
    for item in read(*args, **kwargs):
        yield item
        if item[0] == row:
            os.kill(os.getpid(), signal.SIGINT)

ip.read_records = read_records
sys.argv = ["kvtool", *sys.argv[1:]]
main()
"""


def test_ctrl_c_in_a_parquet_import_says_to_run_it_again_not_to_fix_the_input(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.parquet"
    rows = [(b"k%02d" % i, b"v%d" % i) for i in range(20)]
    pq.write_table(pa.table({"key": [k for k, _ in rows], "value": [v for _, v in rows]}), source)
    db = tmp_path / "db"
    args = ["import", "--create", "-q", "--batch-records", "2", db, source]
    stopped = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_AT_ROW, "5", *map(str, args)],
        capture_output=True,
        timeout=120,
    )
    assert stopped.returncode == 130, stopped.stderr
    message = stopped.stderr.decode()
    assert message.count("\n") == 1 and message.startswith("kvtool: error: interrupted"), message
    assert "fix the input" not in message and "run the same import again" in message
    committed = ldb_scan(db)
    assert 0 < len(committed) < len(rows) and f"committed {len(committed)} records" in message
    assert committed == rows[: len(committed)]
    again = run_kvtool(*args)
    assert again.returncode == 0, again.stderr
    assert ldb_scan(db) == rows


def test_a_dataset_whose_export_stopped_is_refused_not_imported_as_complete(
    tmp_path: Path,
) -> None:
    """A stopped export's DIR has complete part files but not every record: no _SUCCESS, its
    manifest's state is "stopped". An import of it that exits 0 would lose the rest silently."""
    records = [(b"k%04d" % i, b"v") for i in range(3000)]
    db = ldb_load(tmp_path / "src", records)
    out = tmp_path / "ds"
    stopped = _stopped_export(db, out)
    assert stopped.returncode == 124, stopped.stderr
    assert any(out.glob("part-*.parquet"))
    copy = tmp_path / "copy"
    refused = run_kvtool("import", "--create", copy, out)
    assert refused.returncode == 65, refused.stderr
    message = refused.stderr.decode()
    assert message.count("\n") == 1 and "did not complete" in message, message
    assert "--after" in message
    assert not copy.exists()
    cursor = json.loads((out / "_kvtool_manifest.json").read_text())["cursor"]
    finished = run_kvtool("export", db, "--format", "parquet", "-o", out, "-q", "--after", cursor)
    assert finished.returncode == 0, finished.stderr
    imported = run_kvtool("import", "--create", "-q", copy, out)
    assert imported.returncode == 0, imported.stderr
    assert ldb_scan(copy) == records


def _stopped_export(db: Path, out: Path) -> subprocess.CompletedProcess[bytes]:
    """A Parquet export of `db` into `out` that --timeout stops after its first part (paced at
    2000 records/s, before the 3000th record; run again slower if the open outlasted it)."""

    def wrote(result: subprocess.CompletedProcess[bytes]) -> bool:
        if any(out.glob("part-*.parquet")):
            return True
        shutil.rmtree(out, ignore_errors=True)
        return False

    args = ["export", db, "--format", "parquet", "-o", out, "-q", "--part-size", "4KB"]
    return run_stopped_by_deadline(*args, rate=2000, timeout=0.3, wrote=wrote)


def test_a_resume_from_another_database_is_refused(tmp_path: Path) -> None:
    """The cursor names a key, not a database: another database's records after it would join
    the dataset as the rest of the first, with _SUCCESS and exit 0. The manifest keeps the
    database's IDENTITY and a resume must match it."""
    records = [(b"k%04d" % i, b"v") for i in range(3000)]
    db = ldb_load(tmp_path / "src", records)
    other = ldb_load(tmp_path / "other", [(b"k%04d" % i, b"other") for i in range(3000)])
    out = tmp_path / "ds"
    assert _stopped_export(db, out).returncode == 124
    before = dir_state(out)
    cursor = json.loads((out / "_kvtool_manifest.json").read_text())["cursor"]
    args = ["--format", "parquet", "-o", out, "-q", "--after", cursor]
    refused = run_kvtool("export", other, *args)
    assert refused.returncode == 2, refused.stderr
    message = refused.stderr.decode()
    assert message.count("\n") == 1 and "another database" in message, message
    assert dir_state(out) == before
    finished = run_kvtool("export", db, *args)
    assert finished.returncode == 0, finished.stderr
    copy = tmp_path / "copy"
    assert run_kvtool("import", "--create", "-q", copy, out).returncode == 0
    assert ldb_scan(copy) == records


def test_a_dataset_exported_as_hex_or_base64_text_imports_as_the_bytes(tmp_path: Path) -> None:
    """An export with --key-format hex --value-format base64 stores the text of those encodings,
    and its manifest says so: an import without the formats must not store that text as the
    keys and values (exit 0 with every record wrong); formats that contradict it are refused."""
    records = [(b"", b"empty key"), (b"\x00\xff", b""), (b"k1", b"\xff\xfe")]
    db = ldb_load(tmp_path / "src", records)
    out = tmp_path / "ds"
    args = ["--key-format", "hex", "--value-format", "base64"]
    exported = run_kvtool("export", db, "--format", "parquet", "-o", out, "-q", *args)
    assert exported.returncode == 0, exported.stderr
    for extra in ([], args):
        copy = tmp_path / f"copy{len(extra)}"
        imported = run_kvtool("import", "--create", "-q", copy, out, *extra)
        assert imported.returncode == 0, imported.stderr
        assert ldb_scan(copy) == records
    for wrong in (["--key-format", "utf8"], ["--value-format", "hex"]):
        refused = run_kvtool("import", "--create", tmp_path / "other", out, *wrong)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.count(b"\n") == 1 and b"--key-format hex" in refused.stderr
        assert not (tmp_path / "other").exists()
    # One part file read alone, with no manifest beside it: its schema metadata says the same.
    (part,) = out.glob("part-*.parquet")
    alone = tmp_path / "alone.parquet"
    shutil.copy(part, alone)
    imported = run_kvtool("import", "--create", "-q", tmp_path / "from_file", alone)
    assert imported.returncode == 0, imported.stderr
    assert ldb_scan(tmp_path / "from_file") == records
    refused = run_kvtool("import", "--create", tmp_path / "other", alone, "--key-format", "utf8")
    assert refused.returncode == 2 and b"--key-format hex" in refused.stderr, refused.stderr


def test_a_stop_in_the_second_column_family_of_an_sst_import_names_the_first_as_ingested(
    tmp_path: Path,
) -> None:
    """--mode sst ingests each column family when its pass ends: a stop in the pass of `b` must
    not say "nothing was imported" while `a` is in the database."""
    source = tmp_path / "in.parquet"
    keys = [b"k%d" % i for i in range(5)]
    table = {"cf": ["a"] * 5 + ["b"] * 5, "key": keys * 2, "value": [b"v"] * 10}
    pq.write_table(pa.table(table), source)
    db = tmp_path / "db"
    args = ["import", "--create", "--mode", "sst", "-q", db, source]
    stopped = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_AT_ROW, "8", *map(str, args)],
        capture_output=True,
        timeout=120,
    )
    assert stopped.returncode == 130, stopped.stderr
    message = stopped.stderr.decode()
    assert message.count("\n") == 1 and "nothing was imported" not in message, message
    assert "nothing of column family 'b' was imported, but the 5 records" in message
    assert ldb_scan(db, "--column_family=a") == [(k, b"v") for k in keys]
    assert ldb_scan(db, "--column_family=b") == []
    again = run_kvtool(*args)
    assert again.returncode == 0, again.stderr
    assert ldb_scan(db, "--column_family=b") == [(k, b"v") for k in keys]


def test_rows_with_a_value_and_columns_are_bad_and_an_all_null_value_column_is_read(
    tmp_path: Path,
) -> None:
    """As in JSON Lines, a row with both a value and columns is bad input (importing one of them
    would drop the other with exit 0). A `value` column of Arrow type null (DuckDB writes one for
    an all-NULL column) is a file of entities, not a bad schema."""
    both = tmp_path / "both.parquet"
    cell = [{"name": "a", "value": "x"}]
    pq.write_table(
        pa.table({"key": ["p", "e"], "value": ["v", "w"], "columns": [None, cell]}), both
    )
    refused = run_kvtool("import", "--create", tmp_path / "db", both)
    assert refused.returncode == 65, refused.stderr
    assert b"row 2: a row has a value and columns, not both" in refused.stderr
    entities = tmp_path / "entities.parquet"
    cells = [[{"name": "x", "value": "1"}], [{"name": "y", "value": "2"}]]
    pq.write_table(pa.table({"key": ["a", "b"], "value": pa.nulls(2), "columns": cells}), entities)
    copy = tmp_path / "copy"
    imported = run_kvtool("import", "--create", "-q", copy, entities)
    assert imported.returncode == 0, imported.stderr
    exported = run_kvtool("export", copy, "-q")
    assert exported.stdout.decode().splitlines() == [
        '{"key":"a","columns":[{"name":"x","value":"1"}]}',
        '{"key":"b","columns":[{"name":"y","value":"2"}]}',
    ]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"]), pa.array(["v"])],
                                 names=["key", "key", "value"]),
            b"the column 'key' appears 2 times",
        ),
        (pa.table({"cf": [1], "key": ["a"], "value": ["v"]}), b"column 'cf' is int64"),
        (pa.table({"cf": [b"\xff"], "key": ["a"], "value": ["v"]}), b"column 'cf' is binary"),
    ],
    ids=["duplicate-key-column", "int-cf", "binary-cf"],
)  # fmt: skip
def test_a_duplicate_column_or_a_cf_column_of_no_names_is_bad_input(
    tmp_path: Path, table: object, message: bytes
) -> None:
    """Columns pyarrow writes but kvtool cannot read unambiguously: exit 65, one line (they
    crashed with exit 70: a KeyError, and a column family named by an int or bytes)."""
    source = tmp_path / "in.parquet"
    pq.write_table(table, source)
    result = run_kvtool("import", "--create", tmp_path / "db", source)
    assert result.returncode == 65, result.stderr
    assert result.stderr.count(b"\n") == 1 and message in result.stderr, result.stderr


def test_a_dataset_partitioned_by_cf_in_directory_names_is_refused_not_merged(
    tmp_path: Path,
) -> None:
    """DuckDB's PARTITION_BY (cf) keeps the column family in `cf=NAME/` only: imported into one
    column family, equal keys of two CFs would merge (the last value winning) with exit 0."""
    if not IN_CI:
        pytest.importorskip("duckdb")
    import duckdb

    out = tmp_path / "hive"
    duckdb.sql(
        "COPY (SELECT 'k' || (i // 2) AS key, 'v' || i AS value, "
        "CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END AS cf FROM range(6) t(i)) "
        f"TO '{out}' (FORMAT parquet, PARTITION_BY (cf))"
    )
    db = tmp_path / "db"
    refused = run_kvtool("import", "--create", db, out)
    assert refused.returncode == 65, refused.stderr
    assert refused.stderr.count(b"\n") == 1 and b"--cf NAME" in refused.stderr
    assert not db.exists()
    for cf, first in (("a", 0), ("b", 1)):
        one = run_kvtool("import", "--create", "-q", "--cf", cf, db, out / f"cf={cf}")
        assert one.returncode == 0, one.stderr
        want = [(b"k%d" % (i // 2), b"v%d" % i) for i in range(first, 6, 2)]
        assert ldb_scan(db, f"--column_family={cf}") == want
