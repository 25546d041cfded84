"""Writes on a database ordered by `rocksdb.ReverseBytewiseComparator`, which RocksDB 6.14 wrote:
kvtool writes what the order allows and refuses what it would sort wrongly; the owner (RocksDB
6.14 with its comparator) then reads every record, in its order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import dir_state, run_kvtool
from .oracles import Spec, put, rocksdb614_read, rocksdb614_write

SPEC = Spec(comparator="reverse")


@pytest.fixture
def reverse_db(tmp_path: Path) -> Path:
    records = [put(b"r:%04d" % i, b"v%d" % i) for i in range(300)]
    return rocksdb614_write(tmp_path / "reverse.db", [records[:150], records[150:]], spec=SPEC)


def _owner_state(db: Path) -> dict[bytes, bytes]:
    got = rocksdb614_read(db, spec=SPEC)
    keys = [k for k, _ in got]
    assert keys == sorted(keys, reverse=True), "the owner's order is broken"
    return dict(got)


def _ok(*args: str | Path, input: bytes | None = None) -> None:
    result = run_kvtool(*args, input=input)
    assert result.returncode == 0, (args, result.stderr.decode())


def test_writes_follow_the_reverse_order_and_the_owner_reads_every_record(reverse_db: Path) -> None:
    state = _owner_state(reverse_db)
    _ok("put", reverse_db, "r:9999", "new")
    state[b"r:9999"] = b"new"
    _ok("delete", reverse_db, "r:0001")
    del state[b"r:0001"]
    # In reverse order r:0200 comes first: the range [r:0200, r:0100) is r:0200 down to r:0101.
    _ok("delete-range", reverse_db, "--start", "r:0200", "--end", "r:0100")
    state = {k: v for k, v in state.items() if not b"r:0101" <= k <= b"r:0200"}
    lines = b"".join(
        json.dumps({"key": f"i:{i}", "value": "imported"}).encode() + b"\n" for i in range(50)
    )
    _ok("import", reverse_db, input=lines)
    state.update({b"i:%d" % i: b"imported" for i in range(50)})
    _ok("compact", reverse_db, "--start", "r:0300", "--end", "r:0000")
    _ok("compact", reverse_db)
    assert _owner_state(reverse_db) == state


def test_a_range_given_in_bytewise_order_is_refused(reverse_db: Path) -> None:
    for command in (["delete-range"], ["compact"]):
        result = run_kvtool(*command, reverse_db, "--start", "r:0100", "--end", "r:0200")
        assert result.returncode == 2, result.stderr.decode()
        assert "--start" in result.stderr.decode()


def test_sst_import_refuses_the_reverse_order_and_writes_nothing(reverse_db: Path) -> None:
    before = _owner_state(reverse_db)
    state = dir_state(reverse_db)
    result = run_kvtool("import", reverse_db, "--mode", "sst", input=b'{"key":"a","value":"b"}\n')
    lines = result.stderr.decode().strip().splitlines()
    assert (result.returncode, len(lines)) == (69, 1), result.stderr.decode()
    assert "rocksdb.ReverseBytewiseComparator" in lines[0]
    assert dir_state(reverse_db) == state  # refused before the database was opened
    assert _owner_state(reverse_db) == before
    created = run_kvtool(
        "import", reverse_db, "--mode", "sst", "--cf", "new", "--create", input=b""
    )
    assert created.returncode == 69, "a new column family takes the default's comparator"
