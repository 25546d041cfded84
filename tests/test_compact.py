"""`kvtool compact`: space reclaimed, records unchanged, cancellable by signals, busy handling."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kvtool.engine import OpenMode, open_db

from .conftest import kvtool_executable, make_db, run_kvtool


def read_all(path: Path, cf: str | None = None) -> dict[bytes, bytes]:
    with open_db(path, OpenMode.READ_ONLY) as db:
        return {k: v for batch in db.batches(cf) for k, v in batch}


def stats_of(stderr: bytes) -> dict[str, Any]:
    """The --stats json object: the last line of stderr."""
    line = stderr.decode().strip().splitlines()[-1]
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def churned_db(path: Path, *, keys: int, rounds: int, value_size: int, seed: int = 1) -> Path:
    """A database whose keys were overwritten `rounds` times (one L0 file per round), then a
    third of them deleted (one more L0 file): most of its SST bytes are obsolete versions and
    tombstones. Fewer than 4 L0 files, RocksDB's default trigger, so that no automatic
    compaction races the test's own."""
    assert rounds + 1 < 4
    rnd = random.Random(seed)
    with open_db(path, OpenMode.READ_WRITE, create=True) as db:
        for _ in range(rounds):
            with db.write_batch() as batch:
                for i in range(keys):
                    batch.put(b"key:%08d" % i, rnd.randbytes(value_size))
                db.write(batch)
            db.flush()
        with db.write_batch() as batch:
            for i in range(0, keys, 3):
                batch.delete(b"key:%08d" % i)
            db.write(batch)
        db.flush()
    return path


def test_compact_shrinks_sst_bytes_and_keeps_every_record(tmp_path: Path) -> None:
    db = churned_db(tmp_path / "churn.db", keys=20_000, rounds=2, value_size=100)
    expected = read_all(db)
    assert len(expected) == 20_000 - len(range(0, 20_000, 3))

    result = run_kvtool("compact", "--stats", "json", db)

    assert result.returncode == 0, result.stderr
    stats = stats_of(result.stderr)
    assert stats["status"] == "ok" and stats["exit_code"] == 0
    assert stats["column_families"] == ["default"]
    before, after = stats["before"], stats["after"]
    assert before["sst_files"] == 3
    assert after["sst_bytes"] < before["sst_bytes"] / 2
    assert [lv["level"] for lv in before["levels"]] == [0]
    assert all(lv["level"] > 0 for lv in after["levels"])
    assert after["estimated_keys"] <= before["estimated_keys"]
    assert stats["background_errors_after"] == stats["background_errors_before"] == 0
    assert read_all(db) == expected


def test_compact_text_stats_block_and_quiet(tmp_path: Path) -> None:
    db = churned_db(tmp_path / "churn.db", keys=2_000, rounds=2, value_size=50)
    stats_file = tmp_path / "stats" / "compact.json"
    stats_file.parent.mkdir()

    shown = run_kvtool("compact", db)
    quiet = run_kvtool("compact", "-q", "--stats-file", stats_file, db)

    assert shown.returncode == 0, shown.stderr
    text = shown.stderr.decode()
    assert "kvtool: compacting column family 'default'" in text
    for label in ("SST bytes", "SST files", "estimated keys", "levels before", "levels after"):
        assert label in text
    assert shown.stdout == b""
    assert quiet.returncode == 0
    assert quiet.stdout == quiet.stderr == b""
    written = json.loads(stats_file.read_text())
    assert written["command"] == "compact" and written["status"] == "ok"
    assert os.listdir(stats_file.parent) == ["compact.json"]  # no temp file left behind


def test_compact_one_column_family_and_a_range(tmp_path: Path) -> None:
    records = {b"k%04d" % i: b"v" * 50 for i in range(1000)}
    db = make_db(tmp_path / "cf.db", records, cf={"users": records, "other": records})

    result = run_kvtool(
        "compact", "--cf", "users", "--start", "k0100", "--end", "k0900",
        "--bottommost", "force", "--stats", "json", db,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    stats = stats_of(result.stderr)
    assert stats["column_families"] == stats["completed"] == ["users"]
    assert (stats["start"], stats["end"], stats["bottommost"]) == ("k0100", "k0900", "force")
    assert [cf["name"] for cf in stats["after"]["column_families"]] == ["users"]
    assert read_all(db, "users") == read_all(db, "other") == read_all(db) == records


def test_compact_all_column_families_by_default(tmp_path: Path) -> None:
    records = {b"a": b"1", b"b": b"2"}
    db = make_db(tmp_path / "cf.db", records, cf={"users": records})

    result = run_kvtool("compact", "--stats", "json", db)

    assert result.returncode == 0, result.stderr
    assert sorted(stats_of(result.stderr)["completed"]) == ["default", "users"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--cf", "nope"], 2, "no column family 'nope'"),
        (["--io-rate", "fast"], 2, "--io-rate: 'fast' is not a size"),
        (["--wait-lock", "soon"], 2, "--wait-lock: 'soon' is not a duration"),
        (["--start", "b", "--end", "a"], 2, "--start must sort before --end"),
        (["--key-format", "hex", "--start", "zz"], 2, "not valid hex"),
        (["--bottommost", "always"], 2, "always"),
    ],
)
def test_compact_bad_options(small_db: Path, args: list[str], code: int, message: str) -> None:
    result = run_kvtool("compact", *args, small_db)

    assert result.returncode == code
    err = result.stderr.decode()
    assert err.startswith("kvtool: error: ") and message in err
    assert "Traceback" not in err


def test_compact_missing_database_creates_nothing(tmp_path: Path) -> None:
    result = run_kvtool("compact", tmp_path / "absent")

    assert result.returncode == 66
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_signal_cancels_a_long_compaction(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    # ~8 MB of overlapping L0 files; at 200 KB/s the compaction would take about 15 s.
    db = churned_db(tmp_path / "long.db", keys=10_000, rounds=2, value_size=400)
    digest_before = run_kvtool("verify", "-q", "--digest", db).stdout
    proc = subprocess.Popen(
        [kvtool_executable(), "--trace-handles", "compact", "--io-rate=200KB", "--stats=json", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        assert proc.stderr.readline() == b"kvtool: handle open db#1\n"
        assert proc.stderr.readline().startswith(b"kvtool: compacting column family 'default'")
        # The second line comes once RocksDB reports the compaction running.
        assert proc.stderr.readline() == b"kvtool: compaction of 'default' running\n"
        proc.send_signal(sig)
        rest = proc.stderr.read()
        returncode = proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()

    assert returncode == code, rest
    lines = rest.decode().strip().splitlines()
    stats = json.loads(lines[-2])
    assert stats["status"] == "stopped" and stats["exit_code"] == code
    assert stats["error"].startswith(f"compaction interrupted by {sig.name}")
    assert stats["completed"] == []
    # Cancelled in its first job (which would take ~15 s), so no output of it was kept.
    assert stats["after"]["levels"] == stats["before"]["levels"]
    assert lines[-1].startswith(f"kvtool: error: compaction interrupted by {sig.name}")
    assert "kvtool: handle release db#1" in lines  # released, and no leak reported
    verified = run_kvtool("verify", "-q", "--digest", db)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout == digest_before
    assert not (db / "rocksdict-config.json").exists()


def test_new_background_error_exits_74(tmp_path: Path) -> None:
    db = churned_db(tmp_path / "bad.db", keys=5_000, rounds=2, value_size=200)
    damaged = flip_middle(sorted(db.glob("*.sst"))[1])

    result = run_kvtool("compact", "--stats", "json", db)

    assert result.returncode == 74
    err = result.stderr.decode()
    assert "background error" in err and damaged.name in err
    stats = stats_of(result.stderr.rsplit(b"\n", 2)[0])
    assert stats["status"] == "failed" and stats["exit_code"] == 74
    assert stats["background_errors_after"] > stats["background_errors_before"]


def flip_middle(sst: Path) -> Path:
    """Invert 16 bytes in the middle of a file: a data block whose checksum no longer matches."""
    size = sst.stat().st_size
    with sst.open("r+b") as f:
        f.seek(size // 2)
        chunk = f.read(16)
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))
    return sst


def test_busy_database_compact_and_checkpoint_exit_75_reads_still_work(
    small_db: Path, tmp_path: Path, writer_process: Callable[[Path], subprocess.Popen[str]]
) -> None:
    writer = writer_process(small_db)

    compacted = run_kvtool("compact", small_db)
    copied = run_kvtool("checkpoint", small_db, tmp_path / "copy")
    verified = run_kvtool("verify", "--stats", "json", small_db)
    described = run_kvtool("info", small_db)

    assert compacted.returncode == 75
    assert "locked by another process" in compacted.stderr.decode()
    assert copied.returncode == 75
    err = copied.stderr.decode()
    assert f"in use by process {writer.pid}" in err and "WAL" in err
    assert not (tmp_path / "copy").exists()
    assert verified.returncode == 0, verified.stderr
    assert stats_of(verified.stderr)["records"] == 101  # the writer's WAL-only record too
    assert described.returncode == 0, described.stderr
    assert f"process {writer.pid}" in described.stdout.decode()


def test_wait_lock_gives_up_with_75(
    small_db: Path, writer_process: Callable[[Path], subprocess.Popen[str]]
) -> None:
    writer_process(small_db)

    result = run_kvtool("compact", "--wait-lock", "300ms", small_db)

    assert result.returncode == 75
    assert "gave up after waiting 0.3s" in result.stderr.decode()


def test_wait_lock_gets_the_database_once_the_owner_lets_go(
    small_db: Path, writer_process: Callable[[Path], subprocess.Popen[str]]
) -> None:
    writer = writer_process(small_db)
    proc = subprocess.Popen(
        [kvtool_executable(), "compact", "-q", "--wait-lock", "60s", str(small_db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdin is not None
    writer.stdin.close()  # the owner closes the database while compact waits (or before)
    writer.wait(timeout=30)
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    assert err == b""  # -q: quiet even when it had to wait
    assert read_all(small_db)[b"live-writer"] == b"wal-only"
