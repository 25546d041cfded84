"""Read batches cut by bytes: with huge values a batch holds a few records, not `batch_size`
(the memory of an export is a small multiple of its largest value, not of 1024 of them).

The databases come from their own writers (rocksdict with BlobDB options, RocksDB 6.14), and
each writer's own read is the oracle of the records."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kvtool.engine import Entity, Entry, OpenMode, open_db
from kvtool.stream import ReadSpec, ScanStats, Stopper, read_batches, record_stream

from .conftest import run_kvtool
from .oracles import (
    Spec,
    put,
    require_rocksdb614,
    rocksdb614_read,
    rocksdb614_write,
    rocksdict_script,
)

BUDGET = 64 * 1024

# Values of every size around the budget, in blob files (min_blob_size 1 KiB) and in SST
# blocks, and wide-column entities whose large column is not the default one.
WRITE_BLOBS = r"""
import random
opts = rd.Options(raw_mode=True)
opts.create_if_missing(True)
opts.set_enable_blob_files(True)
opts.set_min_blob_size(1024)
db = rd.Rdict(sys.argv[1], opts)
rnd = random.Random(15)
sizes = [10, 100, 5000, 30000, 70000, 200000, 3, 64 * 1024]
for i in range(120):
    db.put(b"r%03d" % i, rnd.randbytes(sizes[i % len(sizes)] + rnd.randrange(50)))
for i in range(6):
    db.put_entity(b"r%03de" % (i * 20), [b"", b"big"], [b"d", rnd.randbytes(40000 * i)])
db.flush()
for key, cols in db.entities():
    cells = [[name.hex(), value.hex()] for name, value in cols]
    print(json.dumps([key.hex(), cells]))
db.close()
"""


def _entry(key: bytes, cols: list[tuple[bytes, bytes]]) -> Entry:
    if len(cols) == 1 and not cols[0][0]:
        return key, cols[0][1]
    return key, Entity(tuple(cols))


@pytest.fixture(scope="module")
def blob_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Entry]]:
    """A BlobDB database rocksdict wrote, and every record as rocksdict reads it back."""
    db = tmp_path_factory.mktemp("bytes") / "blobs.db"
    out = rocksdict_script(WRITE_BLOBS, db)
    records = [
        _entry(bytes.fromhex(k), [(bytes.fromhex(n), bytes.fromhex(v)) for n, v in cells])
        for k, cells in map(json.loads, out.splitlines())
    ]
    assert len(records) == 126
    return db, records


def _size(record: Entry) -> int:
    key, value = record
    if isinstance(value, Entity):
        return len(key) + sum(len(n) + len(v) for n, v in value.columns)
    return len(key) + len(value)


def _check_cut(
    batches: Iterator[list[Entry]], batch_size: int, budget: int = BUDGET
) -> list[Entry]:
    """Every batch ends at the record that brings it to `budget`, or at `batch_size`, or at the
    end; returns the records, and fails unless some batch was cut by bytes."""
    seen: list[Entry] = []
    cut = 0
    for batch in batches:
        assert batch, "an empty batch before the end"
        assert sum(map(_size, batch[:-1])) < budget, [_size(r) for r in batch]
        if sum(map(_size, batch)) >= budget and len(batch) < batch_size:
            cut += 1
        seen += batch
    assert cut > 0
    return seen


def _plain(records: list[Entry]) -> list[Entry]:
    """Records as a read of default columns gives them (an entity's value: its default column)."""
    return [
        (k, dict(v.columns).get(b"", b"")) if isinstance(v, Entity) else (k, v) for k, v in records
    ]


@pytest.mark.parametrize("mode", [OpenMode.READ_ONLY, OpenMode.READ_WRITE])  # bulk, stepping
@pytest.mark.parametrize("columns", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
def test_read_batches_are_cut_by_bytes(
    blob_db: tuple[Path, list[Entry]], mode: OpenMode, columns: bool, reverse: bool
) -> None:
    db_path, records = blob_db
    expected = records if columns else _plain(records)
    expected = expected[::-1] if reverse else expected
    with open_db(db_path, mode) as db, db.iterator() as it:
        batches = read_batches(
            it, reverse=reverse, batch_size=50, batch_bytes=BUDGET, columns=columns
        )
        assert _check_cut(batches, 50) == expected


def test_the_record_stream_cuts_by_the_spec_budget(blob_db: tuple[Path, list[Entry]]) -> None:
    """A spec's `batch_bytes` (kept by a resumed spec) reaches the read; a resumed read
    continues exactly after its cursor."""
    db_path, records = blob_db
    assert ReadSpec().batch_bytes is not None
    spec = ReadSpec(batch_bytes=BUDGET)
    resumed = spec.with_cursor(spec.cursor_after(records[9][0]))
    assert resumed.batch_bytes == BUDGET
    for run, expected in ((spec, records), (resumed, records[10:])):
        with (
            open_db(db_path, OpenMode.READ_ONLY) as db,
            Stopper() as stopper,
            record_stream(db, run, ScanStats(), stopper) as batches,
        ):
            assert _check_cut(batches, run.batch_size) == expected


def test_python_rocksdb_engine_cuts_by_bytes(tmp_path: Path) -> None:
    """The RocksDB 6.14 engine (a writer of its own, read back by RocksDB 6.14 itself)."""
    require_rocksdb614()
    db = tmp_path / "614.db"
    sizes = [10, 1500, 100, 5000, 200]  # against a budget of 4 KiB
    ops = [put(b"k%03d" % i, bytes([i]) * sizes[i % len(sizes)]) for i in range(30)]
    rocksdb614_write(db, [ops], spec=Spec())
    expected = rocksdb614_read(db)
    assert len(expected) == 30
    with (
        open_db(db, OpenMode.READ_ONLY, engine="python-rocksdb") as handle,
        handle.iterator() as it,
    ):
        batches = read_batches(it, batch_size=20, batch_bytes=4096, columns=True)
        assert _check_cut(batches, 20, 4096) == expected


# -- Parquet with huge values ----------------------------------------------------------------------
WRITE_HUGE = r"""
import random
opts = rd.Options(raw_mode=True)
opts.create_if_missing(True)
opts.set_enable_blob_files(True)
opts.set_min_blob_size(4096)
db = rd.Rdict(sys.argv[1], opts)
rnd = random.Random(15)
for i in range(12):
    size = (9 << 20) + i if i % 4 == 1 else rnd.randrange(3 << 20)
    db.put(b"h%02d" % i, rnd.randbytes(size))
db.flush()
for key, value in db.items():
    print(key.hex(), hashlib.sha256(value).hexdigest(), len(value))
db.close()
"""


def test_parquet_export_of_huge_values_reads_back_byte_exact(tmp_path: Path) -> None:
    """Values over the read batch budget (a batch of one, which Arrow takes without a copy) and
    under it, from a BlobDB rocksdict wrote, read back by pyarrow as rocksdict reads them."""
    pq = pytest.importorskip("pyarrow.parquet")
    db = tmp_path / "huge.db"
    lines = rocksdict_script("import hashlib\n" + WRITE_HUGE, db).split()
    expected = [(bytes.fromhex(k), d, int(n)) for k, d, n in zip(*[iter(lines)] * 3, strict=True)]
    assert sum(n >= 8 << 20 for _, _, n in expected) == 3
    out = tmp_path / "ds"
    result = run_kvtool("export", db, "--format", "parquet", "-o", out, "--workers", "1", "-q")
    assert result.returncode == 0, result.stderr
    got = []
    for part in sorted(out.glob("*.parquet")):
        table = pq.read_table(part)
        for key, value in zip(table["key"].to_pylist(), table["value"].to_pylist(), strict=True):
            got.append((key, hashlib.sha256(value).hexdigest(), len(value)))
    assert got == expected


def test_arrow_takes_a_lone_huge_value_without_a_copy() -> None:
    pa = pytest.importorskip("pyarrow")
    from kvtool.formats.parquet import PartSchema

    schema = PartSchema("auto", "auto", keys_only=False)
    value = bytes(range(256)) * 8192  # 2 MiB
    batch = schema.batch([(b"k", value)])
    column = batch.column(1)
    assert column.to_pylist() == [value]
    assert column.buffers()[2].address == pa.py_buffer(value).address  # the same bytes
    small = schema.batch([(b"k", b"v"), (b"l", value)]).column(1)
    assert small.to_pylist() == [b"v", value]


def test_row_groups_of_huge_values_are_written_before_the_next_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row group of rows of a MiB or more is encoded before the next read (no overlap:
    both would hold copies of the largest value); small rows overlap as before."""
    pytest.importorskip("pyarrow")
    from kvtool.formats import parquet, parts

    waits: list[bool] = []
    write = parquet.PartWriter.write

    def spy(self: Any, batches: Any, *, wait: bool = False) -> None:
        waits.append(wait)
        write(self, batches, wait=wait)

    monkeypatch.setattr(parquet.PartWriter, "write", spy)
    schema = parquet.PartSchema("auto", "auto", keys_only=False)
    series = parts.PartSeries(
        tmp_path, schema, name=lambda: "p.parquet", closed=lambda p: None, row_group_bytes=4 << 20
    )
    series.write([(b"a%05d" % i, b"x" * 100) for i in range(50_000)])  # 5 MB: one row group
    series.write([(b"b", b"y" * (5 << 20))])
    series.close()
    assert waits == [False, True]


POOL = """
import sys
from kvtool.formats.arrow import pyarrow
pa, _ = pyarrow(numpy=sys.argv[1] == "library")
print(pa.default_memory_pool().backend_name)
"""


def test_kvtools_own_process_gives_arrow_malloc_and_a_library_caller_keeps_its_default() -> None:
    """Parquet's writer allocates from Arrow's default pool whatever pa.set_memory_pool says;
    mimalloc kept those buffers (three copies of the largest value) mapped."""
    pytest.importorskip("pyarrow")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    run = functools.partial(
        subprocess.run, capture_output=True, text=True, check=True, env=env, timeout=60
    )
    assert run([sys.executable, "-c", POOL, "cli"]).stdout.strip() == "system"
    assert run([sys.executable, "-c", POOL, "library"]).stdout.strip() != "system"


def test_parquet_import_reads_wide_rows_a_few_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of huge values is read a row or a few at a time, a row group at a time (pyarrow
    fills 8192-row batches across row groups); what is read is what pyarrow wrote."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from kvtool.formats import parquet_read as parquet
    from kvtool.formats.records import FieldFormat

    rows = [(b"k%02d" % i, bytes([i]) * (30_000 if i % 3 else 60_000)) for i in range(12)]
    wide = tmp_path / "wide.parquet"
    table = pa.table({"key": [k for k, _ in rows], "value": [v for _, v in rows]})
    pq.write_table(table, wide, row_group_size=5)  # row groups of 5, 5 and 2 rows
    narrow = tmp_path / "narrow.parquet"
    pq.write_table(pa.table({"key": [b"a", b"b"], "value": [b"1", b"2"]}), narrow)

    assert parquet._batch_rows(pq.ParquetFile(narrow).metadata, ["key", "value"], 8192) == 8192
    monkeypatch.setattr(parquet, "READ_BATCH_BYTES", 100_000)
    reader = pq.ParquetFile(wide)
    sizes = [b.num_rows for b in parquet._batches(reader, ["key", "value"], 8192)]
    # 100,000 bytes / the widest row group's rows (42,000 bytes on average): 2 rows a batch,
    # never across row groups (of 5, 5 and 2 rows)
    assert sizes == [2, 2, 1, 2, 2, 1, 2]
    got = list(parquet.read_records([wide, narrow], FieldFormat.AUTO, FieldFormat.AUTO))
    assert got == [(i + 1, k, v) for i, (k, v) in enumerate([*rows, (b"a", b"1"), (b"b", b"2")])]
