"""`kvtool verify`: a checksum-verified read, corruption located, digests that compare copies."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path
from typing import Any

from kvtool.engine import OpenMode, open_db

from .conftest import dir_state, make_db, run_kvtool


def stats_of(stderr: bytes) -> dict[str, Any]:
    for line in reversed(stderr.decode().splitlines()):
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise AssertionError(f"no JSON stats in {stderr!r}")


def flip_middle(sst: Path) -> None:
    """Invert 16 bytes in the middle of a file: a data block whose checksum no longer matches."""
    size = sst.stat().st_size
    with sst.open("r+b") as f:
        f.seek(size // 2)
        chunk = f.read(16)
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))


def test_verify_reads_every_column_family_and_leaves_the_directory_alone(tmp_path: Path) -> None:
    records = {b"key:%04d" % i: b"v" * 10 for i in range(300)}
    db = make_db(tmp_path / "v.db", records, cf={"users": {b"u1": b"alice", b"u2": b"bob"}})
    before = dir_state(db)

    result = run_kvtool("verify", "--stats", "json", db)

    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    stats = stats_of(result.stderr)
    assert stats["status"] == "ok"
    assert stats["records"] == 302
    assert stats["key_bytes"] == 300 * 8 + 4 and stats["value_bytes"] == 3000 + 8
    by_cf = {cf["name"]: cf for cf in stats["column_families"]}
    assert by_cf["default"]["records"] == 300 and by_cf["users"]["records"] == 2
    assert by_cf["users"]["value_bytes"] == 8
    assert stats["digest"] is None
    assert dir_state(db) == before


def test_verify_text_stats_name_each_column_family(tmp_path: Path) -> None:
    db = make_db(tmp_path / "v.db", {b"a": b"1"}, cf={"users": {b"u": b"22"}})

    result = run_kvtool("verify", db)

    assert result.returncode == 0
    text = result.stderr.decode()
    assert "status" in text and "ok" in text
    assert "cf default  1 records" in text and "cf users    1 records" in text


def test_digest_is_the_documented_hash_of_the_content(tmp_path: Path) -> None:
    db = make_db(tmp_path / "d.db", {b"b": b"2", b"a": b"1"}, cf={"users": {b"\x00": b""}})

    result = run_kvtool("verify", "-q", "--digest", db)

    def cf_hash(name: bytes, records: list[tuple[bytes, bytes]]) -> bytes:
        h = hashlib.sha256(struct.pack(">QQ", len(name), 0) + name)
        for key, value in records:
            h.update(struct.pack(">QQ", len(key), len(value)) + key + value)
        return h.digest()

    expected = hashlib.sha256(
        cf_hash(b"default", [(b"a", b"1"), (b"b", b"2")]) + cf_hash(b"users", [(b"\x00", b"")])
    ).hexdigest()
    assert result.returncode == 0
    assert result.stderr == b""
    assert result.stdout.decode() == expected + "\n"


def test_digest_follows_content_not_file_layout(tmp_path: Path) -> None:
    records = {b"key:%04d" % i: b"value-%d" % i for i in range(2000)}
    a = make_db(tmp_path / "a.db", records)
    b = make_db(tmp_path / "b.db", dict(reversed(list(records.items()))))
    digest_a = run_kvtool("verify", "-q", "--digest", a).stdout

    # Same content, other files: b after a compaction. Then one value changed in b.
    assert run_kvtool("compact", "-q", "--bottommost", "force", b).returncode == 0
    assert run_kvtool("verify", "-q", "--digest", b).stdout == digest_a
    assert run_kvtool("put", b, "key:1000", "changed").returncode == 0
    changed = run_kvtool("verify", "-q", "--digest", b).stdout
    assert len(changed) == 65 and changed != digest_a
    # A value moved to another key is another content too.
    c = make_db(tmp_path / "c.db", {b"ab": b"c"})
    d = make_db(tmp_path / "d.db", {b"a": b"bc"})
    assert (
        run_kvtool("verify", "-q", "--digest", c).stdout
        != run_kvtool("verify", "-q", "--digest", d).stdout
    )


def test_corrupt_block_exits_74_naming_the_file_and_last_good_key(tmp_path: Path) -> None:
    records = {b"key:%06d" % i: b"x" * 100 for i in range(20_000)}
    original = make_db(tmp_path / "orig.db", records)
    db = tmp_path / "copy.db"
    shutil.copytree(original, db)
    (sst,) = db.glob("*.sst")
    flip_middle(sst)
    before = dir_state(db)

    result = run_kvtool("verify", "--digest", "--stats", "json", db)

    assert result.returncode == 74
    assert result.stdout == b""  # no digest for a database that could not be read whole
    err = result.stderr.decode()
    error_line = err.strip().splitlines()[-1]
    assert error_line.startswith(f"kvtool: error: {sst}: column family 'default', after key ")
    assert "Corruption" in error_line
    assert "kvtool-ro-" not in err  # the engine's private directory is not what to look at
    stats = stats_of(result.stderr)
    assert stats["status"] == "failed"
    assert stats["corrupt_file"] == str(sst)
    last_good = stats["last_good_key"]
    assert last_good is not None and last_good in error_line
    # Every record up to the last good key was read; the damage is in the middle of the file.
    assert stats["records"] == sorted(records).index(last_good.encode()) + 1
    assert 0 < stats["records"] < len(records)
    assert dir_state(db) == before
    assert run_kvtool("verify", "-q", original).returncode == 0


def test_verify_names_the_candidates_when_rocksdb_does_not_name_the_file() -> None:
    from kvtool.engine import LiveFile
    from kvtool.errors import CorruptionError
    from kvtool.ops.verify import _located

    def live(name: str, level: int, lo: bytes, hi: bytes) -> LiveFile:
        return LiveFile(name, "default", level, 1, 1, 0, lo, hi)

    files = [
        live("000010.sst", 6, b"a", b"f"),
        live("000011.sst", 6, b"g", b"m"),
        live("000012.sst", 6, b"n", b"z"),
        live("000020.sst", 0, b"a", b"c"),
    ]
    error, named, candidates = _located(
        CorruptionError("reading: Corruption: bad block contents"),
        Path("/db"),
        "default",
        b"h",
        files,
    )
    assert named == "/db/000011.sst" and candidates == ["/db/000011.sst"]
    assert str(error).startswith("/db/000011.sst: column family 'default', after key 'h': ")
    _, named, candidates = _located(
        CorruptionError("reading: Corruption: bad block contents"),
        Path("/db"),
        "default",
        b"b",
        files,
    )
    assert named is None and candidates == ["/db/000020.sst", "/db/000010.sst"]


def test_verify_missing_database_is_66_and_creates_nothing(tmp_path: Path) -> None:
    result = run_kvtool("verify", tmp_path / "absent")

    assert result.returncode == 66
    assert not (tmp_path / "absent").exists()


def test_verify_stats_file_is_written_on_failure_too(tmp_path: Path) -> None:
    db = make_db(tmp_path / "bad.db", {b"key:%06d" % i: b"y" * 100 for i in range(20_000)})
    (sst,) = db.glob("*.sst")
    flip_middle(sst)
    stats_file = tmp_path / "verify.json"

    result = run_kvtool("verify", "-q", "--stats-file", stats_file, db)

    assert result.returncode == 74
    assert result.stderr.decode().count("\n") == 1  # -q: only the error line
    stats = json.loads(stats_file.read_text())
    assert stats["status"] == "failed" and stats["corrupt_file"] == str(sst)


def test_verify_next_to_a_live_writer_sees_its_wal(small_db: Path, writer_process: Any) -> None:
    writer_process(small_db)
    before = dir_state(small_db, live_owner=True)

    result = run_kvtool("verify", "--stats", "json", small_db)

    assert result.returncode == 0, result.stderr
    assert stats_of(result.stderr)["records"] == 101
    assert dir_state(small_db, live_owner=True) == before
    with open_db(small_db, OpenMode.READ_ONLY) as db:
        assert db.get(b"live-writer") == b"wal-only"
