"""Where a Parquet export's CPU time goes, stage by stage, in one process (no workers).

Usage: python bench/parquet_stages.py [--db PATH] [--runs 3]

Runs the export's own pipeline (kvtool.stream.read_stage -> ScanStats -> PartSchema.batch ->
PartSeries) over the whole database four times, each adding one stage, and prints the least
CPU time (process_time: the writer thread included) of each over --runs, and the difference a
stage adds: read (rocksdict's entity stream, every column), +stats (record and byte counts),
+arrow (Arrow record batches), +write (row groups encoded, compressed and written). Then the
read alone without entity columns (rocksdict's items()), for the cost of carrying them. The
process tuning is the CLI's (kvtool.stream.memory). Default database: bench_parquet.py's.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from kvtool.engine import OpenMode, open_db
from kvtool.formats.parquet import PartSchema, use_system_allocator
from kvtool.formats.parts import PartSeries
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


if __name__ == "__main__":
    main()
