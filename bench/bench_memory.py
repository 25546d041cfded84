"""Peak memory (max RSS) of kvtool's streaming commands next to ldb's, on databases of two sizes.

Usage: python bench/bench_memory.py [--small 200000] [--large 2000000] [--value-size 100]
       python bench/bench_memory.py --huge 20 [--huge-mb 40]

Design (docs/design.md): memory is bounded by batch and page sizes, not by database size. So each
command's peak RSS on the large database should match its peak on the small one (ten times
fewer records), and stay near ldb's on the same database. (Above 64 MB of SST files, plain
`export` reads with two worker processes, each rendering at most 32 MB ahead of its turn; the
`-j 1` row is one process.) Each command runs in its own child
process with stdout to /dev/null; its peak comes from getrusage(RUSAGE_CHILDREN) in a fresh
wrapper process, so one command's peak cannot hide another's. Prints measurements; asserts
nothing.

--huge N: instead, N values of 3/4 to all of --huge-mb MB each (and 1000 small ones) in a
BlobDB database rocksdict writes, and each streaming command's peak against the largest value:
memory should be a small multiple of it plus a fixed budget, however many values there are
(read batches are cut by bytes, kvtool.stream.pipeline.BATCH_BYTES).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KVTOOL = str(Path(sys.executable).parent / "kvtool")

_PEAK = (
    "import resource, subprocess, sys\n"
    "stdin = open(sys.argv[1], 'rb') if sys.argv[1] != '-' else subprocess.DEVNULL\n"
    "subprocess.run(sys.argv[2:], stdin=stdin, stdout=subprocess.DEVNULL, "
    "stderr=subprocess.DEVNULL, check=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def peak_mib(argv: list[str], stdin: Path | None = None) -> float:
    """Peak RSS of `argv` (and its children) in MiB."""
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(stdin or "-"), *argv],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out) / 1024  # ru_maxrss is in KiB on Linux


def generated(keys: int, value_size: int, work: Path) -> Path:
    db = Path(f"/tmp/kvtool-bench-{keys}-{value_size}.db")
    if not db.exists():
        print(f"generating {db} ...", file=sys.stderr)
        subprocess.run(
            [
                *(KVTOOL, "generate", "--keys", str(keys), "--value-size", str(value_size)),
                *("--key-prefix", "k:", "-q", str(db)),
            ],
            check=True,
        )
    return db


def commands(
    db: Path, ldb: str, work: Path, jsonl: Path
) -> list[tuple[str, list[str], Path | None]]:
    # Each run writes into a fresh path, so no run finds the previous one's output.
    counter = iter(range(1_000_000))

    def fresh(name: str) -> str:
        return str(work / f"{next(counter)}-{name}")

    return [
        ("ldb scan", [ldb, f"--db={db}", "--ignore_unknown_options", "scan"], None),
        ("kvtool export", [KVTOOL, "export", str(db), "-q"], None),
        ("kvtool export -j 1", [KVTOOL, "export", str(db), "-q", "-j", "1"], None),
        (
            "kvtool export -o x.gz",
            [KVTOOL, "export", str(db), "-q", "-o", fresh("x.jsonl.gz")],
            None,
        ),
        ("kvtool count", [KVTOOL, "count", str(db)], None),
        ("kvtool verify", [KVTOOL, "verify", "-q", str(db)], None),
        ("kvtool diff (db vs itself)", [KVTOOL, "diff", "-q", str(db), str(db)], None),
        ("kvtool import (batch)", [KVTOOL, "import", "-q", "--create", fresh("b.db")], jsonl),
        (
            "kvtool import --mode sst",
            [
                *(KVTOOL, "import", "-q", "--create", "--mode", "sst"),
                *("--sort-memory", "64MB", "--tmp-dir", str(work), fresh("s.db")),
            ],
            jsonl,
        ),
    ]


_HUGE_DB = """
import os, random, sys
import rocksdict as rd
path, n, most = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
opts = rd.Options(raw_mode=True)
opts.create_if_missing(True)
opts.set_enable_blob_files(True)
opts.set_min_blob_size(4096)
table = rd.BlockBasedOptions()  # tables ldb 7.8 reads: format_version 5, CRC32c
table.set_format_version(5)
table.set_checksum_type(rd.ChecksumType.crc32c())
opts.set_block_based_table_factory(table)
db = rd.Rdict(path, opts)
rnd = random.Random(7)
largest = 0
for i in range(n):
    size = rnd.randint(most * 3 // 4, most)
    largest = max(largest, size)
    db[b"big:%06d" % i] = os.urandom(size)
for i in range(1000):
    db[b"small:%06d" % i] = os.urandom(100)
db.flush()
db.close()
print(largest)
"""


def huge(count: int, most_mb: int, ldb: str) -> None:
    """Peak RSS of each streaming command on `count` values of up to `most_mb` MB."""
    db = Path(f"/tmp/kvtool-bench-huge-{count}-{most_mb}.db")
    largest_file = db.with_suffix(".largest")  # the size of its largest value
    if not largest_file.exists():
        print(f"generating {db} ...", file=sys.stderr)
        shutil.rmtree(db, ignore_errors=True)
        out = subprocess.run(
            [sys.executable, "-c", _HUGE_DB, str(db), str(count), str(most_mb * 10**6)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        largest_file.write_text(out)
    largest = int(largest_file.read_text()) / 2**20
    print(f"peak RSS in MiB; {count} values of up to {most_mb} MB in blob files, the largest")
    print(f"{largest:.1f} MiB; peak/largest is the peak in units of the largest value")
    print(f"{'command':<40}{'peak':>10}{'peak/largest':>14}")
    with tempfile.TemporaryDirectory(prefix="kvtool-bench-huge-") as tmp:
        work = Path(tmp)
        dataset = work / "ds"
        runs: list[tuple[str, list[str]]] = [
            ("kvtool count (start-up and engine floor)", [KVTOOL, "count", str(db)]),
            ("ldb scan", [ldb, f"--db={db}", "--ignore_unknown_options", "scan"]),
            ("kvtool export", [KVTOOL, "export", str(db), "-q"]),
            ("kvtool export -j 1", [KVTOOL, "export", str(db), "-q", "-j", "1"]),
            ("kvtool export --format parquet", [KVTOOL, "export", str(db), "-q", "--format",
                                                 "parquet", "-o", str(dataset)]),
            ("kvtool import DATASET (batch)", [KVTOOL, "import", "-q", "--create",
                                                str(work / "b.db"), str(dataset)]),
        ]  # fmt: skip
        for name, argv in runs:
            peak = peak_mib(argv)
            print(f"{name:<40}{peak:>10.1f}{peak / largest:>14.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200_000)
    parser.add_argument("--large", type=int, default=2_000_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--huge", type=int, metavar="N", help="N huge values instead (above)")
    parser.add_argument("--huge-mb", type=int, default=40, help="the largest huge value, MB")
    args = parser.parse_args()
    ldb = shutil.which("ldb")
    if ldb is None:
        print("ldb is not installed (apt-get install rocksdb-tools)", file=sys.stderr)
        return 1
    if args.huge:
        huge(args.huge, args.huge_mb, ldb)
        return 0
    print(f"peak RSS in MiB; values of {args.value_size} bytes; sort memory for sst import: 64MB")
    print(f"{'command':<28}{args.small:>12,}{args.large:>12,}{'large/small':>13}{'vs ldb':>9}")
    with tempfile.TemporaryDirectory(prefix="kvtool-bench-mem-") as tmp:
        work = Path(tmp)
        peaks: dict[str, list[float]] = {}
        for keys in (args.small, args.large):
            db = generated(keys, args.value_size, work)
            jsonl = work / f"in-{keys}.jsonl"
            with jsonl.open("wb") as out:
                subprocess.run([KVTOOL, "export", str(db), "-q"], stdout=out, check=True)
            for name, argv, stdin in commands(db, ldb, work, jsonl):
                peaks.setdefault(name, []).append(peak_mib(argv, stdin))
            jsonl.unlink()
        ldb_large = peaks["ldb scan"][1]
        for name, (small, large) in peaks.items():
            growth, vs_ldb = large / small, large / ldb_large
            print(f"{name:<28}{small:>12.1f}{large:>12.1f}{growth:>13.2f}{vs_ldb:>8.2f}x")
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this script itself: {self_peak:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
