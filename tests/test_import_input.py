"""What `import` makes of its input before the first record: gzip recognised by its magic bytes
(a pipe has no .gz name), a note when it reads from a terminal, and nothing created from empty
input. Every database written is read back with ldb 7.8, and source data comes from ldb too."""

from __future__ import annotations

import gzip
import os
import pty
import select
import subprocess
from pathlib import Path

from kvtool.errors import ExitCode

from .conftest import kvtool_executable, run_kvtool
from .oracles import ldb_load, ldb_ok, ldb_scan

RECORDS = [(b"a", b"1"), (b"b\xff", b"\x00two"), ("日本".encode(), b"three")]


def exported(tmp_path: Path) -> bytes:
    src = ldb_load(tmp_path / "src.db", RECORDS)
    result = run_kvtool("export", src)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_gzip_on_stdin_is_recognised_by_its_magic_bytes(tmp_path: Path) -> None:
    data = gzip.compress(exported(tmp_path))
    db = tmp_path / "copy.db"
    result = run_kvtool("import", "--create", db, input=data)
    assert result.returncode == 0, result.stderr
    assert ldb_scan(db) == sorted(RECORDS)


def test_gzip_file_without_a_gz_name_is_decompressed(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"  # gzip data, a name that does not say so
    path.write_bytes(gzip.compress(exported(tmp_path)))
    db = tmp_path / "copy.db"
    result = run_kvtool("import", "--create", db, path)
    assert result.returncode == 0, result.stderr
    assert ldb_scan(db) == sorted(RECORDS)


def test_empty_input_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    for data in (b"", gzip.compress(b"")):
        result = run_kvtool("import", "--create", db, input=data)
        assert result.returncode == ExitCode.DATA_ERROR
        assert result.stderr == b"kvtool: error: the input is empty: no database was created\n"
        assert not db.exists()


def test_a_pipe_named_as_file_loses_no_bytes(tmp_path: Path) -> None:
    """FILE as /dev/stdin on a pipe (or `<(zcat ...)`): the look for Parquet's magic bytes once
    read the stream's first buffer (all of a small input), and the import then read nothing and
    exited 0: every record silently lost."""
    db = ldb_load(tmp_path / "db", [(b"kept", b"x")])
    lines = b"".join(b'{"key":"k%d","value":"v%d"}\n' % (i, i) for i in range(3))
    result = run_kvtool("import", db, "/dev/stdin", input=lines)
    assert result.returncode == 0, result.stderr
    assert ldb_scan(db) == [(b"k0", b"v0"), (b"k1", b"v1"), (b"k2", b"v2"), (b"kept", b"x")]


def test_empty_input_creates_no_column_family_and_imports_nothing(tmp_path: Path) -> None:
    db = ldb_load(tmp_path / "db", RECORDS)
    result = run_kvtool("import", "--create", "--cf", "new", db, input=b"")
    assert result.returncode == ExitCode.DATA_ERROR
    assert b"no column family 'new' was created" in result.stderr
    assert ldb_ok(f"--db={db}", "list_column_families").count(b"new") == 0
    # Into what exists, an empty input is a successful import of nothing.
    assert run_kvtool("import", "-q", "--create", db, input=b"").returncode == 0
    assert ldb_scan(db) == sorted(RECORDS)


def test_reading_from_a_terminal_says_so_and_ctrl_d_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "tty.db"
    master, slave = pty.openpty()
    with subprocess.Popen(
        [kvtool_executable(), "import", "--create", str(db)],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        os.close(slave)
        assert proc.stderr is not None
        # Blocks until kvtool says it waits for the terminal (bounded: a kvtool that says nothing
        # waits for ever); then Ctrl-D at once.
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        if not ready:
            proc.kill()
        note = proc.stderr.readline()
        assert note == b"kvtool: reading records from the terminal; Ctrl-D ends\n"
        os.write(master, b"\x04")
        _, err = proc.communicate(timeout=120)
    os.close(master)
    assert proc.returncode == ExitCode.DATA_ERROR, err
    assert not db.exists()
