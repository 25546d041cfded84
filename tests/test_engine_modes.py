"""Open modes next to a live writer: secondary catch-up, busy LOCK, waiting for the lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kvtool.engine import OpenMode, open_db

from .conftest import dir_state, kvtool_executable, make_db, run_kvtool

# Every test runs on each installed engine (conftest.engine).
pytestmark = pytest.mark.usefixtures("engine")

WRITER = """
import sys
from rocksdict import Rdict, Options
o, cfs = Options.load_latest(sys.argv[1])
db = Rdict(sys.argv[1], o, column_families=cfs)
db.put(b'w1', b'1')
print('ready', flush=True)
sys.stdin.readline()
db.put(b'w2', b'2'); db.flush(); db.put(b'w3', b'3')
print('wrote', flush=True)
sys.stdin.readline()
db.close()
"""


def test_secondary_follows_a_live_writer(tmp_path: Path) -> None:
    db_path = make_db(tmp_path / "db", {b"a": b"0"})
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin and writer.stdout
    try:
        assert writer.stdout.readline().strip() == "ready"
        with open_db(db_path, OpenMode.SECONDARY) as db:
            assert db.get(b"w1") == b"1"  # replayed from the writer's WAL
            writer.stdin.write("go\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "wrote"
            assert db.get(b"w2") is None  # a static view until told to catch up
            db.catch_up()
            assert (db.get(b"w2"), db.get(b"w3")) == (b"2", b"3")
    finally:
        writer.stdin.write("done\n")
        writer.stdin.close()
        writer.wait(timeout=30)


def test_read_only_sees_wal_only_data_and_writes_nothing(small_db: Path, writer_process) -> None:  # type: ignore[no-untyped-def]
    writer_process(small_db)
    before = dir_state(small_db)
    with open_db(small_db, OpenMode.READ_ONLY) as db:
        assert db.get(b"live-writer") == b"wal-only"
    assert dir_state(small_db) == before


def test_wait_lock_waits_for_the_owner_to_let_go(
    small_db: Path, writer_process, engine: str
) -> None:  # type: ignore[no-untyped-def]
    writer = writer_process(small_db)
    # The owner (rocksdict, RocksDB 9.8) writes an OPTIONS file in 9.8's words: RocksDB 6.14
    # would drop options it does not know, which python-rocksdb writes refuse without --force.
    force = ["--force"] if engine == "python-rocksdb" else []
    put = subprocess.Popen(
        [kvtool_executable(), "put", *force, "--wait-lock", "5m", str(small_db), "k", "after-wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert put.stderr is not None
    notice = put.stderr.readline()
    assert "locked by another process" in notice and "waiting up to 300s" in notice
    writer.stdin.close()  # the owner closes the database
    writer.wait(timeout=30)
    assert put.wait(timeout=60) == 0, put.stderr.read()
    assert run_kvtool("get", small_db, "k").stdout == b"after-wait"


def test_wait_lock_gives_up_with_75(small_db: Path, writer_process) -> None:  # type: ignore[no-untyped-def]
    writer_process(small_db)
    result = run_kvtool("put", "--wait-lock", "300ms", small_db, "k", "v")
    assert result.returncode == 75
    last = result.stderr.decode().strip().splitlines()[-1]
    assert last.startswith("kvtool: error: ") and "gave up after waiting 0.3s" in last
