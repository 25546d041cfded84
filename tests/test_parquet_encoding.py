"""How kvtool encodes its Parquet part files (kvtool.formats.parquet.PartWriter): Snappy pages,
min/max statistics on `key` for every row group, so that DuckDB and Spark skip row groups and
files outside a key range, and none on `value` (unsorted values seldom let a row group's range
exclude anything, and computing them was 6% of the write time). The database is ldb's; pyarrow
reads the footers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import IN_CI, run_kvtool
from .oracles import ldb_load, ldb_scan

if not IN_CI:
    pytest.importorskip("pyarrow")
    pytest.importorskip("duckdb")
import duckdb
import pyarrow.parquet as pq

RECORDS = [(b"k%05d" % i, b"v" * (i % 50)) for i in range(3000)] + [(b"\xff\x01", b"last")]


def test_key_statistics_bound_each_row_group_and_duckdb_prunes_by_them(tmp_path: Path) -> None:
    db = ldb_load(tmp_path / "db", RECORDS)
    out = tmp_path / "ds"
    result = run_kvtool("export", db, "--format", "parquet", "-o", out, "--part-size", "20KB")
    assert result.returncode == 0, result.stderr
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) > 1
    keys = [key for key, _ in ldb_scan(db)]
    seen: list[bytes] = []
    for part in parts:
        meta = pq.ParquetFile(part).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            columns = {group.column(c).path_in_schema: group.column(c) for c in range(3)}
            assert columns["key"].compression == "SNAPPY"
            stats = columns["key"].statistics
            assert stats is not None and stats.has_min_max
            rows = pq.ParquetFile(part).read_row_group(g, columns=["key"])["key"].to_pylist()
            assert (stats.min, stats.max) == (rows[0], rows[-1])
            assert columns["value"].statistics is None or not columns["value"].is_stats_set
            seen += rows
    assert seen == keys
    # A key range reads only the files whose statistics overlap it.
    query = f"SELECT count(*) FROM '{out}/*.parquet' WHERE key >= 'k01000'::BLOB"
    query += " AND key < 'k01010'::BLOB"
    assert duckdb.sql(query).fetchall() == [(10,)]
    # DuckDB 2.0 says how many row groups it read (older ones do not say): one of them.
    plan = duckdb.sql("EXPLAIN ANALYZE " + query).fetchall()[0][1]
    scanned = re.search(r"Row Groups Scanned: (\d+) / (\d+)", plan)
    if scanned is not None:
        assert scanned.group(1) == "1" and int(scanned.group(2)) > 1, plan
