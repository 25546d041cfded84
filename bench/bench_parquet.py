"""Parquet export against `ldb scan` and kvtool's JSON Lines export, in one run, with peak RSS.

Usage: python bench/bench_parquet.py [--keys 2000000] [--value-size 100] [--runs 3] [--db PATH]
       [--codecs]

Generates the database once as bench/bench_export.py does (kvtool generate; 14-byte keys
k:000000000000), then takes the best of --runs wall-clock times of each command (stdout to
/dev/null; each Parquet run into a new directory) and the largest peak RSS of each (the process
and the children it waited for: wait4's ru_maxrss):
  ldb scan                                   the reference
  kvtool export (JSON Lines, default workers)
  kvtool export --format parquet -o DIR      target: <= 1.0x ldb scan, peak RSS < 200 MB
Then it checks the dataset the way an analyst would: DuckDB's count(*) over DIR/*.parquet
equals `kvtool count`. CPU s is user + system time (best of --runs), steadier than wall time on
a busy machine. --codecs also rewrites the dataset with each Parquet codec and prints the write
CPU time and file size of each.

kvtool's bytecode is compiled first, as `pip install` does: with PYTHONDONTWRITEBYTECODE set
(or a read-only checkout) every run would compile kvtool's modules again, about 0.08 s that no
installed kvtool pays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KVTOOL = str(Path(sys.executable).parent / "kvtool")


def measure(argv: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes) and CPU seconds (user + system, with the children it
    waited for) of one run of `argv`."""
    began = time.perf_counter()
    with open(os.devnull, "wb") as null:
        process = subprocess.Popen(argv, stdout=null, stderr=subprocess.PIPE)
        assert process.stderr is not None
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - began
        err = process.stderr.read()
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv} failed ({process.returncode}): {err.decode()[-500:]}")
    return elapsed, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def compile_kvtool() -> None:
    """Write the bytecode of the kvtool the runs import (as installing it does)."""
    found = subprocess.run(
        [sys.executable, "-c", "import kvtool, os; print(os.path.dirname(kvtool.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    )
    subprocess.run([sys.executable, "-m", "compileall", "-q", found.stdout.strip()], check=True)


def best_of(runs: int, make_argv: object) -> tuple[float, int, float]:
    """The best wall time, the largest peak RSS and the least CPU time of `runs` runs."""
    times, peaks, cpus = [], [], []
    for i in range(runs):
        argv = make_argv(i) if callable(make_argv) else make_argv
        seconds, peak, cpu = measure(argv)  # type: ignore[arg-type]
        times.append(seconds)
        peaks.append(peak)
        cpus.append(cpu)
    return min(times), max(peaks), min(cpus)


CODECS: list[tuple[str, dict[str, object]]] = [
    ("snappy (kvtool's)", {"compression": "snappy"}),
    ("snappy, value stats", {"compression": "snappy", "write_statistics": True}),
    ("lz4", {"compression": "lz4"}),
    ("zstd level 1", {"compression": "zstd", "compression_level": 1}),
    ("zstd level 3", {"compression": "zstd", "compression_level": 3}),
    ("none", {"compression": "none"}),
]


def codecs(dataset: Path, runs: int) -> None:
    """Rewrite the dataset's rows with each codec as kvtool writes a part (no dictionary, key
    statistics only unless said, 16 MB row groups): CPU seconds of the writes (best of `runs`)
    and size."""
    import pyarrow.parquet as pq

    table = pq.read_table(sorted(str(p) for p in dataset.glob("*.parquet")))
    groups = table.to_batches(max_chunksize=140_000)  # ~16 MB of Arrow data
    out = dataset.parent / "codec.parquet"
    print(f"{'codec':20} {'write CPU s':>12} {'MB':>8}")
    for name, options in CODECS:
        best = float("inf")
        for _ in range(runs):
            began = time.process_time()
            with pq.ParquetWriter(
                str(out),
                table.schema,
                use_dictionary=False,
                **{"write_statistics": ["key"], **options},
            ) as writer:
                for group in groups:
                    writer.write_batch(group, row_group_size=group.num_rows)
            best = min(best, time.process_time() - began)
        print(f"{name:20} {best:12.3f} {out.stat().st_size / 1e6:8.1f}")
    out.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2_000_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument(
        "--codecs", action="store_true", help="also: write time and size of each codec"
    )
    args = parser.parse_args()
    ldb = shutil.which("ldb")
    if ldb is None:
        print("ldb is not installed (apt-get install rocksdb-tools)", file=sys.stderr)
        return 1
    try:
        import duckdb
    except ImportError:
        print("duckdb is not installed (pip install -e '.[test]')", file=sys.stderr)
        return 1
    compile_kvtool()
    db = args.db or Path(f"/tmp/kvtool-bench-{args.keys}-{args.value_size}.db")
    if not db.exists():
        print(f"generating {db} ...", file=sys.stderr)
        subprocess.run(
            [
                *(KVTOOL, "generate", "--keys", str(args.keys)),
                *("--value-size", str(args.value_size), "--key-prefix", "k:", "-q", str(db)),
            ],
            check=True,
        )
    work = Path(tempfile.mkdtemp(prefix="kvtool-bench-parquet-"))
    try:
        rows = [
            ("ldb scan", best_of(args.runs, [ldb, f"--db={db}", "scan"])),
            ("kvtool export (jsonl)", best_of(args.runs, [KVTOOL, "export", str(db), "-q"])),
            (
                "kvtool export --format parquet",
                best_of(
                    args.runs,
                    lambda i: [
                        *(KVTOOL, "export", str(db), "--format", "parquet"),
                        *("-o", str(work / f"ds{i}"), "-q"),
                    ],
                ),
            ),
        ]
        reference = rows[0][1][0]
        print(f"{'command':34} {'best s':>8} {'x ldb':>6} {'CPU s':>6} {'peak RSS MB':>12}")
        for name, (seconds, peak, cpu) in rows:
            print(
                f"{name:34} {seconds:8.2f} {seconds / reference:6.2f} {cpu:6.2f} {peak / 1e6:12.1f}"
            )
        counted = int(subprocess.run([KVTOOL, "count", str(db)], capture_output=True,
                                     check=True).stdout)  # fmt: skip
        (in_duckdb,) = duckdb.sql(f"select count(*) from '{work / 'ds0'}/*.parquet'").fetchall()[0]
        size = sum(p.stat().st_size for p in (work / "ds0").iterdir())
        print(f"duckdb count(*) {in_duckdb} == kvtool count {counted}: {in_duckdb == counted}")
        print(
            f"dataset: {size / 1e6:.1f} MB in {len(list((work / 'ds0').glob('*.parquet')))} parts"
        )
        if args.codecs:
            codecs(work / "ds0", args.runs)
        parquet_seconds, parquet_peak, _ = rows[2][1]
        ok = in_duckdb == counted and parquet_peak < 200e6
        print(f"targets: time <= 1.0x ldb scan: {parquet_seconds <= reference}; RSS < 200 MB: "
              f"{parquet_peak < 200e6}")  # fmt: skip
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
