"""Start-up time of short kvtool runs: `--version`, and `count`, `get` and `du --sample` on a
tiny database (issue 13: at most 0.15 s), optionally against another checkout in the same run.

    python bench/startup.py                          # this checkout, the current interpreter
    python bench/startup.py --baseline /work/main    # before (that checkout) and after (this)
    python bench/startup.py --python /tmp/t29/bin/python   # another venv's Typer

Make a venv for another Typer with the system's packages and this checkout:
    python -m venv --system-site-packages /tmp/t29 && /tmp/t29/bin/pip install 'typer==0.29.2'
It prints, per command and checkout, the best (minimum) and median wall time of --runs runs,
and the same for the CPU time (user + system) of the child, which a busy machine disturbs less
than the wall time. The checkouts' runs alternate, so a change in load hits both alike. Each run
finds its modules' bytecode cached (in a private PYTHONPYCACHEPREFIX, warmed by one run first),
as in an installed kvtool, even where PYTHONDONTWRITEBYTECODE is set.
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
    parser.add_argument(
        "--baseline", type=Path, metavar="CHECKOUT", help="another checkout to measure too"
    )
    args = parser.parse_args()
    checkouts = (
        {"this": ROOT} if args.baseline is None else {"before": args.baseline, "after": ROOT}
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        envs = {name: {**env, "PYTHONPATH": str(path)} for name, path in checkouts.items()}
        typer_version = subprocess.run(
            [args.python, "-c", "import typer; print(typer.__version__)"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.strip()
        db = Path(tmp) / "db"
        subprocess.run(
            [args.python, "-m", "kvtool", "generate", str(db), "--keys", "1000", "-q"],
            env=envs["this" if args.baseline is None else "after"],
            check=True,
            capture_output=True,
        )
        commands = {
            "--version": ["--version"],
            "count DB": ["count", str(db)],
            "get DB KEY": ["get", str(db), "key:000000000500"],
            "du DB --sample 0.1": ["du", str(db), "--sample", "0.1"],
        }
        print(f"typer {typer_version}, {args.runs} runs each (seconds)")
        floor = [_run([args.python, "-c", "pass"], env, tmp) for _ in range(args.runs)]
        print(
            f"{'python -c pass':20} {'floor':6}  wall best {min(w for w, _ in floor):.3f} "
            f"median {statistics.median(w for w, _ in floor):.3f}   CPU best "
            f"{min(c for _, c in floor):.3f} median {statistics.median(c for _, c in floor):.3f}"
        )
        for label, argv in commands.items():
            command = [args.python, "-m", "kvtool", *argv]
            walls: dict[str, list[float]] = {name: [] for name in checkouts}
            cpus: dict[str, list[float]] = {name: [] for name in checkouts}
            for name in checkouts:  # warm the bytecode cache
                _run(command, envs[name], tmp)
            for _ in range(args.runs):
                for name in checkouts:
                    wall, cpu = _run(command, envs[name], tmp)
                    walls[name].append(wall)
                    cpus[name].append(cpu)
            for name in checkouts:
                print(
                    f"{label:20} {name:6}  wall best {min(walls[name]):.3f} median "
                    f"{statistics.median(walls[name]):.3f}   CPU best {min(cpus[name]):.3f} "
                    f"median {statistics.median(cpus[name]):.3f}"
                )


def _run(command: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall and CPU time of one run. cwd: `-m` puts the working directory first on sys.path, so
    a run from another checkout would measure that checkout's kvtool, not the one asked for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


if __name__ == "__main__":
    main()
