"""Damaged metadata is loud, and a live owner never makes a read fail (issue 10).

Each damaged database is written by another program (`ldb` 7.8, rocksdict with explicit options),
damaged with plain file operations, and that writer's own reader shows what RocksDB's recovery
silently does with it; kvtool must say so instead (exit 74, naming the damaged file).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvtool.errors import ExitCode

from .conftest import dir_state, run_kvtool
from .oracles import ldb, ldb_load, ldb_scan, rocksdict_script

READS = (("count",), ("export", "-q"), ("scan", "-q", "-n", "5"), ("verify", "-q"))


def _records(n: int, value_size: int = 100) -> list[tuple[bytes, bytes]]:
    return [(b"key%06d" % i, b"v" * value_size + b"%d" % i) for i in range(n)]


def _one_error_line(stderr: bytes) -> str:
    text = stderr.decode()
    lines = [line for line in text.splitlines() if line.startswith("kvtool: error: ")]
    assert len(lines) == 1, text
    assert "Traceback" not in text, text
    assert "kvtool-ro-" not in text, text  # never the private shadow directory
    return lines[0]


# -- a MANIFEST cut short ---------------------------------------------------------------------
@pytest.fixture
def cut_manifest(tmp_path: Path) -> tuple[Path, str]:
    """20,000 records that `ldb load` flushed into one SST file, then the MANIFEST cut to two
    thirds: the edit that added the SST file is lost."""
    db = ldb_load(tmp_path / "cut.db", _records(20_000))
    (sst,) = [p.name for p in db.glob("*.sst")]
    (manifest,) = db.glob("MANIFEST-*")
    os.truncate(manifest, manifest.stat().st_size * 2 // 3)
    # The writer's own tool: RocksDB recovers the cut MANIFEST without a word and reads nothing.
    plain = ldb(f"--db={db}", "scan")
    assert plain.returncode == 0 and plain.stdout == b"", plain
    return db, sst


def test_cut_manifest_fails_every_read_naming_manifest_and_lost_file(
    cut_manifest: tuple[Path, str],
) -> None:
    db, sst = cut_manifest
    before = dir_state(db)
    for args in READS:
        result = run_kvtool(*args, db)
        assert result.returncode == ExitCode.IO_ERROR, (args, result.stderr)
        line = _one_error_line(result.stderr)
        assert str(db / "MANIFEST-") in line and str(db / sst) in line, line
        assert result.stdout == b"", args
    assert dir_state(db) == before


def test_cut_manifest_verify_names_the_manifest_as_damaged(cut_manifest: tuple[Path, str]) -> None:
    db, _ = cut_manifest
    result = run_kvtool("verify", db)
    assert result.returncode == ExitCode.IO_ERROR
    damaged = [ln for ln in result.stderr.decode().splitlines() if "damaged file" in ln]
    assert damaged and str(db / "MANIFEST-") in damaged[0], result.stderr


def test_cut_manifest_info_lists_the_loss_under_attention(cut_manifest: tuple[Path, str]) -> None:
    db, sst = cut_manifest
    before = dir_state(db)
    result = run_kvtool("info", db)
    assert result.returncode == 0, result.stderr
    attention = result.stdout.decode().split("attention:", 1)[1]
    assert "data loss" in attention and str(db / sst) in attention, result.stdout
    assert dir_state(db) == before


def test_cut_manifest_refuses_writes_and_keeps_the_file(cut_manifest: tuple[Path, str]) -> None:
    db, sst = cut_manifest
    before = dir_state(db)
    for args in (("put", db, "k", "v"), ("delete", db, "key000001"), ("compact", db)):
        result = run_kvtool(*args)
        assert result.returncode == ExitCode.IO_ERROR, (args, result.stderr)
        assert str(db / sst) in _one_error_line(result.stderr)
    assert dir_state(db) == before  # the 20,000-record SST file is still there, untouched


def test_allow_data_loss_reads_what_rocksdb_recovers_and_writes_delete(
    cut_manifest: tuple[Path, str],
) -> None:
    db, sst = cut_manifest
    result = run_kvtool("--allow-data-loss", "count", db)
    assert (result.returncode, result.stdout) == (0, b"0\n"), result.stderr  # as ldb reads it
    assert (db / sst).exists()
    result = run_kvtool("--allow-data-loss", "put", db, "k", "v")
    assert result.returncode == 0, result.stderr
    assert not (db / sst).exists()  # what the option's help says a write does
    assert ldb_scan(db) == [(b"k", b"v")]


# -- a WAL damaged mid-file ----------------------------------------------------------------------
@pytest.fixture
def wal_db(tmp_path: Path) -> Path:
    """5,000 records that `ldb load` left in the WAL only."""
    db = ldb_load(tmp_path / "wal.db", _records(5_000, 200), wal=True)
    assert [p.name for p in db.glob("*.sst")] == []
    return db


def _wal(db: Path) -> Path:
    (wal,) = [p for p in db.glob("*.log") if p.stat().st_size]
    return wal


def test_wal_damaged_mid_file_fails_reads_naming_the_wal(wal_db: Path) -> None:
    wal = _wal(wal_db)
    with wal.open("r+b") as f:
        f.seek(wal.stat().st_size // 2)
        f.write(b"\xde\xad\xbe\xef" * 8)
    # The writer's own reader stops at the damage without a word (point-in-time recovery).
    assert 0 < len(ldb_scan(wal_db)) < 5_000
    before = dir_state(wal_db)
    for args in READS:
        result = run_kvtool(*args, wal_db)
        assert result.returncode == ExitCode.IO_ERROR, (args, result.stderr)
        assert str(wal) in _one_error_line(result.stderr)
    info = run_kvtool("info", wal_db)
    assert info.returncode == 0 and str(wal).encode() in info.stdout.split(b"attention:")[1]
    put = run_kvtool("put", wal_db, "k", "v")
    assert put.returncode == ExitCode.IO_ERROR and str(wal) in _one_error_line(put.stderr)
    assert dir_state(wal_db) == before


def test_wal_with_a_torn_tail_reads_like_the_writer(wal_db: Path) -> None:
    """A record cut at the end of the log is what a crash mid-write leaves: not damage."""
    wal = _wal(wal_db)
    os.truncate(wal, wal.stat().st_size - 100)
    expected = ldb_scan(wal_db)
    assert 0 < len(expected) < 5_000
    result = run_kvtool("count", wal_db)
    assert (result.returncode, result.stdout) == (0, b"%d\n" % len(expected)), result.stderr
    assert run_kvtool("verify", "-q", wal_db).returncode == 0


@pytest.fixture
def two_wals(tmp_path: Path) -> Path:
    """rocksdict, two column families, `default` flushed: the first WAL is still needed for
    `b`, and a second one holds later writes; the writer dies without closing."""
    db = tmp_path / "two-wals.db"
    rocksdict_script(
        """
import os
o = rd.Options(raw_mode=True)
o.create_if_missing(True)
o.create_missing_column_families(True)
t = rd.BlockBasedOptions(); t.set_format_version(5); o.set_block_based_table_factory(t)
db = rd.Rdict(sys.argv[1], o, column_families={"b": rd.Options(raw_mode=True)})
b = db.get_column_family("b")
for i in range(3000):
    db.put(b"a%05d" % i, b"x" * 200)
    b.put(b"b%05d" % i, b"y" * 200)
db.flush()
for i in range(3000):
    db.put(b"c%05d" % i, b"z" * 200)
sys.stdout.flush()
os._exit(0)
""",
        db,
    )
    assert len([p for p in db.glob("*.log") if p.stat().st_size]) == 2
    return db


@pytest.mark.parametrize("which", [0, 1])
def test_the_damaged_one_of_two_wals_is_named(two_wals: Path, which: int) -> None:
    wals = sorted(two_wals.glob("*.log"))
    damaged = wals[which]
    with damaged.open("r+b") as f:
        f.seek(damaged.stat().st_size // 3)
        f.write(b"\xde\xad\xbe\xef" * 8)
    for args in (("count", "--cf", "b"), ("verify", "-q")):
        result = run_kvtool(*args, two_wals)
        assert result.returncode == ExitCode.IO_ERROR, (args, result.stderr)
        line = _one_error_line(result.stderr)
        assert str(damaged) in line and str(wals[1 - which]) not in line, line
    info = run_kvtool("info", two_wals)
    assert info.returncode == 0, info.stderr
    assert str(damaged).encode() in info.stdout.split(b"attention:")[1]


# -- BlobDB ---------------------------------------------------------------------------------------
def test_verify_names_the_damaged_blob_file(tmp_path: Path) -> None:
    """Two flushes, two blob files; the second is damaged: verify names it, not an SST."""
    db = tmp_path / "blob.db"
    rocksdict_script(
        """
o = rd.Options(raw_mode=True)
o.create_if_missing(True)
o.set_enable_blob_files(True)
o.set_min_blob_size(16)
t = rd.BlockBasedOptions(); t.set_format_version(5); o.set_block_based_table_factory(t)
db = rd.Rdict(sys.argv[1], o)
for part in range(2):
    for i in range(1000):
        db.put(b"k%d%04d" % (part, i), b"v" * 200 + b"%d" % i)
    db.flush()
db.close()
""",
        db,
    )
    blobs = sorted(db.glob("*.blob"))
    assert len(blobs) == 2
    damaged = blobs[1]
    with damaged.open("r+b") as f:
        f.seek(damaged.stat().st_size // 2)
        f.write(b"\xde\xad\xbe\xef" * 4)
    result = run_kvtool("verify", db)
    assert result.returncode == ExitCode.IO_ERROR, result.stderr
    line = _one_error_line(result.stderr)
    assert line.startswith(f"kvtool: error: {damaged}:"), line
    assert f"damaged file  {damaged}" in result.stderr.decode()


# -- errors name the database's own files ------------------------------------------------------
def test_errors_name_the_database_files_not_the_shadow(tmp_path: Path) -> None:
    db = ldb_load(tmp_path / "gone.db", _records(100))
    (sst,) = db.glob("*.sst")
    sst.unlink()
    for args in (*READS, ("info",)):
        result = run_kvtool(*args, db)
        assert result.returncode == ExitCode.IO_ERROR, (args, result.stderr)
        line = _one_error_line(result.stderr)
        assert str(sst) in line, line
        assert "Corruption: Corruption" not in line


# -- next to a live owner that flushes and compacts ----------------------------------------------
OWNER = """
import os, sys
import rocksdict as rd
o = rd.Options(raw_mode=True)
o.create_if_missing(True)
o.set_write_buffer_size(64 * 1024)
o.set_level_zero_file_num_compaction_trigger(2)
o.set_target_file_size_base(64 * 1024)
o.set_max_bytes_for_level_base(256 * 1024)
t = rd.BlockBasedOptions(); t.set_format_version(5); o.set_block_based_table_factory(t)
db = rd.Rdict(sys.argv[1], o)
i = 0
while True:
    batch = rd.WriteBatch(raw_mode=True)
    for j in range(50):
        batch.put(b"k%08d" % ((i * 50 + j) % 20000), os.urandom(100))
    db.write(batch)
    i += 1
    if i % 200 == 0:
        db.flush()
    if i == 400:
        print("ready", flush=True)
"""


@pytest.fixture
def live_owner(tmp_path: Path) -> Iterator[Path]:
    db = tmp_path / "live.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield db
    finally:
        proc.kill()
        proc.wait()


def test_reads_next_to_a_live_owner_never_fail(
    live_owner: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every reading command, again and again, while the owner flushes and compacts: before,
    files deleted between kvtool's open and its reads made them fail with 74. Bounded by a time
    budget (KVTOOL_STRESS_SECONDS, default 6 s; at least one round), not by a timing assertion."""
    from kvtool.cli.app import run

    other = ldb_load(tmp_path / "other.db", _records(10))
    commands = [*READS, ("info",), ("diff", "-q")]
    budget = float(os.environ.get("KVTOOL_STRESS_SECONDS", "6"))
    # The installed console script once, as cron runs it.
    for args in commands:
        extra = (other,) if args[0] == "diff" else ()
        result = run_kvtool(*args, live_owner, *extra)
        assert result.returncode in (0, 1) if args[0] == "diff" else result.returncode == 0, (
            args,
            result.stderr,
        )
    runs, failures = 0, []
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        for args in commands:
            extra = (str(other),) if args[0] == "diff" else ()
            code = run([*args, str(live_owner), *extra])
            runs += 1
            if code not in ((0, 1) if args[0] == "diff" else (0,)):
                failures.append((args, code, capfd.readouterr().err[-500:]))
            else:
                capfd.readouterr()
    print(f"{runs} runs, {len(failures)} failures")
    assert failures == [], failures
    assert runs >= len(commands) or budget <= 0
