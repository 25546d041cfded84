"""`kvtool repair`: refused next to an owner, a backup first (or --no-backup), and a database its
writer (ldb 7.8) reads whole afterwards."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from .conftest import dir_state, run_kvtool
from .oracles import ldb_load, ldb_ok, ldb_scan


def contents(path: Path) -> dict[str, tuple[int, str]]:
    return {name: (size, digest) for name, (size, _mtime, digest) in dir_state(path).items()}


def ldb_db_with_wal(tmp_path: Path) -> Path:
    db = tmp_path / "r.db"
    ldb_load(db, [(b"k%03d" % i, b"v%d" % i) for i in range(100)])
    ldb_load(db, [(b"m%03d" % i, b"w%d" % i) for i in range(50)])
    ldb_ok(f"--db={db}", "put", "wal-key", "wal-value")  # stays in the WAL
    return db


def test_repair_rebuilds_a_lost_manifest_after_a_backup(tmp_path: Path) -> None:
    db = ldb_db_with_wal(tmp_path)
    expected = ldb_scan(db)
    assert len(expected) == 151
    for name in [p.name for p in db.glob("MANIFEST-*")] + ["CURRENT"]:
        (db / name).unlink()
    before = contents(db)
    backup = tmp_path / "backup"
    result = run_kvtool("repair", db, "--backup", backup, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["before"]["manifest"] is None
    assert report["after"]["manifest"] and report["after"]["live_sst_files"]["default"] >= 3
    assert "CURRENT" in report["added"]
    assert contents(backup) == before  # the backup is the directory as it was
    assert ldb_scan(db) == expected  # the writer reads every record back, the WAL's included


def test_repair_needs_a_backup_choice(tmp_path: Path) -> None:
    db = ldb_db_with_wal(tmp_path)
    before = dir_state(db)
    for args in ((), ("--no-backup", "--backup", tmp_path / "b")):
        result = run_kvtool("repair", db, *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(b"kvtool: error:")
    inside = run_kvtool("repair", db, "--backup", db / "sub")
    assert inside.returncode == 2
    assert dir_state(db) == before


def test_repair_refuses_a_database_another_process_holds(
    tmp_path: Path, writer_process: Callable[[Path], subprocess.Popen[str]]
) -> None:
    db = ldb_db_with_wal(tmp_path)
    ldb_ok(f"--db={db}", "scan")  # recovery flushes the WAL, so the owner can open it
    writer_process(db)
    before = dir_state(db, live_owner=True)
    result = run_kvtool("repair", db, "--no-backup")
    assert result.returncode == 75, result.stderr
    assert b"in use by process" in result.stderr
    assert dir_state(db, live_owner=True) == before


def test_repair_of_a_healthy_database_keeps_every_record(tmp_path: Path) -> None:
    db = ldb_db_with_wal(tmp_path)
    expected = ldb_scan(db)
    result = run_kvtool("repair", db, "--no-backup")
    assert result.returncode == 0, result.stderr
    assert b"repaired" in result.stdout
    assert ldb_scan(db) == expected
