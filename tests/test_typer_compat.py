"""kvtool on whichever Typer is installed (0.28 up to the newest allowed; CI runs the newest):
no pydantic import at start-up, and bad option values refused in Click's words, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kvtool.errors import ExitCode

from .conftest import run_kvtool
from .oracles import ldb_load

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ldb_load(tmp_path_factory.mktemp("tc") / "db", [(b"a", b"1"), (b"b", b"2")])


def test_count_does_not_import_pydantic(db: Path) -> None:
    # Typer 0.29's pydantic import was most of its start-up (bench/startup.py measures it).
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kvtool", "count", str(db), "--limit", "10"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert not {name for name in imported if name.split(".")[0] == "pydantic"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "DB", "-n", "abc"], "'abc' is not a valid int range"),
        (["scan", "DB", "-n", "0"], "0 is not in the range 1<=x<="),
        (["export", "DB", "--workers", "1.5"], "'1.5' is not a valid int range"),
        (["export", "DB", "-f", "xml"], "'xml' is not one of 'jsonl', 'csv', 'tsv'"),
        (["compact", "DB", "--bottommost", "always"], "'always' is not one of 'skip', 'if-needed'"),
    ],
)
def test_bad_values_are_refused_in_one_line(db: Path, args: list[str], message: str) -> None:
    result = run_kvtool(*[str(db) if arg == "DB" else arg for arg in args])
    assert result.returncode == ExitCode.USAGE
    err = result.stderr.decode()
    assert err.startswith("kvtool: error: ") and err.count("\n") == 1, err
    assert message in err, err


def test_choices_ignore_case_and_lists_keep_every_value(db: Path) -> None:
    result = run_kvtool("scan", db, "-f", "JSONL", "--key-format", "HEX")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == b'{"key":"61","value":"1"}'
    result = run_kvtool("compact", db, "--cf", "default", "--cf", "nope", "--bottommost", "FORCE")
    assert result.returncode == ExitCode.USAGE
    assert b"'nope'" in result.stderr


def test_usage_names_a_variadic_argument_once() -> None:
    """Typer 0.29 appends "..." to a variadic argument's usage name, which kvtool's metavar
    ("FILE...") says already: the usage line must not read FILE......"""
    result = run_kvtool("sst", "--help")
    assert result.returncode == 0, result.stderr
    usage = result.stdout.decode().splitlines()[0]
    assert usage == "Usage: kvtool sst [OPTIONS] FILE...", usage
