"""Where a Parquet export's CPU time goes, stage by stage, in one process (no workers).

Usage: python bench/parquet_stages.py [--db PATH] [--runs 3]

Runs the export's own pipeline (kvtool.stream.read_stage -> ScanStats -> PartSchema.batch ->
PartSeries) over the whole database four times, each adding one stage, and prints the least
CPU time (process_time: the writer thread included) of each over --runs, and the difference a
stage adds: read (rocksdict's entity stream, every column), +stats (record and byte counts),
+arrow (Arrow record batches), +write (row groups encoded, compressed and written). Then the
read alone without entity columns (rocksdict's items()), for the cost of carrying them. The
process tuning is the CLI's (kvtool.stream.memory). Default database: bench_parquet.py's.

Last, the floor of any export written in Python over rocksdict, with none of kvtool's code:
rocksdict's keys() stream alone (RocksDB's iteration and one bytes object a record), and its
entity stream straight into Arrow arrays and Parquet row groups (snappy, as kvtool writes).
Half of the latter, on two fully busy cores, is the least such an export's reading and
writing can take; compare it with `ldb scan`'s time in bench_parquet.py.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import rocksdict

from kvtool.engine import OpenMode, open_db
from kvtool.formats.parquet import PartSchema, use_system_allocator
from kvtool.formats.parts import ROW_GROUP_BYTES, PartSeries
from kvtool.stream import ReadSpec, ScanStats, read_stage
from kvtool.stream.memory import allow_process_tuning, collect_less, keep_freed_memory

STAGES = ["read", "+stats", "+arrow", "+write"]


def run(
    db_path: Path, stage: int, schema: PartSchema, *, columns: bool = True, batch_size: int = 1024
) -> float:
    """CPU seconds of one pass over the database through the first `stage` + 1 stages."""
    work = Path(tempfile.mkdtemp(prefix="kvtool-stages-"))
    try:
        with open_db(db_path, OpenMode.READ_ONLY) as db:
            began = time.process_time()
            stats = ScanStats()
            series = PartSeries(work, schema, name=lambda: "part.parquet", closed=lambda p: None)
            with read_stage(db, ReadSpec(columns=columns, batch_size=batch_size)) as batches:
                for batch in batches:
                    if stage >= 1:
                        stats.add(batch)
                    if stage == 2:
                        schema.batch(batch)
                    if stage >= 3:
                        series.write(batch)
            series.close()
            return time.process_time() - began
    finally:
        shutil.rmtree(work, ignore_errors=True)


def floor(db_path: Path, schema: PartSchema) -> tuple[float, float]:
    """CPU seconds of rocksdict's keys() stream alone, and of its entity stream written as
    Parquet with nothing else (every record plain, as in the benchmark's database)."""
    first, second = itemgetter(0), itemgetter(1)
    db = rocksdict.Rdict(
        str(db_path),
        options=rocksdict.Options(raw_mode=True),
        access_type=rocksdict.AccessType.read_only(),
    )
    work = Path(tempfile.mkdtemp(prefix="kvtool-floor-"))
    try:
        began = time.process_time()
        for _ in db.keys():  # noqa: SIM118 (the keys() stream is what is measured)
            pass
        keys_only = time.process_time() - began
        began = time.process_time()
        writer = pq.ParquetWriter(
            str(work / "floor.parquet"),
            schema.arrow,
            compression="snappy",
            use_dictionary=False,
            write_statistics=["key"],
        )
        stream = db.entities()
        nulls = schema.arrow.field("columns").type
        group: list[pa.RecordBatch] = []
        buffered = 0
        while raw := list(islice(stream, ReadSpec.batch_size)):
            cells = list(chain.from_iterable(map(second, raw)))
            arrays = [
                pa.array(list(map(first, raw)), pa.binary()),
                pa.array(list(map(second, cells)), pa.binary()),
                pa.nulls(len(raw), nulls),
            ]
            group.append(pa.RecordBatch.from_arrays(arrays, schema=schema.arrow))
            buffered += group[-1].nbytes
            if buffered >= ROW_GROUP_BYTES:  # row groups as kvtool's part files hold them
                writer.write_table(pa.Table.from_batches(group))
                group, buffered = [], 0
        if group:
            writer.write_table(pa.Table.from_batches(group))
        writer.close()
        return keys_only, time.process_time() - began
    finally:
        db.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/kvtool-bench-2000000-100.db"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=ReadSpec.batch_size)
    args = parser.parse_args()
    allow_process_tuning()
    collect_less()
    keep_freed_memory()
    schema = PartSchema("auto", "auto", keys_only=False)
    use_system_allocator()
    best = [float("inf")] * len(STAGES)
    plain = float("inf")
    for _ in range(args.runs):
        for stage in range(len(STAGES)):
            best[stage] = min(best[stage], run(args.db, stage, schema, batch_size=args.batch_size))
        plain = min(plain, run(args.db, 0, schema, columns=False, batch_size=args.batch_size))
    before = 0.0
    print(f"{'stage':10} {'CPU s':>7} {'adds':>7}")
    for name, seconds in zip(STAGES, best, strict=True):
        print(f"{name:10} {seconds:7.3f} {seconds - before:7.3f}")
        before = seconds
    print(f"read without entity columns (items()): {plain:.3f} s")
    keys_only, written = map(min, *(floor(args.db, schema) for _ in range(args.runs)))
    print(
        f"floor: rocksdict keys() alone {keys_only:.3f} s; entity stream to Parquet {written:.3f} s"
    )
    print(f"       on 2 fully busy cores at least {written / 2:.3f} s, before start-up")


if __name__ == "__main__":
    main()
