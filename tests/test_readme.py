"""The README keeps its promise: its quick start runs as written, and its commands exist."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from kvtool import docgen

from .conftest import kvtool_executable, require_tool

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]}
BY_NAME = {info.name: info for info in docgen.walk()}


def _blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.M | re.S)


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, flags=re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def test_quick_start_installs_then_runs_the_main_job_as_shown(tmp_path: Path) -> None:
    """The set-up line's kvtool part, run in an empty directory, prints the output shown."""
    require_tool("jq")
    (lang, command), (_, shown), *_ = _blocks(_section("Quick start"))
    assert lang == "sh" and command.count("\n") == 1, "the set-up is one command line"
    steps = [step.strip() for step in command.strip().split(" && ")]
    installs = [step for step in steps if not step.startswith("kvtool ")]
    assert installs == [
        "apt-get update",
        "apt-get install -y rocksdb-tools jq",
        "python -m pip install -e '.[test]'",
    ]
    main_job = " && ".join(steps[len(installs) :])
    env = {
        **os.environ,
        "PATH": f"{Path(kvtool_executable()).parent}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", main_job],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown


def test_test_command_is_what_ci_runs() -> None:
    _, _, (lang, test_command), *_ = _blocks(_section("Quick start"))
    assert lang == "sh"
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == test_command.strip() == "python -m pytest"


# A shell line that runs kvtool: first, after a pipe, or in a crontab line's command.
_RUNS_KVTOOL = r"^kvtool |.*\| kvtool |^[\d*/,-]+( [\d*/,-]+){4} "


def _kvtool_lines() -> list[tuple[str, str]]:
    found = []
    for name, text in DOCS.items():
        for lang, body in _blocks(text):
            if lang not in ("console", "sh", "crontab", ""):
                continue
            for line in body.splitlines():
                line = line.removeprefix("$ ").strip()
                if "kvtool " in line and re.match(_RUNS_KVTOOL, line):
                    found.append((name, line))
    return found


@pytest.mark.parametrize(("doc", "line"), _kvtool_lines())
def test_every_documented_command_line_uses_real_options(doc: str, line: str) -> None:
    for part in re.split(r"\s(?:\||&&|;)\s", line):
        if "kvtool " not in part or part.strip().startswith("#"):
            continue
        name, unknown = docgen.unknown_options(part, BY_NAME)
        assert name is not None, part
        assert not unknown, f"{doc}: {part}: no such option {unknown}"


def test_the_readme_tours_every_command() -> None:
    tour = _section("Commands")
    for name in BY_NAME:
        if name == "kvtool":
            continue
        command = name.removeprefix("kvtool ")
        assert f"`{command.split()[0]}" in tour, f"README's tour does not mention {command}"
        assert re.search(rf"^\$ (.* )?kvtool {re.escape(command)}\b", tour, flags=re.M), (
            f"README's tour has no example run of {command}"
        )
