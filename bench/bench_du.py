"""`kvtool du` speed against `kvtool export` on the same database, and `du --sample` against the
exact run: time and whether each per-prefix estimate is within the error it states.

Usage: python bench/bench_du.py [--keys 2000000] [--runs 3] [--db PATH] [--depth 11]

Generates the database once (kvtool generate; keys key:000000000000), then takes the best of --runs
wall-clock times with stdout to /dev/null:
  kvtool export             vs  kvtool du (exact)            target: <= 1.2x
  kvtool du (exact)         vs  kvtool du --sample 0.01      target: < 0.1x
--depth 11 groups the 2M keys into 20 prefixes of 100,000 records.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KVTOOL = str(Path(sys.executable).parent / "kvtool")


def best_of(runs: int, argv: list[str]) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--depth", type=int, default=11)
    parser.add_argument("--fraction", type=float, default=0.01)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        if not db.exists():
            subprocess.run([KVTOOL, "generate", "--keys", str(args.keys), str(db)], check=True)
        depth = ["--depth", str(args.depth)]
        export = best_of(args.runs, [KVTOOL, "export", str(db)])
        exact = best_of(args.runs, [KVTOOL, "du", "--json", *depth, str(db)])
        sample = best_of(
            args.runs, [KVTOOL, "du", "--json", *depth, "--sample", str(args.fraction), str(db)]
        )
        truth = json.loads(
            subprocess.run(
                [KVTOOL, "du", "--json", "--groups", "1000", *depth, str(db)],
                capture_output=True,
                check=True,
            ).stdout
        )
        outside = checked = 0
        for seed in range(args.runs):
            estimate = json.loads(
                subprocess.run(
                    [
                        KVTOOL,
                        "du",
                        "--json",
                        "--groups",
                        "1000",
                        *depth,
                        "--seed",
                        str(seed),
                        "--sample",
                        str(args.fraction),
                        str(db),
                    ],
                    capture_output=True,
                    check=True,
                ).stdout
            )
            exact_bytes = {
                json.dumps(p["prefix"]): p["bytes"] for p in truth["column_families"][0]["prefixes"]
            }
            for p in estimate["column_families"][0]["prefixes"]:
                checked += 1
                real = exact_bytes.get(json.dumps(p["prefix"]), 0)
                if abs(p["bytes"] - real) > (p["bytes_error"] or 0):
                    outside += 1
        print(f"export            {export:7.2f} s")
        print(
            f"du (exact)        {exact:7.2f} s   {exact / export:5.2f}x export   (target <= 1.2x)"
        )
        print(
            f"du --sample {args.fraction:<5g} {sample:7.2f} s   {sample / exact:5.2f}x exact    "
            "(target < 0.1x)"
        )
        print(f"estimates outside their stated error: {outside} of {checked} prefixes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
