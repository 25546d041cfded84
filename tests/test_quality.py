"""The code-quality gates (ruff lint, ruff format, strict mypy) run as part of the test suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON_DIRS = [d for d in ("kvtool", "tests", "bench") if (ROOT / d).is_dir()]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", *PYTHON_DIRS],
        ["ruff", "format", "--check", *PYTHON_DIRS],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_quality_gate(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
