"""How close `export --rate R` (and `--bytes-rate`) holds its target over a few seconds.

Usage: python bench/bench_rate.py [--seconds 4] [--db PATH]

For each target, runs `kvtool export --rate R --timeout Ns --stats json` on a generated database
and reports the achieved rate from the run's own stats (records / elapsed) and from the wall clock
around the whole process (start-up included). The target: within a few percent (README, "--rate N
holds its target").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import orjson

KVTOOL = str(Path(sys.executable).parent / "kvtool")


def run(db: Path, seconds: float, *limit: str) -> tuple[dict[str, float], float]:
    began = time.perf_counter()
    result = subprocess.run(
        [KVTOOL, "export", str(db), "--timeout", f"{seconds}s", "--stats", "json", *limit],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    wall = time.perf_counter() - began
    if result.returncode not in (0, 124):
        raise SystemExit(result.stderr.decode())
    line = next(x for x in result.stderr.splitlines() if x.startswith(b"{"))
    stats: dict[str, float] = orjson.loads(line)
    return stats, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--db", type=Path, default=Path("/tmp/kvtool-bench-rate.db"))
    args = parser.parse_args()
    if not args.db.exists():
        subprocess.run(
            [KVTOOL, "generate", "--keys", "1000000", "--value-size", "100", "-q", str(args.db)],
            check=True,
        )
    print(f"{'limit':<24}{'target/s':>12}{'achieved/s':>12}{'error':>8}{'wall/s':>12}")
    worst = 0.0
    for rate in (100, 1_000, 10_000, 100_000):
        stats, wall = run(args.db, args.seconds, "--rate", str(rate))
        achieved = stats["records"] / stats["elapsed_s"]
        error = achieved / rate - 1
        worst = max(worst, abs(error))
        print(
            f"{'--rate ' + str(rate):<24}{rate:>12,}{achieved:>12,.0f}{error:>+8.1%}"
            f"{stats['records'] / wall:>12,.0f}"
        )
    for size, target in (("100KB", 100_000), ("2MB", 2_000_000), ("10MB", 10_000_000)):
        stats, wall = run(args.db, args.seconds, "--bytes-rate", size)
        total = stats["key_bytes"] + stats["value_bytes"]
        achieved = total / stats["elapsed_s"]
        error = achieved / target - 1
        worst = max(worst, abs(error))
        print(
            f"{'--bytes-rate ' + size:<24}{target:>12,}{achieved:>12,.0f}{error:>+8.1%}"
            f"{total / wall:>12,.0f}"
        )
    print(f"worst error {worst:.1%} ({'within' if worst <= 0.05 else 'OUTSIDE'} 5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
