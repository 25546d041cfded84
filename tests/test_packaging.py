"""The wheel is the product: installed into a fresh virtualenv outside the checkout, it brings the
`kvtool` command, its man page and its completions where `man` and the shells look for them."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import require_tool

ROOT = Path(__file__).resolve().parent.parent

SHARED = {
    "share/man/man1/kvtool.1",
    "share/bash-completion/completions/kvtool",
    "share/zsh/site-functions/_kvtool",
    "share/fish/vendor_completions.d/kvtool.fish",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            out,
            ROOT,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deprecat" not in (result.stdout + result.stderr).lower()
    (built,) = out.glob("kvtool-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtualenv far from the checkout with the wheel installed (its dependencies come from
    this interpreter's site-packages, so no registry is asked)."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            env_dir / "bin" / "python",
            "install",
            "--no-deps",
            "--no-index",
            wheel,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=env_dir,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    yield env_dir


def user_env(env_dir: Path, home: Path) -> dict[str, str]:
    """A user's shell with the venv's bin first on PATH, nowhere near the checkout."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MANPATH")}
    return {
        **clean,
        "PATH": f"{env_dir / 'bin'}{os.pathsep}{clean.get('PATH', '')}",
        "HOME": str(home),
    }


def test_wheel_holds_the_man_page_completions_license_and_types(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    data = {n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n}
    assert data == SHARED
    assert "kvtool/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text


def test_installed_command_runs_from_the_venv(installed: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        ["kvtool", "--version"],
        capture_output=True,
        text=True,
        env=user_env(installed, tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("kvtool ")
    # The code that ran is the wheel's, not the checkout's.
    where = subprocess.run(
        [installed / "bin" / "python", "-c", "import kvtool; print(kvtool.__file__)"],
        capture_output=True,
        text=True,
        env=user_env(installed, tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert str(installed) in where.stdout, where.stdout + where.stderr


def test_man_finds_the_page_next_to_the_command(installed: Path, tmp_path: Path) -> None:
    man = require_tool("man")
    result = subprocess.run(
        [man, "-w", "kvtool"],
        capture_output=True,
        text=True,
        env=user_env(installed, tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(installed / "share/man/man1/kvtool.1")


def test_bash_completion_loads_on_demand_from_the_venv(installed: Path, tmp_path: Path) -> None:
    """The first TAB loads the completion from PREFIX/share. bash-completion 2.12 looks there next
    to the command by itself; Debian 12's 2.11 looks in XDG_DATA_DIRS, which docs/shell.md says
    to extend for a venv or pipx install (a system-wide pip install lands in /usr/local/share)."""
    loader = Path("/usr/share/bash-completion/bash_completion")
    if not loader.exists():
        require_tool("bash-completion-is-not-installed")  # skips here, fails under CI
    script = (
        f"source {loader}\n"
        "_comp_load kvtool 2>/dev/null || __load_completion kvtool\n"
        "COMP_WORDS=(kvtool ex); COMP_CWORD=1; COMP_LINE='kvtool ex'; COMP_POINT=9\n"
        "$(complete -p kvtool | sed -E 's/.* -F ([^ ]+) .*/\\1/') kvtool ex kvtool\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = user_env(installed, tmp_path)
    env["XDG_DATA_DIRS"] = f"{installed / 'share'}:/usr/local/share:/usr/share"
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["export"], result.stdout + result.stderr


def test_bash_completes_format_values_from_the_venv(installed: Path, tmp_path: Path) -> None:
    script = (
        f"source {installed / 'share/bash-completion/completions/kvtool'}\n"
        "COMP_WORDS=(kvtool export --format ''); COMP_CWORD=3\n"
        "_kvtool_completion kvtool\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        env=user_env(installed, tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["jsonl", "csv", "tsv", "parquet"], (
        result.stdout + result.stderr
    )


def test_fish_completes_format_values_from_the_venv(installed: Path, tmp_path: Path) -> None:
    fish = require_tool("fish")
    functions = installed / "share/fish/vendor_completions.d"
    result = subprocess.run(
        [
            fish,
            "--no-config",
            "-c",
            f"set -a fish_complete_path {functions}; complete -C'kvtool export --format '",
        ],
        capture_output=True,
        text=True,
        env=user_env(installed, tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(line.split("\t")[0] for line in result.stdout.splitlines()) == [
        "csv",
        "jsonl",
        "parquet",
        "tsv",
    ]


def test_zsh_first_tab_completes_from_the_venv(installed: Path, tmp_path: Path) -> None:
    """docs/shell.md's zsh install (fpath+= the venv's site-functions, then compinit), in a new
    interactive zsh driven through a pseudo-terminal: the very first TAB lists the formats."""
    zsh = require_tool("zsh")
    functions = installed / "share/zsh/site-functions"
    (tmp_path / ".zshrc").write_text(f"fpath+=({functions}); autoload -Uz compinit; compinit -u\n")
    script = (
        "zmodload zsh/zpty\n"
        f'zpty z "HOME={tmp_path} ZDOTDIR={tmp_path} zsh -i"\n'
        "zpty -w z \"PS1='READY> '\"\n"
        "zpty -r z out '*READY> '\n"
        "zpty -w -n z $'kvtool export --format \\t'\n"
        "zpty -r z out '*tsv*'\n"  # blocks until the listing shows (the timeout fails it)
        'print -r -- "$out"\n'
        "zpty -d z\n"
    )
    result = subprocess.run(
        [zsh, "-f", "-c", script],
        capture_output=True,
        text=True,
        env=user_env(installed, tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "jsonl" in result.stdout and "csv" in result.stdout, result.stdout
