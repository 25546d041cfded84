"""Export and count speed against Debian's ldb on the same database, as ratios, in one run.

Usage: python bench/bench_export.py [--keys 2000000] [--value-size 100] [--runs 3] [--db PATH]

Generates the database once (kvtool generate; 14-byte keys k:000000000000), then takes the best of
--runs wall-clock times of each command with stdout to /dev/null:
  ldb scan              vs  kvtool export (JSON Lines)     target: <= 1.5x
  ldb dump --count_only vs  kvtool count                   target: <= 1.2x
kvtool's defaults use two range workers on this size of database; the same two commands with
--workers 1 show one process. For scale, the fixed cost of starting each tool: a count of a
10-record database. Then the engines against each other in one process (--workers 1): `export`
with `--engine python-rocksdb` (RocksDB 6.14; KVTOOL_ENGINE) vs the default engine, rocksdict
(--engine NAME compares another installed engine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

KVTOOL = str(Path(sys.executable).parent / "kvtool")


def best_of(runs: int, argv: list[str], engine: str | None = None) -> float:
    env = {**os.environ, "KVTOOL_ENGINE": engine} if engine else None
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env
        )
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2_000_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--engine", default="python-rocksdb", help="the engine to compare")
    args = parser.parse_args()
    ldb = shutil.which("ldb")
    if ldb is None:
        print("ldb is not installed (apt-get install rocksdb-tools)", file=sys.stderr)
        return 1
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
    ldb_base = [ldb, f"--db={db}", "--ignore_unknown_options"]
    pairs: list[tuple[str, list[str], list[str], float | None]] = [
        ("export", [*ldb_base, "scan"], [KVTOOL, "export", str(db), "-q"], 1.5),
        (
            "export hex (vs scan --hex)",
            [*ldb_base, "scan", "--hex"],
            [KVTOOL, "export", str(db), "-q", "--key-format", "hex", "--value-format", "hex"],
            1.5,
        ),
        ("count", [*ldb_base, "dump", "--count_only"], [KVTOOL, "count", str(db)], 1.2),
        # The same in one process (no range workers), for machines where they cannot help.
        (
            "export --workers 1",
            [*ldb_base, "scan"],
            [KVTOOL, "export", str(db), "-q", "--workers", "1"],
            1.5,
        ),
        (
            "count --workers 1",
            [*ldb_base, "dump", "--count_only"],
            [KVTOOL, "count", str(db), "--workers", "1"],
            1.2,
        ),
    ]
    tiny = Path("/tmp/kvtool-bench-10.db")
    if not tiny.exists():
        subprocess.run([KVTOOL, "generate", "--keys", "10", "-q", str(tiny)], check=True)
    pairs.append(
        (
            "startup (10-record count)",
            [ldb, f"--db={tiny}", "--ignore_unknown_options", "dump", "--count_only"],
            [KVTOOL, "count", str(tiny)],
            None,
        )
    )
    print(
        f"database: {db} ({args.keys} records, {args.value_size}-byte values), best of {args.runs}"
    )
    print(f"{'command':<28}{'ldb s':>8}{'kvtool s':>10}{'ratio':>8}{'target':>8}")
    for name, ldb_argv, kv_argv, target in pairs:
        t_ldb = best_of(args.runs, ldb_argv)
        t_kv = best_of(args.runs, kv_argv)
        ratio = t_kv / t_ldb
        if target is None:
            print(f"{name:<28}{t_ldb:>8.3f}{t_kv:>10.3f}{ratio:>8.1f}       -")
            continue
        verdict = "ok" if ratio <= target else "MISSED"
        print(f"{name:<28}{t_ldb:>8.3f}{t_kv:>10.3f}{ratio:>8.2f}{target:>7.1f}x {verdict}")
    print(f"{'engine (one process)':<28}{'rocksdict s':>12}{args.engine + ' s':>18}{'ratio':>8}")
    for name, argv in (
        ("export --workers 1", [KVTOOL, "export", str(db), "-q", "--workers", "1"]),
        ("count --workers 1", [KVTOOL, "count", str(db), "--workers", "1"]),
    ):
        t_default = best_of(args.runs, argv, "rocksdict")
        t_other = best_of(args.runs, argv, args.engine)
        print(f"{name:<28}{t_default:>12.3f}{t_other:>18.3f}{t_other / t_default:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
