"""Start-up time of `kvtool count DB --limit 10` (issue 13: at most 0.15 s) under each Typer.

    python bench/startup.py                      # the current interpreter's Typer
    python bench/startup.py --python /tmp/t29/bin/python   # another venv's (e.g. newest Typer)

Make a venv for another Typer with the system's packages and this checkout:
    python -m venv --system-site-packages /tmp/t29 && /tmp/t29/bin/pip install 'typer==0.29.2'
It prints the best (minimum) and median wall time of --runs runs, and the same for the CPU time
(user + system) of the child, which a busy machine disturbs less than the wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    typer_version = subprocess.run(
        [args.python, "-c", "import typer; print(typer.__version__)"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db"
        subprocess.run(
            [args.python, "-m", "kvtool", "generate", str(db), "--keys", "1000", "-q"],
            env=env,
            check=True,
            capture_output=True,
        )
        command = [args.python, "-m", "kvtool", "count", str(db), "--limit", "10"]
        times, cpu = [], []
        for _ in range(args.runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            # cwd: `-m` puts the working directory first on sys.path, so a run from another
            # checkout would measure that checkout's kvtool, not this one's.
            subprocess.run(command, env=env, check=True, capture_output=True, cwd=tmp)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    print(
        f"typer {typer_version}: kvtool count DB --limit 10: wall best {min(times):.3f} s, "
        f"median {statistics.median(times):.3f} s; CPU best {min(cpu):.3f} s, "
        f"median {statistics.median(cpu):.3f} s ({args.runs} runs)"
    )


if __name__ == "__main__":
    main()
