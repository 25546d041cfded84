"""RSS growth of the library API when callers abandon reads without releasing them.

Usage: python bench/bench_handles.py [--cycles 10000]

Each cycle, through `kvtool.engine` on one open database, seeks an iterator and reads a batch,
starts a `batches()` generator, takes a snapshot, and walks away from all three without
`release()`; every third cycle raises mid-iteration. Handles nobody refers to are freed when the
collector takes them (kvtool/engine/handles.py), so RSS after the cycles should stay where it was
after a warm-up. Prints RSS (from /proc/self/status) before and after, and the handles still open;
asserts nothing (tests/test_engine_lifetimes.py asserts the handles).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from kvtool.engine import TRACER, OpenMode, open_db


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def cycle(db: object, i: int) -> None:
    it = db.iterator()  # type: ignore[attr-defined]
    it.seek(b"key:%05d" % (i % 5000))
    it.read_batch(3)
    batches = db.batches(batch_size=4)  # type: ignore[attr-defined]
    next(batches)
    db.snapshot().get(b"key:00001")  # type: ignore[attr-defined]
    if i % 3 == 0:
        raise ValueError("raised mid-iteration")


def run(db: object, cycles: int) -> None:
    for i in range(cycles):
        with contextlib.suppress(ValueError):
            cycle(db, i)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kvtool-bench-") as tmp:
        path = Path(tmp) / "db"
        with open_db(path, OpenMode.READ_WRITE, create=True) as db:
            for i in range(5000):
                db.put(b"key:%05d" % i, b"v" * 100)
            db.flush()
            run(db, 1000)  # warm-up: caches, allocator arenas
            before = rss_mib()
            run(db, args.cycles)
            after = rss_mib()
            left = len(TRACER.open_handles()) - 1  # the database itself
    print(f"cycles          {args.cycles}")
    print(f"RSS before      {before:.1f} MiB")
    print(f"RSS after       {after:.1f} MiB")
    print(f"growth          {after - before:+.1f} MiB")
    print(f"handles left    {left}")


if __name__ == "__main__":
    main()
