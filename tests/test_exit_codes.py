"""The exit-code table is `kvtool.errors.ExitCode`; every place that shows it shows exactly it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kvtool import docgen
from kvtool.cli.app import app
from kvtool.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
CODES = {int(code) for code in ExitCode}


def table_codes(markdown: Path, heading: str) -> set[int]:
    """The codes in the first column of the table under `heading` (`129 / 130 / 143` is three)."""
    text = markdown.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    codes: set[int] = set()
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        first = line.split("|")[1] if line.startswith("|") else ""
        if re.fullmatch(r"[\d /]+", first.strip()):
            codes |= {int(n) for n in re.findall(r"\d+", first)}
    return codes


@pytest.mark.parametrize(
    ("doc", "heading"),
    [("README.md", "## Exit codes"), ("docs/design.md", "## Exit codes")],
)
def test_markdown_tables_list_every_exit_code(doc: str, heading: str) -> None:
    assert table_codes(ROOT / doc, heading) == CODES


def test_cron_table_lists_only_real_exit_codes() -> None:
    listed = table_codes(ROOT / "docs/cron.md", "### Exit codes")
    assert listed <= CODES
    # What a cron job meets: done, busy, permission, damage, unavailable, stops, bugs.
    assert {0, 69, 70, 74, 75, 77, 129, 130, 143} <= listed


def test_help_epilog_lists_every_exit_code() -> None:
    epilog = app.info.epilog
    assert isinstance(epilog, str)
    assert {int(n) for n in re.findall(r"\b\d+\b", epilog)} == CODES


def test_man_page_table_is_the_enum() -> None:
    assert set(docgen.EXIT_STATUS) == set(ExitCode)


def _row(markdown: Path, heading: str, code: int) -> str:
    section = markdown.read_text(encoding="utf-8").split(heading, 1)[1]
    return next(line for line in section.splitlines() if line.startswith(f"| {code} |"))


@pytest.mark.parametrize(
    ("doc", "heading"),
    [
        ("README.md", "## Exit codes"),
        ("docs/design.md", "## Exit codes"),
        ("docs/cron.md", "### Exit codes"),
    ],
)
def test_1_is_documented_as_not_found_and_differences(doc: str, heading: str) -> None:
    """1 is `get`'s "not found" and `diff`'s "they differ", as grep and diff(1) say."""
    row = _row(ROOT / doc, heading, 1)
    assert "`get`" in row and "`diff`" in row, row


def test_1_in_the_man_page_help_and_diff_help() -> None:
    assert "diff" in docgen.EXIT_STATUS[ExitCode.NOT_FOUND]
    assert "get" in docgen.EXIT_STATUS[ExitCode.NOT_FOUND]
    epilog = app.info.epilog
    assert isinstance(epilog, str) and "1 not found or differences" in epilog
    from kvtool.cli.diff import diff

    assert "Exits 1 when they differ and 0 when they do not" in " ".join(
        (diff.__doc__ or "").split()
    )
