"""Hostile runs against what was merged last (crash leftovers, `import --create` cleanup, read
batches cut by bytes, lazy commands): each test is a case that once lost data or lied."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import dir_state, kvtool_executable, run_kvtool
from .oracles import ldb_load, ldb_scan, require_rocksdb614

RECORDS = [(b"a1", b"v1"), (b"a2", b"v2")]


@pytest.mark.parametrize("engine", ["rocksdict", "python-rocksdb"])
def test_import_create_through_dotdot_of_a_new_directory_is_refused(
    tmp_path: Path, engine: str
) -> None:
    """`--create DB/new/..` names DB itself once `new` is made: the check for a new or empty
    directory listed `DB/new/..` (which did not exist yet), found nothing, and RocksDB then
    created a database in DB. Where DB is a database that lost its CURRENT file (and its
    empty WAL), the new database's first open deleted the old SST files: exit 0, every record
    gone (measured with ldb's database)."""
    db = ldb_load(tmp_path / "db", RECORDS)
    (db / "CURRENT").unlink()
    for wal in db.glob("*.log"):
        wal.unlink()
    before = dir_state(db)
    result = run_kvtool(
        "--engine", engine, "import", "--create", db / "new" / "..", "-", "-q",
        input=b'{"key":"x","value":"y"}\n',
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(b"kvtool: error: ") and b".." in result.stderr
    assert result.stderr.count(b"\n") == 1, result.stderr
    assert dir_state(db) == before
    assert sorted(p.name for p in db.iterdir()) == sorted(before)


def test_import_create_through_dotdot_of_existing_directories_still_works(
    tmp_path: Path,
) -> None:
    """Only a `..` after a part that does not exist is refused: `existing/../new` is `new`."""
    (tmp_path / "existing").mkdir()
    target = tmp_path / "existing" / ".." / "new"
    result = run_kvtool("import", "--create", target, "-", "-q", input=b'{"key":"x","value":"y"}\n')
    assert result.returncode == 0, result.stderr
    assert ldb_scan(tmp_path / "new") == [(b"x", b"y")]


def test_repair_backup_through_dotdot_of_a_new_directory_is_refused(tmp_path: Path) -> None:
    """`repair DB --backup OTHER/new/..` checked that `OTHER/new/..` was new or empty (it did
    not exist yet), then made `new` and copied the database's files into OTHER, among its own
    files: another database there had its CURRENT, MANIFEST and OPTIONS replaced, exit 0."""
    db = ldb_load(tmp_path / "db", RECORDS)
    other = ldb_load(tmp_path / "other", [(b"o", b"other's")])
    before = dir_state(other)
    result = run_kvtool("repair", db, "--backup", other / "new" / "..")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(b"kvtool: error: ") and b".." in result.stderr
    assert dir_state(other) == before
    assert ldb_scan(other) == [(b"o", b"other's")]


def test_generate_through_dotdot_of_a_new_directory_is_refused(tmp_path: Path) -> None:
    """`generate OTHER/new/..` ("DB must not exist yet") wrote a database into OTHER, among
    its files, exit 0."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    result = run_kvtool("generate", other / "new" / "..", "--keys", "5")
    assert result.returncode == 2, result.stderr
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("engine", ["rocksdict", "python-rocksdb"])
def test_import_create_under_a_file_is_a_usage_error(tmp_path: Path, engine: str) -> None:
    """`--create FILE/db` (a typo, a file where a directory was meant) was exit 70 ("a bug in
    kvtool") with "the new database FILE/db was kept: it cannot be listed": nothing was made."""
    (tmp_path / "file.txt").write_text("mine\n")
    before = dir_state(tmp_path)
    result = run_kvtool(
        "--engine", engine, "import", "--create", tmp_path / "file.txt" / "db", "-", "-q",
        input=b'{"key":"a","value":"1"}\n',
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(b"kvtool: error: ") and result.stderr.count(b"\n") == 1
    assert b"not a directory" in result.stderr and b"kept" not in result.stderr
    assert dir_state(tmp_path) == before


LONG_NAME = "a" * 300  # past NAME_MAX (255) on every Linux filesystem


@pytest.mark.parametrize("engine", ["rocksdict", "python-rocksdb"])
def test_a_path_with_a_name_too_long_is_a_usage_error(tmp_path: Path, engine: str) -> None:
    """A name past NAME_MAX was "unexpected OSError ... this is a bug in kvtool" (exit 70) for
    every command, and `import --create new/LONG` left `new` behind with "the new database
    ... was kept: it cannot be listed"."""
    read = run_kvtool("--engine", engine, "count", tmp_path / LONG_NAME)
    assert read.returncode == 2, read.stderr
    assert b"too long" in read.stderr and b"bug" not in read.stderr
    create = run_kvtool(
        "--engine", engine, "import", "--create", tmp_path / "new" / LONG_NAME, "-", "-q",
        input=b'{"key":"a","value":"1"}\n',
    )  # fmt: skip
    assert create.returncode == 2, create.stderr
    assert create.stderr.count(b"\n") == 1 and b"too long" in create.stderr
    assert b"kept" not in create.stderr
    assert list(tmp_path.iterdir()) == []


_REL_614 = """
import sys, rocksdb
if sys.argv[1:] == ["read"]:  # the owner, in its own directory
    db = rocksdb.DB("rel", rocksdb.Options())
    it = db.iteritems()
    it.seek_to_first()
    print(sorted((k.decode(), v.decode()) for k, v in it))
else:
    db = rocksdb.DB("rel", rocksdb.Options(create_if_missing=True))
    db.put(b"a", b"1")
    db.put(b"b", b"2")
    del db
    rocksdb.repair_db("rel", rocksdb.Options())  # RocksDB's own: the WAL becomes an SST file
"""


def _in(cwd: Path, *args: str | os.PathLike[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [kvtool_executable(), *map(str, args)], cwd=cwd, capture_output=True, timeout=120
    )


@pytest.mark.parametrize("engine", ["rocksdict", "python-rocksdb"])
def test_a_relative_wal_dir_is_not_taken_from_the_current_directory(
    tmp_path: Path, engine: str
) -> None:
    """RocksDB 6.14 records the default `wal_dir` as the path it was given: `rel` for a
    database created as `rel` in the application's directory. With no WAL file of its own
    (after RocksDB's repair), kvtool took `rel` in ITS current directory: a read from another
    directory was exit 2 ("wal_dir not found: rel"), and where an unrelated `rel` directory
    existed, `put` wrote the database's WAL into it (exit 0)."""
    require_rocksdb614()
    app, ops = tmp_path / "app", tmp_path / "ops"
    app.mkdir()
    (ops / "rel").mkdir(parents=True)
    (ops / "rel" / "mine.txt").write_text("not a database\n")
    made = subprocess.run([sys.executable, "-c", _REL_614], cwd=app, capture_output=True)
    assert made.returncode == 0, made.stderr
    db = app / "rel"
    assert not list(db.glob("*.log"))
    count = _in(tmp_path, "--engine", engine, "count", db)
    assert (count.returncode, count.stdout) == (0, b"2\n"), count.stderr
    unrelated = dir_state(ops / "rel")
    put = _in(ops, "--engine", engine, "put", db, "c", "3")
    assert put.returncode == 0, put.stderr
    assert dir_state(ops / "rel") == unrelated
    read = subprocess.run([sys.executable, "-c", _REL_614, "read"], cwd=app, capture_output=True)
    assert read.returncode == 0, read.stderr
    assert read.stdout == b"[('a', '1'), ('b', '2'), ('c', '3')]\n"


@pytest.mark.parametrize("engine", ["rocksdict", "python-rocksdb"])
def test_a_symlink_loop_is_a_usage_error(tmp_path: Path, engine: str) -> None:
    """A symlink loop as DB was exit 70 ("unexpected OSError ... a bug in kvtool") for reads
    and writes, and for `import --create` (RocksDB's "File exists"); `--create LOOP/db` added
    "the new database LOOP/db was kept" where nothing was made."""
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    for args in (("count", loop), ("put", loop, "k", "v")):
        result = run_kvtool("--engine", engine, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert b"symbolic links" in result.stderr and b"bug" not in result.stderr
    for target in (loop, loop / "db"):
        result = run_kvtool(
            "--engine", engine, "import", "--create", target, "-", "-q",
            input=b'{"key":"a","value":"1"}\n',
        )  # fmt: skip
        assert result.returncode == 2, (target, result.stderr)
        assert result.stderr.count(b"\n") == 1 and b"kept" not in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["loop"]


def test_a_wal_or_manifest_read_from_a_pipe(tmp_path: Path) -> None:
    """`kvtool wal <(zcat 000004.log.gz)` printed nothing, exit 0: a pipe's size is 0, which
    read as an empty log. A pipe is read whole; ldb's WAL and MANIFEST read the same as from
    the file (but for the file name), and `sst` from a pipe says it needs a file."""
    db = ldb_load(tmp_path / "db", RECORDS, wal=True)
    (wal,) = db.glob("*.log")
    (manifest,) = db.glob("MANIFEST-*")
    for command, file in (("wal", wal), ("manifest", manifest)):
        whole = run_kvtool(command, file)
        piped = run_kvtool(command, "/dev/stdin", input=file.read_bytes())
        assert (whole.returncode, piped.returncode) == (0, 0), piped.stderr
        assert whole.stdout.count(b"\n") >= 2
        expected = whole.stdout.replace(b'"file":"%s"' % wal.name.encode(), b'"file":"stdin"')
        assert piped.stdout == expected
    (sst,) = ldb_load(tmp_path / "flushed", RECORDS).glob("*.sst")
    piped = run_kvtool("sst", "/dev/stdin", input=sst.read_bytes())
    assert piped.returncode == 2, piped.stderr
    assert piped.stderr.count(b"\n") == 1 and b"not a regular file" in piped.stderr
