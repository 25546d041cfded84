"""Measure the maintenance commands: verify against `ldb scan` on the same database, how fast
a busy database is refused, and how fast SIGTERM stops a rate-limited compaction.

    python bench/maintenance.py [--keys 2000000] [--trials 5]

Prints measurements; asserts nothing (tests do not time things).
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KVTOOL = str(Path(sys.executable).parent / "kvtool")


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def best(cmd: list[str], trials: int) -> float:
    return min(timed(cmd) for _ in range(trials))


def churned(path: Path, keys: int) -> None:
    """Three overlapping L0 files (under RocksDB's automatic trigger of 4) of `keys` records of
    400 bytes: a manual compaction with work to do."""
    from kvtool.engine import OpenMode, open_db

    rnd = random.Random(1)
    with open_db(path, OpenMode.READ_WRITE, create=True) as db:
        for _ in range(3):
            with db.write_batch() as batch:
                for i in range(keys):
                    batch.put(b"key:%08d" % i, rnd.randbytes(400))
                db.write(batch)
            db.flush()


def sigterm_latency(db: Path) -> tuple[int, float]:
    proc = subprocess.Popen(
        [KVTOOL, "compact", "--io-rate", "200KB", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    while b"running" not in proc.stderr.readline():
        pass
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.stderr.read()
    code = proc.wait()
    return code, time.perf_counter() - started


def busy_latency(db: Path) -> tuple[int, float]:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom kvtool.engine import open_db, OpenMode\n"
            "with open_db(sys.argv[1], OpenMode.READ_WRITE):\n"
            "    print('ready', flush=True); sys.stdin.read()\n",
            str(db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdin is not None
    holder.stdout.readline()
    try:
        started = time.perf_counter()
        code = subprocess.run([KVTOOL, "compact", "-q", str(db)], capture_output=True).returncode
        return code, time.perf_counter() - started
    finally:
        holder.stdin.close()
        holder.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=2_000_000)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    ldb = shutil.which("ldb")
    with tempfile.TemporaryDirectory(prefix="kvtool-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        subprocess.run(
            [KVTOOL, "generate", "-q", "--keys", str(args.keys), "--value-size", "100", str(db)],
            check=True,
        )
        verify = best([KVTOOL, "verify", "-q", str(db)], args.trials)
        digest = best([KVTOOL, "verify", "-q", "--digest", str(db)], args.trials)
        print(f"verify, {args.keys} records:          {verify:.2f} s")
        print(f"verify --digest:                     {digest:.2f} s")
        if ldb:
            scan = best([ldb, f"--db={db}", "--ignore_unknown_options", "scan"], args.trials)
            print(f"ldb scan:                            {scan:.2f} s")
            print(f"verify / ldb scan:                   {verify / scan:.2f}x")
            print(f"verify --digest / ldb scan:          {digest / scan:.2f}x")
        code, busy = busy_latency(db)
        print(f"compact on a held database:          exit {code} after {busy:.3f} s")
        long_db = Path(tmp) / "long.db"
        churned(long_db, 20_000)
        runs = [sigterm_latency(long_db) for _ in range(args.trials)]
        codes = sorted({c for c, _ in runs})
        latencies = [t for _, t in runs]
        print(
            f"SIGTERM during compaction:           exit {codes} after "
            f"median {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s"
        )


if __name__ == "__main__":
    main()
