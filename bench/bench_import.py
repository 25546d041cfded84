"""Bench: `kvtool import --mode sst` against `ldb load --hex` on the same records, in one run.

    python bench/bench_import.py                 # 1M records, 15-byte keys, 100-byte values
    python bench/bench_import.py --records 200000 --value-size 400

Both load the same shuffled records into a new database; the JSONL input is what `export`
writes (auto format), the ldb input is `0xKEY ==> 0xVALUE` lines. Prints both times and the
ratio, and checks both databases hold the same number of records.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson


def kvtool() -> str:
    candidate = Path(sys.executable).parent / "kvtool"
    return str(candidate) if candidate.exists() else "kvtool"


def write_inputs(work: Path, records: int, value_size: int, seed: int) -> tuple[Path, Path]:
    rng = random.Random(seed)
    order = list(range(records))
    rng.shuffle(order)
    pool = bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz0123456789", k=65536 + value_size))
    jsonl, hexfile = work / "records.jsonl", work / "records.hex"
    with jsonl.open("wb") as j, hexfile.open("wb") as h:
        for n, i in enumerate(order):
            key = b"key:%011d" % i  # 15 bytes
            off = (n * 7919) % 65536
            value = pool[off : off + value_size]
            j.write(orjson.dumps({"key": key.decode(), "value": value.decode()}) + b"\n")
            h.write(b"0x" + key.hex().encode() + b" ==> 0x" + value.hex().encode() + b"\n")
    return jsonl, hexfile


def timed(args: list[str], stdin: Path | None = None) -> float:
    started = time.perf_counter()
    with open(stdin, "rb") if stdin else open("/dev/null", "rb") as src:
        subprocess.run(args, stdin=src, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def count(db: Path) -> int:
    out = subprocess.run(
        ["ldb", f"--db={db}", "--ignore_unknown_options", "dump", "--count_only"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    return int(out.split("Keys in range:", 1)[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sort-memory", default="512MB", help="kvtool's --sort-memory")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    opts = parser.parse_args()
    if shutil.which("ldb") is None:
        sys.exit("ldb is not installed (apt-get install rocksdb-tools)")
    work = Path(tempfile.mkdtemp(prefix="bench-import-", dir=opts.dir))
    try:
        jsonl, hexfile = write_inputs(work, opts.records, opts.value_size, opts.seed)
        print(
            f"{opts.records:,} records, 15-byte keys, {opts.value_size}-byte values, shuffled; "
            f"jsonl {jsonl.stat().st_size / 1e6:.0f} MB"
        )
        ours = timed([kvtool(), "import", "--mode", "sst", "--sort-memory", opts.sort_memory,
                      "--create", "-q", str(work / "k.db"), str(jsonl)])  # fmt: skip
        theirs = timed(["ldb", f"--db={work / 'l.db'}", "--create_if_missing", "load", "--hex"],
                       stdin=hexfile)  # fmt: skip
        n_ours, n_theirs = count(work / "k.db"), count(work / "l.db")
        if n_ours != n_theirs or n_ours != opts.records:
            sys.exit(f"record counts differ: kvtool {n_ours}, ldb {n_theirs}")
        print(f"kvtool import --mode sst  {ours:7.2f} s  ({opts.records / ours:,.0f} records/s)")
        print(
            f"ldb load --hex            {theirs:7.2f} s  ({opts.records / theirs:,.0f} records/s)"
        )
        print(f"ratio kvtool/ldb          {ours / theirs:7.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
