"""Parquet export of this kvtool against another checkout of it, in alternating runs.

Usage: python bench/parquet_ab.py BASE [--runs 10] [--db PATH]

BASE is a kvtool source tree (e.g. `git archive COMMIT | tar -x -C BASE`). Each round runs
`ldb scan`, then `kvtool export DB --format parquet -o DIR -q` with BASE's kvtool, then with this
one (PYTHONPATH picks the tree; both bytecode-compiled first), and prints the median and least wall
and CPU (user + system, with the workers) seconds of each. Alternating keeps a busy machine's
load about the same for both sides, which best-of-N runs taken one side after the other do not.
Default database: bench_parquet.py's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KVTOOL = str(Path(sys.executable).parent / "kvtool")
HERE = Path(__file__).resolve().parent.parent


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `argv` (stdout to /dev/null)."""
    began = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed")
    return time.perf_counter() - began, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--db", type=Path, default=Path("/tmp/kvtool-bench-2000000-100.db"))
    args = parser.parse_args()
    trees = {"base": args.base.resolve(), "this": HERE}
    for tree in trees.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "kvtool")], check=True)
    results: dict[str, list[tuple[float, float]]] = {"ldb scan": [], **{k: [] for k in trees}}
    for _ in range(args.runs):
        results["ldb scan"].append(run(["ldb", f"--db={args.db}", "scan"]))
        for name, tree in trees.items():
            work = tempfile.mkdtemp(prefix="kvtool-ab-")
            try:
                argv = [KVTOOL, "export", str(args.db), "--format", "parquet", "-o"]
                env = {**os.environ, "PYTHONPATH": str(tree)}
                results[name].append(run([*argv, f"{work}/ds", "-q"], env))
            finally:
                shutil.rmtree(work, ignore_errors=True)
    print(f"{'':10} {'wall median':>12} {'wall min':>9} {'CPU median':>11} {'CPU min':>8}")
    for name, runs in results.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(
            f"{name:10} {statistics.median(walls):12.3f} {min(walls):9.3f}"
            f" {statistics.median(cpus):11.3f} {min(cpus):8.3f}"
        )


if __name__ == "__main__":
    main()
