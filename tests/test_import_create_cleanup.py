"""`import --create` that fails before its first commit (a bad first line, a Parquet file of the
wrong shape, a stop signal) leaves no database where there was none: a leftover empty database
reads as a finished import to the next run. A directory that existed, a database that existed,
and a database that holds a commit are kept."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from kvtool.engine.discard import NewDatabase
from kvtool.engine.lockfile import lock_holder

from .conftest import IN_CI, kvtool_executable, run_kvtool
from .oracles import ldb_load, ldb_scan

BAD_FIRST_LINE = b'{"key":"a","value":"1"}\nnot json\n'


@pytest.mark.parametrize("mode", ["batch", "sst"])
def test_a_bad_input_removes_the_database_and_the_directories_it_created(
    tmp_path: Path, mode: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(BAD_FIRST_LINE)
    (tmp_path / "there").mkdir()
    db = tmp_path / "there" / "new" / "deeper" / "db"
    result = run_kvtool("import", "--create", "--mode", mode, db, source)
    message = result.stderr.decode()
    assert result.returncode == 65, message
    assert message.count("\n") == 1 and "line 2: not valid JSON" in message
    assert "nothing was committed" in message
    assert f"the database this import created at {db} was removed" in message
    # RocksDB created new/deeper/db: all three go, the directory that was there stays.
    assert sorted(os.listdir(tmp_path / "there")) == []
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl", "there"]


@pytest.mark.parametrize("mode", ["batch", "sst"])
def test_a_parquet_file_of_the_wrong_shape_leaves_no_database(tmp_path: Path, mode: str) -> None:
    if not IN_CI:
        pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"k": [b"a"], "v": [b"1"]}), source)  # no key and value columns
    db = tmp_path / "db"
    result = run_kvtool("import", "--create", "--mode", mode, db, source)
    message = result.stderr.decode()
    assert result.returncode == 65, message
    assert "needs a 'key' column" in message and "was removed" in message
    assert not os.path.lexists(db)


def _wait_for_lock(db: Path, proc: subprocess.Popen[bytes]) -> None:
    """Until `proc` holds the LOCK of the database it created (bounded: it may have failed)."""
    deadline = time.monotonic() + 60
    while lock_holder(db) != proc.pid:
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1].decode())
        assert time.monotonic() < deadline, "kvtool never opened the database"
        time.sleep(0.02)


def _start_import(*args: str | Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [kvtool_executable(), "import", *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("mode", ["batch", "sst"])
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_before_the_first_commit_removes_the_new_database(
    tmp_path: Path, mode: str, sig: signal.Signals, code: int
) -> None:
    """The input is a pipe the test holds open with one good line written: kvtool has created
    the database, holds a batch it cannot commit yet (or sorts for an ingest at the end of the
    input) and waits for more, so the signal lands before any commit for certain."""
    db = tmp_path / "db"
    proc = _start_import("--create", "--mode", mode, "--tmp-dir", tmp_path, db, "-")
    assert proc.stdin is not None
    proc.stdin.write(b'{"key":"a","value":"1"}\n')
    proc.stdin.flush()
    # Once it holds the LOCK, the database is there when the signal is handled (a handler runs
    # after the native open returns): whether the stop lands in the open's last steps or in the
    # read, nothing is committed, and the database goes.
    _wait_for_lock(db, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    message = err.decode()
    assert proc.returncode == code, message
    assert message.count("\n") == 1 and message.startswith("kvtool: error: interrupted")
    assert f"the database this import created at {db} was removed" in message
    assert sorted(os.listdir(tmp_path)) == []  # no database, no sort work directory


def test_an_existing_empty_directory_is_kept_and_left_empty(tmp_path: Path) -> None:
    db = tmp_path / "mounted"
    db.mkdir()
    result = run_kvtool("import", "--create", db, "-", input=BAD_FIRST_LINE)
    assert result.returncode == 65, result.stderr
    assert f"created in {db} was removed" in result.stderr.decode()
    assert db.is_dir() and not any(db.iterdir())


def test_a_database_that_existed_or_holds_a_commit_is_kept(tmp_path: Path) -> None:
    existing = ldb_load(tmp_path / "existing", [(b"kept", b"by-ldb")])
    result = run_kvtool("import", "--create", existing, "-", input=BAD_FIRST_LINE)
    assert result.returncode == 65, result.stderr
    assert b"removed" not in result.stderr
    assert ldb_scan(existing) == [(b"kept", b"by-ldb")]
    # A new database where the first batch was committed keeps it, as the message says.
    new = tmp_path / "new"
    result = run_kvtool(
        "import", "--create", "--batch-records", "1", new, "-", input=BAD_FIRST_LINE
    )
    message = result.stderr.decode()
    assert result.returncode == 65, message
    assert "committed 1 records from lines 1-1" in message and "removed" not in message
    assert ldb_scan(new) == [(b"a", b"1")]


def test_discard_keeps_a_database_another_process_opened_or_one_with_data(
    tmp_path: Path,
) -> None:
    """Between this run's close and its removal another process may open the path (a second
    `import --create` racing this one): its LOCK keeps the database. Data files keep it too."""
    db = tmp_path / "db"
    fresh = NewDatabase.before_create(db)
    assert fresh is not None and fresh.top == db
    proc = _start_import("--create", db, "-")
    assert proc.stdin is not None
    proc.stdin.write(b'{"key":"a","value":"1"}\n')
    proc.stdin.flush()
    _wait_for_lock(db, proc)
    done = fresh.discard()
    assert not done.removed and done.kept_because == "another process has it open"
    assert (db / "LOCK").is_file()
    _, err = proc.communicate(timeout=60)  # end of input: the import commits its line
    assert proc.returncode == 0, err
    done = fresh.discard()
    assert not done.removed and done.kept_because is not None
    assert "holds" in done.kept_because  # a write-ahead log with the record, or its SST file
    assert ldb_scan(db) == [(b"a", b"1")]
    assert NewDatabase.before_create(db) is None  # a database is there now
