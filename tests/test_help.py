"""--help of every command reads well, and stays plain text off a terminal or with NO_COLOR."""

from __future__ import annotations

import importlib.metadata
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

import kvtool
from kvtool import docgen

from .conftest import kvtool_executable, run_kvtool

ANSI = re.compile(r"\x1b\[")
BOX = re.compile("[\u2500-\u257f]")  # box-drawing characters, as rich draws its panels
SUMMARY_LIMIT = 72  # fits one line next to the command name in an 80-column listing

COMMANDS = list(docgen.walk())
SUB_COMMANDS = COMMANDS[1:]
BY_NAME = {info.name: info for info in COMMANDS}


def ids(info: docgen.CommandInfo) -> str:
    return " ".join(info.path) or "kvtool"


@pytest.mark.parametrize("info", SUB_COMMANDS, ids=ids)
def test_help_starts_with_a_one_line_summary(info: docgen.CommandInfo) -> None:
    text = docgen.help_text(info)
    assert text, f"{info.name} has no help text"
    first = text.split("\n\n", 1)[0]
    summary = docgen.summary(info)
    assert "\n" not in first.strip(), f"{info.name}: the summary is one line, then a blank line"
    assert summary.endswith("."), f"{info.name}: {summary!r} is a sentence"
    assert summary[0].isupper(), f"{info.name}: {summary!r} starts with a capital"
    assert len(summary) <= SUMMARY_LIMIT, f"{info.name}: {summary!r} is too long for a listing"
    # What listings and completion show: the whole summary, never Click's shortened one.
    assert info.command.get_short_help_str() == summary


@pytest.mark.parametrize("info", [c for c in COMMANDS if c.is_group], ids=ids)
def test_command_listing_shows_whole_summaries(info: docgen.CommandInfo) -> None:
    listing = run_kvtool(*info.path, "--help", env={"COLUMNS": "80"}).stdout.decode()
    listing = " ".join(listing.split("Commands:", 1)[1].split())
    for name in info.subcommands:
        child = BY_NAME[f"{info.name} {name}"]
        assert f"{name} {docgen.summary(child)}" in listing


@pytest.mark.parametrize("info", SUB_COMMANDS, ids=ids)
def test_help_has_examples_of_this_command(info: docgen.CommandInfo) -> None:
    text = docgen.help_text(info)
    assert re.search(r"^Examples?:$", text, flags=re.M), f"{info.name}: no Examples: section"
    examples = docgen.example_lines(text)
    assert examples, f"{info.name}: no indented `kvtool ...` example lines"
    assert any(line.startswith(info.name) for line in examples), info.name
    for line in examples:
        name, unknown = docgen.unknown_options(line, BY_NAME)
        assert name is not None and name.startswith(info.name.split(" ")[0] + " "), line
        assert not unknown, f"{info.name}: example {line!r} uses {unknown}, which {name} lacks"


@pytest.mark.parametrize("info", COMMANDS, ids=ids)
def test_every_option_and_argument_has_help(
    info: docgen.CommandInfo,
) -> None:
    for param in info.command.get_params(info.context):
        text = getattr(param, "help", None) or ""
        assert text, f"{info.name}: {param.name} has no help"
        assert text[0].isupper(), f"{info.name}: {param.name}: {text!r} starts with a capital"


def test_unknown_options_catches_an_option_a_command_lacks() -> None:
    assert docgen.unknown_options("kvtool info --json demo.db | jq .", BY_NAME) == (
        "kvtool info",
        [],
    )
    assert docgen.unknown_options("kvtool --debug cf list --nope demo.db", BY_NAME) == (
        "kvtool cf list",
        ["--nope"],
    )
    assert docgen.unknown_options("0 * * * * kvtool get --json db k", BY_NAME) == (
        "kvtool get",
        ["--json"],
    )


@pytest.mark.parametrize("info", COMMANDS, ids=ids)
def test_help_piped_is_plain_text(info: docgen.CommandInfo) -> None:
    result = run_kvtool(*info.path, "--help")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert out.startswith(f"Usage: {info.name} ")
    assert docgen.summary(info) in " ".join(out.split())
    assert not ANSI.search(out), "escape sequences in piped help"
    assert not BOX.search(out), "box drawing in piped help"
    assert result.stderr == b""


def run_in_terminal(*args: str, env: dict[str, str]) -> str:
    """Run the installed kvtool with a pseudo-terminal as stdout and stderr; all it printed."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [kvtool_executable(), *args],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
            env={**os.environ, "COLUMNS": "100", **env},
        )
    finally:
        os.close(follower)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    return b"".join(chunks).decode()


def test_help_on_a_terminal_is_rich() -> None:
    # The counterpart of the two tests below: on a terminal, help has colour and panels.
    env = {key: "" for key in ("NO_COLOR", "CI", "GITHUB_ACTIONS")}
    out = run_in_terminal("--help", env={**env, "TERM": "xterm-256color"})
    assert ANSI.search(out) and BOX.search(out)


def test_no_color_gives_plain_help_on_a_terminal() -> None:
    out = run_in_terminal("get", "--help", env={"NO_COLOR": "1", "TERM": "xterm-256color"})
    assert "Usage: kvtool get" in out
    assert not ANSI.search(out)
    assert not BOX.search(out)


def test_dumb_terminal_gives_plain_help() -> None:
    out = run_in_terminal("--help", env={"NO_COLOR": "", "TERM": "dumb"})
    assert "Usage: kvtool" in out
    assert not ANSI.search(out)
    assert not BOX.search(out)


def test_no_arguments_prints_help_and_exits_2() -> None:
    for args in ((), ("cf",)):
        result = run_kvtool(*args)
        assert result.returncode == 2
        assert result.stdout.decode().startswith(f"Usage: {' '.join(('kvtool', *args))} ")
        assert result.stderr == b"", "no empty error line after the help"


def test_version_matches_the_installed_packages() -> None:
    result = run_kvtool("--version")
    assert result.returncode == 0
    out = result.stdout.decode()
    match = re.fullmatch(r"kvtool (\S+) \(rocksdict (\S+), RocksDB (\d+\.\d+\.\d+)\)\n", out)
    assert match, out
    assert match.group(1) == kvtool.__version__
    assert match.group(2) == importlib.metadata.version("rocksdict")


def test_docs_shell_page_names_every_completion_file() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "shell.md").read_text()
    for path in docgen.COMPLETION_FILES.values():
        assert str(path) in page
    assert "--install-completion" in page


# --- one tool: usage, metavars, groups, examples, the man page's date ---------------------------

# A value placeholder is one upper-case word (KEY, N, SIZE, DURATION); a choice lists its values.
METAVAR = re.compile(r"^(?:[A-Z][A-Z_]*|<[a-z0-9-]+(?:\|[a-z0-9-]+)+>)$")


def plain_help(*path: str) -> str:
    result = run_kvtool(*path, "--help", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


@pytest.mark.parametrize("info", SUB_COMMANDS, ids=ids)
def test_usage_names_required_arguments_bare(info: docgen.CommandInfo) -> None:
    usage = plain_help(*info.path).splitlines()[0]
    assert "{" not in usage and "}" not in usage, usage


@pytest.mark.parametrize("info", SUB_COMMANDS, ids=ids)
def test_one_metavar_style(info: docgen.CommandInfo) -> None:
    # What the help shows (Typer 0.28 and 0.29 build metavars differently inside).
    text = plain_help(*info.path)
    listing = text[re.search(r"^(Arguments|Options):$", text, re.M).start() :]  # type: ignore[union-attr]
    for line in listing.splitlines():
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        if not line.startswith("  -") or names in ("-h, --help",):
            continue
        words = names.replace(",", " ").split()
        if words[-1].startswith("-"):
            continue  # a flag
        assert METAVAR.match(words[-1]), f"{info.name}: {names!r}"


@pytest.mark.parametrize("info", SUB_COMMANDS, ids=ids)
def test_options_are_grouped(info: docgen.CommandInfo) -> None:
    options = [
        p
        for p in info.command.get_params(info.context)
        if p.param_type_name == "option" and p.name != "help"
    ]
    if len(options) < 4:  # `cf list` and friends: nothing to group
        return
    panels = {getattr(p, "rich_help_panel", None) for p in options} - {None}
    assert panels, f"{info.name}: {len(options)} options and no group"


@pytest.mark.parametrize("info", SUB_COMMANDS, ids=ids)
def test_examples_fit_80_columns(info: docgen.CommandInfo) -> None:
    text = info.command.help or ""
    shown = {line.strip() for line in plain_help(*info.path).splitlines()}
    for example in docgen.example_lines(text):
        assert example in shown, f"{info.name}: {example!r} is wrapped at 80 columns"


def test_sizes_take_units(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    result = run_kvtool("generate", db, "--keys", "2", "--value-size", "1KiB", "-q")
    assert result.returncode == 0, result.stderr
    from .oracles import ldb_scan

    assert [len(v) for _, v in ldb_scan(db)] == [1024, 1024]  # ldb 7.8 reads what was written


def test_json_has_one_spelling_and_the_old_one_still_works(tmp_path: Path) -> None:
    from .oracles import ldb_load

    db = ldb_load(tmp_path / "j.db", [(b"a", b"1")])
    for command in ("info", "count"):
        by_format = run_kvtool(command, db, "--format", "json")
        by_alias = run_kvtool(command, db, "--json")
        assert by_format.returncode == by_alias.returncode == 0, by_format.stderr
        assert by_format.stdout.startswith(b"{") and by_alias.stdout.startswith(b"{")
        assert "--json" in plain_help(command) and "--format" in plain_help(command)


def test_man_page_is_dated_reproducibly() -> None:
    page = (docgen.ROOT / docgen.MAN_FILE).read_text(encoding="utf-8")
    assert re.search(r'^\.TH KVTOOL 1 "\d{4}-\d{2}-\d{2}" ', page, re.M)
    epoch = {"SOURCE_DATE_EPOCH": "1700000000", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, "-c", "from kvtool import docgen; print(docgen.page_date())"],
        capture_output=True,
        text=True,
        env={**os.environ, **epoch},
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "2023-11-14"
