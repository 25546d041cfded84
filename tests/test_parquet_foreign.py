"""Import of Parquet files other programs wrote (pyarrow with its own column types): a key or
value column that is dictionary-encoded or a string/binary view is still a string or binary
column and reads byte-exact; a `columns` column of another shape than list<struct<name, value>>
is bad input (exit 65, one line), never a crash. ldb reads back what the import wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import IN_CI, run_kvtool
from .oracles import ldb_scan

if not IN_CI:
    pytest.importorskip("pyarrow")
import pyarrow as pa
import pyarrow.parquet as pq

KEYS = ["a", "b", "c\u00e9"]
VALUES = ["1", "1", "3"]
EXPECTED = [(k.encode(), v.encode()) for k, v in zip(KEYS, VALUES, strict=True)]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (pa.array(KEYS).dictionary_encode(), pa.array(VALUES)),
        (pa.array(KEYS), pa.array(VALUES).dictionary_encode()),
        (pa.array(KEYS, pa.string_view()), pa.array(VALUES, pa.binary_view())),
        (pa.array(KEYS, pa.large_string()), pa.array(VALUES).cast(pa.large_binary())),
    ],
    ids=["dictionary-key", "dictionary-value", "views", "large"],
)
def test_string_and_binary_columns_of_any_arrow_encoding_import_exactly(
    tmp_path: Path, key: object, value: object
) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"key": key, "value": value}), source)
    result = run_kvtool("import", "--create", "-q", tmp_path / "db", source)
    assert result.returncode == 0, result.stderr
    assert ldb_scan(tmp_path / "db") == EXPECTED


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
