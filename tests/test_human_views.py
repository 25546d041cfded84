"""Human views (scan's table, get's errors) show Unicode text as text, in aligned columns, and
escape only what is not printable text: control characters, backslashes and invalid bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from wcwidth import wcswidth

from kvtool.errors import ExitCode

from .conftest import run_kvtool
from .oracles import ldb_load

RECORDS = [
    ("日本語キー".encode(), "値です".encode()),
    (b"it's", b"ok"),
    ("Köln".encode(), b"Stadt"),
    (b"esc\x1b[31m", b"bad\xff\xfe"),
    (b"back\\slash", b"tab\there"),
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return ldb_load(tmp_path / "u.db", RECORDS)  # ldb 7.8 writes it


def test_scan_table_shows_text_as_text_in_aligned_columns(db: Path) -> None:
    result = run_kvtool("scan", db)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode("utf-8").splitlines()
    assert lines[0].split() == ["KEY", "VALUE"]
    rows = dict(line.split(None, 1) for line in lines[1:])
    assert rows["日本語キー"] == "値です"
    assert rows["it's"] == "ok"
    assert rows["Köln"] == "Stadt"
    # What is not printable text is escaped, so no two cells look alike and nothing drives a
    # terminal; a backslash is doubled so an escape is never ambiguous.
    assert rows["esc\\x1b[31m"] == "bad\\xff\\xfe"
    assert rows["back\\\\slash"] == "tab\\there"
    # The VALUE column starts at the same terminal column on every row (CJK is two wide).
    starts = {
        wcswidth(line[: line.index(value)])
        for line, value in zip(lines, ["VALUE", *rows.values()], strict=True)
    }
    assert len(starts) == 1, lines


def test_get_names_a_missing_key_as_text(db: Path) -> None:
    result = run_kvtool("get", db, "Kölner")
    assert result.returncode == ExitCode.NOT_FOUND
    assert result.stderr.decode("utf-8") == "kvtool: error: key not found: Kölner\n"


def test_get_escapes_control_characters_in_a_missing_key(db: Path) -> None:
    result = run_kvtool("get", "--key-format", "hex", db, "1b5b326a0a")
    assert result.returncode == ExitCode.NOT_FOUND
    assert result.stderr == b"kvtool: error: key not found: \\x1b[2j\\n\n"
