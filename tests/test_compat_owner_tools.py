"""The owner's own tools still open a database after every kvtool write (issue 9, items 7 and 8).

For databases written by ldb 7.8 (`ldb load`), by RocksDB 6.14 (`import rocksdb`) and by kvtool
itself, every writing command runs in turn; after each one the writer's own version reopens the
database with no extra flags (plain `ldb scan` and `ldb dump`; RocksDB 6.14 read-write, and its
own `LoadLatestOptions`) and reads every record, compared with the expected state kept here, as
db_stress does. A database kvtool creates must open in both ldb 7.8 and RocksDB 6.14.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from kvtool.engine.format_safety import sst_format_versions

from .conftest import run_kvtool
from .oracles import (
    Spec,
    ldb_load,
    ldb_ok,
    parse_hex_scan,
    put,
    rocksdb614,
    rocksdb614_read,
    rocksdb614_write,
    rocksdict_script,
)

# Column family name -> its records: the state every owner's reader must find.
State = dict[str, dict[bytes, bytes]]


# -- the writers --------------------------------------------------------------------------------


def ldb_create(db: Path, records: dict[bytes, bytes]) -> None:
    items = list(records.items())
    ldb_load(db, items[: len(items) // 2])  # an SST file
    ldb_load(db, items[len(items) // 2 :], wal=True)  # only in the WAL


def r614_create(db: Path, records: dict[bytes, bytes]) -> None:
    items = [put(k, v) for k, v in records.items()]
    rocksdb614_write(db, [items[: len(items) // 2]], wal=items[len(items) // 2 :])


def kvtool_create(db: Path, records: dict[bytes, bytes]) -> None:
    result = run_kvtool(
        "import", "-q", "--create", "--key-format", "hex", "--value-format", "hex", db,
        input=_jsonl(records),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


# -- the owners' readers ------------------------------------------------------------------------


def _dump_pairs(text: bytes) -> dict[bytes, bytes]:
    """`ldb dump --hex` lines `0xKEY ==> 0xVALUE`."""
    out: dict[bytes, bytes] = {}
    for line in text.decode().splitlines():
        key, sep, value = line.partition(" ==> ")
        if sep and key.startswith("0x"):
            out[bytes.fromhex(key[2:])] = bytes.fromhex(value.strip()[2:])
    return out


def ldb_read(db: Path) -> State:
    """Plain ldb 7.8 (it loads the newest OPTIONS file strictly): every column family through
    `scan`, checked against `dump` and its count."""
    names = re.search(rb"\{(.*)\}", ldb_ok(f"--db={db}", "list_column_families"))
    assert names is not None
    state: State = {}
    for cf in (n.strip().decode() for n in names.group(1).split(b",")):
        scanned = dict(
            parse_hex_scan(ldb_ok(f"--db={db}", f"--column_family={cf}", "scan", "--hex"))
        )
        dumped = ldb_ok(f"--db={db}", f"--column_family={cf}", "dump", "--hex")
        assert _dump_pairs(dumped) == scanned, f"ldb dump and scan differ in {cf}"
        assert b"Keys in range: %d" % len(scanned) in dumped
        state[cf] = scanned
    return state


def r614_read(db: Path, state: State, *, read_only: bool = False) -> State:
    """RocksDB 6.14 opens it (read-write by default, as its owner would, naming every column family
    the state expects: a read-write open fails when one is left out) and reads every one."""
    names = rocksdb614(
        """
        print(b"\\n".join(rocksdb.list_column_families(sys.argv[1], rocksdb.Options())).decode())
        """,
        db,
    ).split()
    spec = Spec(column_families=tuple(cf for cf in state if cf != "default"))
    return {cf: dict(rocksdb614_read(db, spec=spec, cf=cf, read_only=read_only)) for cf in names}


# RocksDB 6.14's own LoadLatestOptions, called in the library the `rocksdb` wheel bundles (its
# Python API has no options loading): the loader that ldb and RocksJava's OptionsUtil use.
_R614_LOAD_OPTIONS = r"""
import ctypes, glob, os
site = os.path.dirname(os.path.dirname(rocksdb.__file__))
libs = os.path.join(site, "faust_streaming_rocksdb.libs")
lib = ctypes.CDLL(glob.glob(os.path.join(libs, "librocksdb-*.so.6.14*"))[0])
path = sys.argv[1].encode()
# libstdc++'s pre-C++11 std::string: a pointer to the characters, after {length, capacity, refs}.
rep = ctypes.create_string_buffer(struct.pack("QQi4x", len(path), len(path), 0) + path + b"\0")
string = ctypes.c_void_p(ctypes.addressof(rep) + 24)
lib._ZN7rocksdb3Env7DefaultEv.restype = ctypes.c_void_p
db_options = ctypes.create_string_buffer(1 << 16)
lib._ZN7rocksdb9DBOptionsC1Ev(db_options)
cf_descriptors = ctypes.create_string_buffer(64)  # an empty std::vector
status = ctypes.create_string_buffer(64)
load = getattr(
    lib,
    "_ZN7rocksdb17LoadLatestOptionsERKSsPNS_3EnvEPNS_9DBOptionsEPSt6vector"
    "INS_22ColumnFamilyDescriptorESaIS7_EEbPSt10shared_ptrINS_5CacheEE",
)
load.restype = None
load.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_bool, ctypes.c_void_p]
load(status, ctypes.addressof(string), lib._ZN7rocksdb3Env7DefaultEv(), db_options,
     cf_descriptors, False, None)  # ignore_unknown_options=false
state = struct.unpack_from("Q", status.raw, 8)[0]
print(status.raw[0], ctypes.string_at(state).decode() if state else "")
"""


def r614_load_options(db: Path) -> None:
    code, _, message = rocksdb614(_R614_LOAD_OPTIONS, db).strip().partition(" ")
    assert code == "0", f"RocksDB 6.14 LoadLatestOptions: {message}"


# Which readers stand for which writer: the writer's own version; for a database kvtool created,
# both ldb 7.8 and RocksDB 6.14 (the README's promise).
Readers = Callable[[Path, State], list[tuple[str, State]]]


def read_as_ldb(db: Path, state: State) -> list[tuple[str, State]]:
    return [("ldb 7.8", ldb_read(db))]


def read_as_r614(db: Path, state: State) -> list[tuple[str, State]]:
    r614_load_options(db)
    return [("RocksDB 6.14 read-write", r614_read(db, state))]


def read_as_both(db: Path, state: State) -> list[tuple[str, State]]:
    r614_load_options(db)
    return [
        ("ldb 7.8", ldb_read(db)),
        ("RocksDB 6.14 read-only", r614_read(db, state, read_only=True)),
        ("RocksDB 6.14 read-write", r614_read(db, state)),
    ]


# -- the writing commands, each with its effect on the expected state ---------------------------


def _ok(*args: str | Path, input: bytes | None = None) -> None:
    result = run_kvtool(*args, input=input)
    assert result.returncode == 0, f"kvtool {args[0]}: {result.stderr.decode()[-500:]}"


def _jsonl(records: dict[bytes, bytes]) -> bytes:
    return "".join(
        json.dumps({"key": k.hex(), "value": v.hex()}) + "\n" for k, v in records.items()
    ).encode()


def step_put(db: Path, state: State, tmp: Path) -> list[Path]:
    _ok("put", db, "put:key", "put value")
    state["default"][b"put:key"] = b"put value"
    return []


def step_delete(db: Path, state: State, tmp: Path) -> list[Path]:
    _ok("delete", "--key-format", "hex", db, b"k:0003".hex())
    del state["default"][b"k:0003"]
    return []


def step_import(db: Path, state: State, tmp: Path) -> list[Path]:
    records = {b"imp:%03d\x00\xff" % i: b"\x01batch %d" % i for i in range(30)}
    _ok("import", "-q", "--key-format", "hex", "--value-format", "hex", db, input=_jsonl(records))
    state["default"].update(records)
    return []


def step_import_sst(db: Path, state: State, tmp: Path) -> list[Path]:
    records = {b"sst:%03d" % i: b"ingested %d\n" % i for i in range(30)}
    records[b"k:0001"] = b"overwritten by an ingested file"
    _ok(
        "import", "-q", "--mode", "sst", "--key-format", "hex", "--value-format", "hex", db,
        input=_jsonl(records),
    )  # fmt: skip
    state["default"].update(records)
    return []


def step_delete_range(db: Path, state: State, tmp: Path) -> list[Path]:
    _ok("delete-range", "-q", "--start", "k:0010", "--end", "k:0020", db)
    for key in [k for k in state["default"] if b"k:0010" <= k < b"k:0020"]:
        del state["default"][key]
    return []


def step_compact(db: Path, state: State, tmp: Path) -> list[Path]:
    _ok("compact", "-q", "--bottommost", "force", db)
    return []


def step_cf_create(db: Path, state: State, tmp: Path) -> list[Path]:
    _ok("cf", "create", db, "extra")
    _ok("put", "--cf", "extra", db, "in extra", "cf value")
    state["extra"] = {b"in extra": b"cf value"}
    return []


def step_checkpoint(db: Path, state: State, tmp: Path) -> list[Path]:
    copy = tmp / "checkpoint.db"
    _ok("checkpoint", "-q", db, copy)
    return [copy]


def step_cf_drop(db: Path, state: State, tmp: Path) -> list[Path]:
    _ok("cf", "drop", db, "extra")
    del state["extra"]
    return []


STEPS = [
    step_put,
    step_delete,
    step_import,
    step_import_sst,
    step_delete_range,
    step_compact,
    step_cf_create,
    step_checkpoint,
    step_cf_drop,
]

START = {b"k:%04d" % i: b"value %d" % i for i in range(100)}
START[b"k:0050\x00bin"] = b"\x00\xff\xfe binary"


def check(db: Path, state: State, readers: Readers, when: str) -> None:
    for reader, found in readers(db, state):
        assert found.keys() == state.keys(), f"{reader} after {when}: column families"
        for cf, records in state.items():
            missing = {k for k in records if k not in found[cf]}
            extra = {k for k in found[cf] if k not in records}
            wrong = {k for k in records if k in found[cf] and found[cf][k] != records[k]}
            assert not (missing or extra or wrong), (
                f"{reader} after {when}, cf {cf}: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(extra)[:5]}, different {sorted(wrong)[:5]}"
            )


@pytest.mark.parametrize(
    ("create", "readers"),
    [
        pytest.param(ldb_create, read_as_ldb, id="ldb-7.8"),
        pytest.param(r614_create, read_as_r614, id="rocksdb-6.14"),
        pytest.param(kvtool_create, read_as_both, id="kvtool"),
    ],
)
def test_owner_reads_every_record_after_each_write(
    tmp_path: Path,
    create: Callable[[Path, dict[bytes, bytes]], None],
    readers: Readers,
) -> None:
    db = tmp_path / "owner.db"
    create(db, START)
    state: State = {"default": dict(START)}
    check(db, state, readers, "the writer made it")
    for step in STEPS:
        copies = step(db, state, tmp_path)
        when = f"kvtool {step.__name__[5:].replace('_', ' ')}"
        check(db, state, readers, when)
        for copy in copies:
            check(copy, state, readers, f"{when} (the copy)")


def _newest_options(db: Path) -> str:
    newest = max(db.glob("OPTIONS-*[0-9]"), key=lambda p: int(p.name[8:]))
    return newest.read_text()


def _without_kvtool_note(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.startswith("# kvtool:"))


def test_the_newest_options_file_is_the_owners_own_after_a_write(tmp_path: Path) -> None:
    """The settings a session changes for itself (--io-rate's write buffer) do not stick, and
    the file is the owner's, byte for byte, apart from kvtool's comment line."""
    db = ldb_load(tmp_path / "ldb.db", list(START.items()))
    owners = _newest_options(db)
    _ok("compact", "-q", "--io-rate", "1MB", db)
    assert _newest_options(db) != owners  # RocksDB wrote a new file, which kvtool annotated
    assert _without_kvtool_note(_newest_options(db)) == owners
    assert ldb_read(db) == {"default": START}


def test_a_write_stopped_before_its_restore_is_repaired_by_the_next_write(tmp_path: Path) -> None:
    """What a kvtool write killed between RocksDB's OPTIONS write and kvtool's restore leaves
    (RocksDB 9.8's file, newest): the next kvtool write puts the owner's file back."""
    db = ldb_load(tmp_path / "ldb.db", list(START.items()))
    owners = _newest_options(db)
    rocksdict_script(
        """
        o, cfs = rd.Options.load_latest(sys.argv[1], ignore_unknown_options=True)
        db = rd.Rdict(sys.argv[1], o, column_families=cfs)
        db.close()
        """,
        db,
    )
    assert "metadata_write_temperature" in _newest_options(db)  # what ldb 7.8 refuses
    _ok("put", db, "after", "the crash")
    assert _without_kvtool_note(_newest_options(db)) == owners
    assert ldb_read(db) == {"default": {**START, b"after": b"the crash"}}


def test_a_temp_file_left_by_a_crash_is_ignored_and_then_removed(tmp_path: Path) -> None:
    db = ldb_load(tmp_path / "ldb.db", list(START.items()))
    _ok("put", db, "one", "1")
    newest = max(db.glob("OPTIONS-*[0-9]"), key=lambda p: int(p.name[8:]))
    stale = newest.with_name(newest.name + ".dbtmp")
    stale.write_text("half a file")  # a crash between writing the temp file and the rename
    assert ldb_read(db) == {"default": {**START, b"one": b"1"}}
    _ok("put", db, "two", "2")
    assert not list(db.glob("*.dbtmp"))
    assert ldb_read(db) == {"default": {**START, b"one": b"1", b"two": b"2"}}


def test_a_generated_database_opens_in_rocksdb_614_and_plain_ldb(tmp_path: Path) -> None:
    db = tmp_path / "gen.db"
    _ok("generate", "-q", "--keys", "3000", "--value-size", "20", db)
    expected = dict(parse_hex_scan(ldb_ok(f"--db={db}", "scan", "--hex")))
    assert len(expected) == 3000
    assert set(sst_format_versions(db).values()) == {5}
    r614_load_options(db)
    state = {"default": expected}
    assert r614_read(db, state, read_only=True) == state
    assert r614_read(db, state) == state
    assert ldb_read(db) == state
