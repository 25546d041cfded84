"""Format safety: kvtool's writes leave a database readable by the RocksDB that owns it, and
refuse (exit 2, unless --force) what kvtool's RocksDB could not preserve."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from kvtool.engine import OpenMode, open_db
from kvtool.engine.format_safety import (
    UnsafeWriteError,
    check_writable_safely,
    sst_format_version,
    sst_format_versions,
)
from kvtool.engine.rdict import options_round_trip

from .conftest import dir_state, make_db, require_tool, run_kvtool


def ldb(db: Path, *args: str, input: bytes | None = None) -> bytes:
    tool = require_tool("ldb")
    return subprocess.run(
        [tool, f"--db={db}", *args], input=input, capture_output=True, check=True
    ).stdout


def ldb_records(db: Path) -> dict[bytes, bytes]:
    out = ldb(db, "scan", "--hex").decode()
    pairs = (line.partition(" : ") for line in out.splitlines())
    return {bytes.fromhex(k[2:]): bytes.fromhex(v[2:]) for k, _, v in pairs}


def assert_readable_by_sst_dump(db: Path) -> None:
    """Debian's sst_dump (RocksDB 7.8) opens every SST file, and none is above format 5."""
    tool = require_tool("sst_dump")
    versions = sst_format_versions(db)
    assert versions, "the database has no SST file to check"
    assert max(versions.values()) <= 5, versions
    result = subprocess.run(
        [tool, f"--file={db}", "--show_properties"], capture_output=True, check=False
    )
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    assert "unsupported format_version" not in out
    assert out.count("Table Properties:") == len(versions), out


def has_command(name: str) -> bool:
    return run_kvtool(name, "--help").returncode == 0


def test_writes_keep_an_ldb_created_db_readable_by_ldb(tmp_path: Path) -> None:
    db = tmp_path / "ldb.db"
    ldb(db, "--create_if_missing", "put", "--hex", "0x6c64623a30", "0x00ff")
    load = b"".join(b"0x6c64623a%02x ==> 0x76%02x\n" % (i, i) for i in range(1, 50))
    ldb(db, "load", "--hex", input=load)
    ldb(db, "compact")
    expected = {b"ldb:0": b"\x00\xff"}
    expected.update({b"ldb:%c" % i: b"v%c" % i for i in range(1, 50)})
    assert ldb_records(db) == expected
    owner_versions = set(sst_format_versions(db).values())
    assert owner_versions == {5}

    put = run_kvtool("put", db, "kv:put", "one")
    assert put.returncode == 0, put.stderr
    expected[b"kv:put"] = b"one"

    lines = b"".join(b'{"key": "kv:batch:%03d", "value": "b%d"}\n' % (i, i) for i in range(300))
    batch = run_kvtool("import", "--batch-records", "64", db, input=lines)
    assert batch.returncode == 0, batch.stderr
    expected.update({b"kv:batch:%03d" % i: b"b%d" % i for i in range(300)})

    lines = b"".join(b'{"key": "kv:sst:%03d", "value": "s%d"}\n' % (i, i) for i in range(300))
    sst = run_kvtool("import", "--mode", "sst", "--tmp-dir", tmp_path, db, input=lines)
    assert sst.returncode == 0, sst.stderr
    expected.update({b"kv:sst:%03d" % i: b"s%d" % i for i in range(300)})

    gone = run_kvtool("delete-range", "--start", "kv:batch:100", "--end", "kv:batch:200", db)
    assert gone.returncode == 0, gone.stderr
    for i in range(100, 200):
        del expected[b"kv:batch:%03d" % i]

    deleted = run_kvtool("delete", db, "ldb:\x01")
    assert deleted.returncode == 0, deleted.stderr
    del expected[b"ldb:\x01"]

    if has_command("compact"):  # issue 5's command; checked here once it exists
        compacted = run_kvtool("compact", db)
        assert compacted.returncode == 0, compacted.stderr

    assert ldb_records(db) == expected
    assert_readable_by_sst_dump(db)
    # The owner's settings survived: still RocksDB 7.8's comparator and its merge operator.
    newest = max(db.glob("OPTIONS-*"), key=lambda p: int(p.name.split("-")[1])).read_text()
    assert "merge_operator={id=StringAppendOperator;delimiter=\\:;}" in newest
    assert re.search(r"^\s*format_version=5$", newest, re.MULTILINE)


def test_cf_create_and_drop_keep_ldb_readable(tmp_path: Path) -> None:
    db = tmp_path / "ldb.db"
    ldb(db, "--create_if_missing", "put", "a", "1")
    assert run_kvtool("cf", "create", db, "events").returncode == 0
    data = b'{"key": "e", "value": "in events"}\n'
    assert run_kvtool("import", "--cf", "events", db, input=data).returncode == 0
    assert b"events" in ldb(db, "list_column_families")
    scanned = ldb(db, "--column_family=events", "scan")
    assert scanned == b"e : in events\n"
    assert run_kvtool("cf", "drop", db, "events").returncode == 0
    assert ldb_records(db) == {b"a": b"1"}
    assert_readable_by_sst_dump(db)


def test_a_format_6_database_stays_format_6(tmp_path: Path) -> None:
    import rocksdict

    db = tmp_path / "v6.db"
    native = rocksdict.Rdict(str(db), rocksdict.Options(raw_mode=True))
    native[b"a"] = b"1"
    native.flush()
    native.close()
    del native
    assert set(sst_format_versions(db).values()) == {6}
    assert check_writable_safely(db, options_round_trip).safe
    data = b'{"key": "b", "value": "2"}\n'
    for mode in ("batch", "sst"):
        result = run_kvtool("import", "--mode", mode, "--tmp-dir", tmp_path, db, input=data)
        assert result.returncode == 0, result.stderr
    assert set(sst_format_versions(db).values()) == {6}


def test_a_kvtool_created_database_is_safe(tmp_path: Path) -> None:
    db = make_db(tmp_path / "db", {b"a": b"1"}, cf={"events": {b"e": b"2"}})
    report = check_writable_safely(db, options_round_trip)
    assert report.safe, report.problems
    assert report.owner_version == report.engine_version
    assert set(sst_format_versions(db).values()) == {5}


def test_sst_format_version_reads_the_footer(tmp_path: Path) -> None:
    assert sst_format_version(tmp_path / "missing.sst") is None
    junk = tmp_path / "junk.sst"
    junk.write_bytes(b"x" * 64)
    assert sst_format_version(junk) is None


# -- refusals -------------------------------------------------------------------------------------


def _edit_options(db: Path, pattern: str, replacement: str) -> None:
    for path in db.glob("OPTIONS-*"):
        text, n = re.subn(pattern, replacement, path.read_text(), flags=re.MULTILINE)
        assert n, f"{pattern!r} not in {path.name}"
        path.write_text(text)


UNSAFE = {
    "compaction-filter": (
        r"^(\s*)compaction_filter=nullptr$",
        r"\1compaction_filter=MyTtlFilter",
        "compaction_filter is MyTtlFilter",
    ),
    "prefix-extractor": (
        r"^(\s*)prefix_extractor=nullptr$",
        r"\1prefix_extractor=my.KeyPrefix",
        "prefix_extractor is my.KeyPrefix",
    ),
    "newer-rocksdb": (
        r"^(\s*)rocksdb_version=.*$",
        r"\1rocksdb_version=99.1.0",
        "it was last written by RocksDB 99.1.0, newer than kvtool's 9.8",
    ),
    "unloadable": (
        r"^(\s*)write_buffer_size=",
        r"\1option_from_nowhere=1\n\1write_buffer_size=",
        "cannot be loaded: Invalid argument: Could not find option",
    ),
}

WRITES = {
    "put": ["put", "{db}", "k", "v"],
    "delete": ["delete", "{db}", "key:1"],
    "import": ["import", "{db}", "-"],
    "import-sst": ["import", "--mode", "sst", "{db}", "-"],
    "delete-range": ["delete-range", "--start", "a", "--end", "z", "{db}"],
    "cf-create": ["cf", "create", "{db}", "events"],
    "cf-drop": ["cf", "drop", "{db}", "old"],
}


# What kvtool's RocksDB cannot load is not a format concern: refused with 69, even with --force.
UNAVAILABLE = {
    "merge-operator": (
        r"^(\s*)merge_operator=.*$",
        r"\1merge_operator={id=MyAppMergeOperator;}",
        "merge operator {id=MyAppMergeOperator;} (column family 'old'), which kvtool's RocksDB "
        "cannot load; writing would lose the merge operands it holds",
    ),
    "comparator": (
        r"^(\s*)comparator=leveldb.BytewiseComparator$",
        r"\1comparator=myapp.ReverseComparator",
        "comparator myapp.ReverseComparator (column family 'old'), which kvtool's RocksDB cannot "
        "load; writing would lose its key order",
    ),
}


@pytest.fixture
def owner_db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "db", {b"key:1": b"v1", b"key:2": b"v2"}, cf={"old": {b"o": b"1"}})


@pytest.mark.parametrize("problem", sorted(UNSAFE))
@pytest.mark.parametrize("write", sorted(WRITES))
def test_unsafe_writes_are_refused_and_change_nothing(
    owner_db: Path, problem: str, write: str
) -> None:
    pattern, replacement, reason = UNSAFE[problem]
    _edit_options(owner_db, pattern, replacement)
    before = dir_state(owner_db)
    args = [a.format(db=owner_db) for a in WRITES[write]]
    result = run_kvtool(*args, input=b'{"key": "n", "value": "new"}\n')
    assert result.returncode == 2, result.stderr
    message = result.stderr.decode()
    assert message.startswith(f"kvtool: error: refusing to write to {owner_db}: ")
    assert reason in message
    assert "pass --force to write anyway" in message
    assert message.count("\n") == 1
    assert dir_state(owner_db) == before


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("problem", sorted(UNAVAILABLE))
@pytest.mark.parametrize("write", sorted(WRITES))
def test_what_cannot_be_loaded_is_refused_even_with_force(
    owner_db: Path, problem: str, write: str, force: bool
) -> None:
    pattern, replacement, reason = UNAVAILABLE[problem]
    _edit_options(owner_db, pattern, replacement)
    before = dir_state(owner_db)
    args = [a.format(db=owner_db) for a in WRITES[write]]
    if force:
        args.insert(args.index(str(owner_db)), "--force")
    result = run_kvtool(*args, input=b'{"key": "n", "value": "new"}\n')
    assert result.returncode == 69, result.stderr
    message = result.stderr.decode()
    assert message.startswith(f"kvtool: error: refusing to write to {owner_db}: it needs ")
    assert reason in message  # every column family is named (here: default and old)
    assert "(--force does not override this)" in message
    assert message.count("\n") == 1
    assert dir_state(owner_db) == before


def test_database_without_options_file_is_refused(owner_db: Path) -> None:
    for path in owner_db.glob("OPTIONS-*"):
        path.unlink()
    before = dir_state(owner_db)
    result = run_kvtool("put", owner_db, "k", "v")
    assert result.returncode == 2
    assert b"it has no OPTIONS file" in result.stderr
    assert dir_state(owner_db) == before


def test_force_writes_without_raising_the_format(owner_db: Path) -> None:
    for path in owner_db.glob("OPTIONS-*"):
        path.unlink()
    data = b'{"key": "n", "value": "new"}\n'
    result = run_kvtool("import", "--force", owner_db, input=data)
    assert result.returncode == 0, result.stderr
    # Defaults for a database kvtool knows nothing about keep the format its files have.
    assert set(sst_format_versions(owner_db).values()) == {5}
    with open_db(owner_db) as db:
        assert db.get(b"n") == b"new"


def test_force_overrides_a_refusal(owner_db: Path) -> None:
    pattern, replacement, _ = UNSAFE["compaction-filter"]
    _edit_options(owner_db, pattern, replacement)
    assert run_kvtool("put", owner_db, "k", "v").returncode == 2
    forced = run_kvtool("put", "--force", owner_db, "k", "v")
    assert forced.returncode == 0, forced.stderr
    with open_db(owner_db) as db:
        assert db.get(b"k") == b"v"


def test_the_engine_guards_every_read_write_open(owner_db: Path) -> None:
    pattern, replacement, _ = UNSAFE["compaction-filter"]
    _edit_options(owner_db, pattern, replacement)
    with pytest.raises(UnsafeWriteError, match="compaction_filter is MyTtlFilter"):
        check_writable_safely(owner_db, options_round_trip)
    with pytest.raises(UnsafeWriteError):
        open_db(owner_db, OpenMode.READ_WRITE)
    assert not check_writable_safely(owner_db, options_round_trip, force=True).safe
    with open_db(owner_db, OpenMode.READ_WRITE, force=True) as db:
        db.put(b"forced", b"yes")
    # Reading is never refused: the options only matter to writes.
    with open_db(owner_db) as db:
        assert db.get(b"forced") == b"yes"
