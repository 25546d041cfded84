"""docs/library.md's examples run as written: each `python` block, in order, in one namespace,
against databases that RocksDB's own `ldb` wrote, prints exactly the `text` block after it; and
`mypy --strict` accepts them as a user's code (the library's types are real, not Any)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.oracles import ldb_load, ldb_scan

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "library.md"
MARK = "----8<---- next example ----8<----"

USERS = [
    (b"config:theme", b"dark"),
    (b"user:1", b"ada"),
    (b"user:2", b"grace"),
    (b"user:3", b"linus"),
]
BACKUP = [(b"config:theme", b"dark"), (b"user:1", b"ada"), (b"user:2", b"hopper")]

# Runs the blocks given as JSON on stdin, printing MARK after each (stdout flushed, so what the
# library writes to sys.stdout.buffer stays in order with what print() wrote).
DRIVER = f"""
import json, sys
namespace = {{"__name__": "__main__"}}
for block in json.load(sys.stdin):
    exec(compile(block, "docs/library.md", "exec"), namespace)
    sys.stdout.flush()
    print({MARK!r}, flush=True)
"""


def examples() -> list[tuple[str, str]]:
    """(code, expected output) for each `python` block; the output is the `text` block that
    follows it directly, or nothing."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)
    found: list[tuple[str, str]] = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "python":
            continue
        after = blocks[i + 1] if i + 1 < len(blocks) else ("", "")
        found.append((body, after[1] if after[0] == "text" else ""))
    return found


def test_the_doc_has_the_examples_the_brief_names() -> None:
    code = "\n".join(body for body, _ in examples())
    for call in ("scan(", "get(", "put(", "export(", "count(", "diff(", "import_records("):
        assert f"kvtool.{call}" in code
    assert "with open_db(" in code and "except kvtool.KeyNotFoundError" in code


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("ldb")
    work = tmp_path_factory.mktemp("library-doc")
    ldb_load(work / "users.db", USERS)
    ldb_load(work / "backup.db", BACKUP)
    return work


def test_every_example_prints_what_the_doc_shows(workdir: Path) -> None:
    found = examples()
    result = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps([body for body, _ in found]),
        cwd=workdir,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout.split(MARK + "\n")
    assert printed[-1] == ""
    assert len(printed) - 1 == len(found)
    for (body, expected), got in zip(found, printed, strict=False):
        assert got == expected, f"the example\n{body}\nprinted\n{got}"
    # What the examples wrote, read back by the writer: user:4 came and went, user:2 is as ldb
    # wrote it, and numbers.db (created by import_records) holds all of its 1000 records.
    assert ldb_scan(workdir / "users.db") == USERS
    numbers = ldb_scan(workdir / "numbers.db")
    assert numbers == sorted((b"n:%03d" % i, b"%d" % (i * i)) for i in range(1000))


def test_mypy_strict_accepts_the_examples(tmp_path: Path) -> None:
    """The examples as one user's module type-check under --strict, and the types mypy sees are
    the library's own (a reveal_type of a result is its dataclass, not Any)."""
    code = "\n".join(body for body, _ in examples())
    code += "\nreveal_type(kvtool.count)\nreveal_type(kvtool.scan('db'))\n"
    sample = tmp_path / "user_code.py"
    sample.write_text(code)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--python-version",
            "3.10",
            str(sample),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"MYPYPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=300,
        check=False,
    )
    out = result.stdout
    assert "error:" not in out, out
    assert "kvtool.ops.count.CountResult" in out, out
    assert "kvtool.api.records.RecordStream[bytes]" in out, out
