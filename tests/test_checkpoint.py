"""`kvtool checkpoint`: a consistent, hard-linked copy that verifies equal and opens in ldb."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kvtool.engine import OpenMode, open_db

from .conftest import dir_state, make_db, require_tool, run_kvtool


def ldb_scan(ldb: str, db: Path) -> list[str]:
    result = subprocess.run(
        [ldb, f"--db={db}", "scan", "--hex"],
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().splitlines()


def test_checkpoint_digest_equals_source_and_opens_in_ldb(tmp_path: Path) -> None:
    ldb = require_tool("ldb")
    records = {b"key:%05d" % i: os.urandom(64) for i in range(5000)}
    source = make_db(tmp_path / "src.db", records, cf={"users": {b"u1": b"alice"}})
    copy = tmp_path / "copy.db"

    result = run_kvtool("checkpoint", "--stats", "json", source, copy)

    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stderr.decode().strip().splitlines()[-1])
    assert stats["status"] == "ok" and stats["dest"] == str(copy)
    assert stats["linked"] >= 2  # both column families' SST files share the source's inodes
    assert stats["files"] == stats["linked"] + stats["copied"]
    src_digest = run_kvtool("verify", "-q", "--digest", source)
    copy_digest = run_kvtool("verify", "-q", "--digest", copy)
    assert src_digest.returncode == copy_digest.returncode == 0
    assert len(src_digest.stdout.strip()) == 64
    assert copy_digest.stdout == src_digest.stdout
    assert sorted(p.name for p in copy.iterdir() if p.name.endswith(".sst")) == sorted(
        p.name for p in source.iterdir() if p.name.endswith(".sst")
    )
    assert not (copy / "rocksdict-config.json").exists()
    lines = ldb_scan(ldb, copy)
    assert len(lines) == len(records)
    key, value = next(iter(records.items()))
    assert lines[0] == f"0x{key.hex().upper()} : 0x{value.hex().upper()}"


def test_checkpoint_keeps_data_that_is_only_in_the_wal(tmp_path: Path) -> None:
    source = make_db(tmp_path / "src.db", {b"flushed": b"1"})
    # An owner that wrote and then died without flushing: the record lives in its WAL only.
    code = (
        "import os, sys\n"
        "from rocksdict import Rdict, Options\n"
        "o, cfs = Options.load_latest(sys.argv[1])\n"
        "db = Rdict(sys.argv[1], o, column_families=cfs)\n"
        "db.put(b'wal-only', b'2')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(source)], check=True)
    copy = tmp_path / "copy.db"

    result = run_kvtool("checkpoint", "-q", source, copy)

    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    with open_db(copy, OpenMode.READ_ONLY) as db:
        assert db.get(b"wal-only") == b"2"
        assert db.get(b"flushed") == b"1"


def test_checkpoint_refuses_an_existing_destination(small_db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "exists"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    before = dir_state(dest)

    result = run_kvtool("checkpoint", small_db, dest)

    assert result.returncode == 2
    assert result.stderr.decode() == (
        f"kvtool: error: {dest} already exists (give a new directory for the checkpoint)\n"
    )
    assert dir_state(dest) == before


def test_checkpoint_needs_the_destination_parent(small_db: Path, tmp_path: Path) -> None:
    result = run_kvtool("checkpoint", small_db, tmp_path / "no" / "such" / "dir")

    assert result.returncode == 2
    assert "is not a directory" in result.stderr.decode()
    assert not (tmp_path / "no").exists()


def test_checkpoint_of_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    result = run_kvtool("checkpoint", tmp_path / "absent", tmp_path / "copy")

    assert result.returncode == 66
    assert not (tmp_path / "absent").exists() and not (tmp_path / "copy").exists()


def test_checkpoint_stats_file(small_db: Path, tmp_path: Path) -> None:
    stats_file = tmp_path / "ckpt.json"

    result = run_kvtool("checkpoint", "-q", "--stats-file", stats_file, small_db, tmp_path / "c")

    assert result.returncode == 0
    assert result.stdout == result.stderr == b""
    stats = json.loads(stats_file.read_text())
    assert stats["command"] == "checkpoint" and stats["status"] == "ok"
    assert stats["bytes"] > 0


def test_checkpoint_to_another_filesystem_copies_and_the_owner_reads_both(tmp_path: Path) -> None:
    """Across filesystems RocksDB copies each file by the size it recorded, the OPTIONS file too:
    the owner's OPTIONS text that kvtool keeps there must not break the copy."""
    import shutil

    from .oracles import ldb_load, ldb_scan

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        import pytest

        pytest.skip("needs /dev/shm on another filesystem")
    records = [(b"k%04d" % i, b"v%d" % i) for i in range(500)]
    db = ldb_load(tmp_path / "ldb.db", records)
    dest = shm / f"kvtool-test-checkpoint-{os.getpid()}"
    try:
        result = run_kvtool("checkpoint", db, dest)
        assert result.returncode == 0, result.stderr.decode()
        assert b"0 hard-linked" in result.stderr  # copied, not linked: another filesystem
        assert ldb_scan(dest) == records  # plain ldb 7.8 loads the copy's OPTIONS file
        assert ldb_scan(db) == records
    finally:
        shutil.rmtree(dest, ignore_errors=True)
