"""Comparators and merge operators: exact where kvtool's RocksDB loads them, else refused (69).

Every database here is written by its owner, RocksDB 6.14 through `import rocksdb` (or rocksdict in
its pickle mode), with merge operands left unmerged in SST files and in the WAL, and that writer is
the oracle. A comparator or merge operator kvtool cannot load (`myapp.*`, rocksdict's `rocksdict`)
makes every read exit 69 with one line naming it and its column family, with no signal death, no
temporary directory left and the database untouched; `info` names it under attention; every write
is refused (69) with or without --force, and the owner then reads every record as before. RocksDB's
built-in operators (`uint64add`, `StringAppendOperator`) are read exactly and written, and the owner
reads every merged value afterwards, and can still merge.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from .conftest import dir_state, make_db, require_tool, run_kvtool
from .oracles import Record, rocksdb614, rocksdict_script

KEYS = [b"k%03d" % i for i in range(60)]

# The owner's side: per-CF options, a layout written in phases (each phase but the last ends up in
# an SST file of its own: the next open's recovery flushes it; the last stays in the WAL), and a
# reader that opens read-write as the owner application does and dumps every column family.
_OWNER_614 = """
import os
from rocksdb.interfaces import MergeOperator


class FullConcat(MergeOperator):
    # The same operator through python-rocksdb's other interface (full and partial merges).
    def full_merge(self, key, existing, operands):
        return True, b"|".join(([existing] if existing is not None else []) + list(operands))

    def partial_merge(self, key, left, right):
        return True, left + b"|" + right

    def name(self):
        return b"myapp.ConcatOperator"


OPERATORS = {
    "concat": Concat,
    "full-concat": FullConcat,
    "uint64add": UintAddOperator,
    "stringappend": StringAppendOperator,
}


def cf_options(spec, cls):
    opts = cls()
    if spec.get("merge"):
        opts.merge_operator = OPERATORS[spec["merge"]]()
    if spec.get("comparator"):
        opts.comparator = AppReverse()
    return opts


def owner_open(path, plan, read_only=False):
    opts = cf_options(plan["cfs"]["default"], rocksdb.Options)
    opts.create_if_missing = True
    opts.create_missing_column_families = True
    names = [n.decode() for n in rocksdb.list_column_families(path, opts)] if os.path.exists(
        os.path.join(path, "CURRENT")) else list(plan["cfs"])
    cfs = {
        name.encode(): cf_options(plan["cfs"].get(name, {}), rocksdb.ColumnFamilyOptions)
        for name in names
        if name != "default"
    }
    db = rocksdb.DB(path, opts, column_families=cfs or None, read_only=read_only)
    return db, names


def target(db, cf, key):
    return key if cf == "default" else (db.get_column_family(cf.encode()), key)
"""

_WRITE = """
path, plan = sys.argv[1], json.loads(sys.argv[2])
for number, phase in enumerate(plan["phases"]):
    db, _ = owner_open(path, plan)
    for kind, cf, key, value in phase:
        getattr(db, kind)(target(db, cf, bytes.fromhex(key)), bytes.fromhex(value))
    db.close()
"""

_READ = """
path, plan, read_only = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1"
merges = json.loads(sys.argv[4])
db, names = owner_open(path, plan, read_only=read_only)
for cf, key, value in merges:
    db.merge(target(db, cf, bytes.fromhex(key)), bytes.fromhex(value))
out = {}
for name in names:
    it = db.iteritems(db.get_column_family(name.encode())) if name != "default" else db.iteritems()
    it.seek_to_first()
    out[name] = [[(k[1] if isinstance(k, tuple) else k).hex(), v.hex()] for k, v in it]
    del it
db.close()
print(json.dumps(out))
"""


def _u64(n: int) -> bytes:
    return struct.pack("<Q", n)


@dataclass(frozen=True)
class Owner:
    """A database written by its owner; `read()` is what the owner reads (read-write open)."""

    path: Path
    plan: dict[str, object]
    # What kvtool must name: (column family, "merge operator NAME"), or (None, a phrase) where
    # nothing names the operator.
    needs: tuple[tuple[str | None, str], ...]

    def messages(self) -> list[str]:
        return [what if cf is None else f"{what} (column family {cf!r})" for cf, what in self.needs]

    def read(
        self, *, read_only: bool = False, merges: Sequence[tuple[str, bytes, bytes]] = ()
    ) -> dict[str, list[Record]]:
        if self.plan.get("pickled"):
            return _pickled_read(self.path)
        out = rocksdb614(
            _OWNER_614 + _READ,
            self.path,
            json.dumps(self.plan),
            "1" if read_only else "0",
            json.dumps([[cf, k.hex(), v.hex()] for cf, k, v in merges]),
        )
        return {
            cf: [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in records]
            for cf, records in json.loads(out).items()
        }


def _merge_phases(
    cf: str, value: Callable[[int], bytes], *, wal: bool = True
) -> list[list[list[str]]]:
    """Base values (an SST file), one operand per key (another SST file: unmerged there), one
    more operand per key (the WAL)."""
    phases = [
        [["put", cf, k.hex(), value(0).hex()] for k in KEYS],
        [["merge", cf, k.hex(), value(1000).hex()] for k in KEYS],
        [["merge", cf, k.hex(), value(2000).hex()] for k in KEYS],
    ]
    return phases if wal else phases[:2]


def _text(n: int) -> bytes:
    return b"c%d" % n


def _owner(
    tmp: Path, plan: dict[str, object], needs: tuple[tuple[str | None, str], ...] = ()
) -> Owner:
    db = tmp / "owner.db"
    rocksdb614(_OWNER_614 + _WRITE, db, json.dumps(plan))
    return Owner(db, plan, needs)


def _plain(cf: str = "default", n: int = 40) -> list[list[str]]:
    return [["put", cf, (b"p%03d" % i).hex(), (b"plain-%d" % i).hex()] for i in range(n)]


CONCAT = ("default", "merge operator myapp.ConcatOperator")


def merge_app(tmp: Path) -> Owner:
    phases = _merge_phases("default", _text)
    return _owner(tmp, {"cfs": {"default": {"merge": "concat"}}, "phases": phases}, (CONCAT,))


def merge_app_full(tmp: Path) -> Owner:
    phases = _merge_phases("default", _text)
    return _owner(tmp, {"cfs": {"default": {"merge": "full-concat"}}, "phases": phases}, (CONCAT,))


def merge_app_in_one_cf(tmp: Path) -> Owner:
    """Only column family `events` has the operator; `default` is plain."""
    phases = _merge_phases("events", _text)
    phases[0] += _plain()
    plan = {"cfs": {"default": {}, "events": {"merge": "concat"}}, "phases": phases}
    return _owner(tmp, plan, (("events", "merge operator myapp.ConcatOperator"),))


def merge_app_wal_only(tmp: Path) -> Owner:
    """Everything in the WAL, operands before plain records: RocksDB's default recovery drops
    the log at the first operand it cannot merge, silently (count 0, exit 0, on main)."""
    phases = [
        [
            *(["merge", "default", k.hex(), b"m0".hex()] for k in KEYS),
            *_plain(),
        ]
    ]
    return _owner(tmp, {"cfs": {"default": {"merge": "concat"}}, "phases": phases}, (CONCAT,))


def comparator_app(tmp: Path) -> Owner:
    phases = [[["put", "default", k.hex(), (b"v" + k).hex()] for k in KEYS[i::3]] for i in range(3)]
    plan = {"cfs": {"default": {"comparator": "app"}}, "phases": phases}
    return _owner(tmp, plan, (("default", "comparator myapp.ReverseComparator"),))


def _pickled_read(db: Path) -> dict[str, list[Record]]:
    out = rocksdict_script(
        """
        db = rd.Rdict(sys.argv[1])
        print(json.dumps([[repr(k), repr(v)] for k, v in db.items()]))
        db.close()
        """,
        db,
    )
    return {"default": [(k.encode(), v.encode()) for k, v in json.loads(out)]}


def pickled(tmp: Path) -> Owner:
    """rocksdict's default mode: pickled keys and values, ordered by its `rocksdict` comparator;
    some in an SST file, some only in the WAL."""
    db = tmp / "pickled.db"
    rocksdict_script(
        """
        db = rd.Rdict(sys.argv[1])
        for i in range(40):
            db[i] = {"n": i}
        db.flush()
        for i in range(40, 60):
            db["s%d" % i] = [i]
        db.close()
        """,
        db,
    )
    return Owner(db, {"pickled": True}, (("default", "comparator rocksdict"),))


def merge_app_without_options_file(tmp: Path) -> Owner:
    """Operands in SST files and the WAL, and no OPTIONS file to name their operator: RocksDB
    9.8 crashes (SIGSEGV) on a point lookup or a reverse step onto such an operand."""
    owner = merge_app(tmp)
    for path in owner.path.glob("OPTIONS-*"):
        path.unlink()
    return Owner(owner.path, owner.plan, ((None, "holds merge operands"),))


def merge_app_options_say_none(tmp: Path) -> Owner:
    """Operands in SST files only, and an OPTIONS file that names no merge operator."""
    phases = [*_merge_phases("default", _text, wal=False), []]  # the last open flushes the WAL
    owner = _owner(tmp, {"cfs": {"default": {"merge": "concat"}}, "phases": phases})
    for path in owner.path.glob("OPTIONS-*"):
        text = path.read_text().replace(
            "merge_operator=myapp.ConcatOperator", "merge_operator=nullptr"
        )
        path.write_text(text)
    return Owner(owner.path, owner.plan, ((None, "holds 60 merge operands in its SST files"),))


UNLOADABLE: dict[str, Callable[[Path], Owner]] = {
    "merge-app": merge_app,
    "merge-app-in-one-cf": merge_app_in_one_cf,
    "merge-app-wal-only": merge_app_wal_only,
    "comparator-app": comparator_app,
    "rocksdict-pickled": pickled,
}
# Merge operands with nothing to name their operator: reads are 69 too, never a crash.
NAMELESS: dict[str, Callable[[Path], Owner]] = {
    "no-options-file": merge_app_without_options_file,
    "options-say-none": merge_app_options_say_none,
}

MAKERS = {**UNLOADABLE, **NAMELESS}


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], tuple[Owner, dict[str, list[Record]]]]:
    """Each case written once per module (the writer is slow), with what its owner reads then.
    Reads use it as it is (they must leave it untouched: checked); writes use a copy."""
    cache: dict[str, tuple[Owner, dict[str, list[Record]]]] = {}

    def get(case: str) -> tuple[Owner, dict[str, list[Record]]]:
        if case not in cache:
            owner = MAKERS[case](tmp_path_factory.mktemp(case))
            cache[case] = (owner, owner.read(read_only=True))
        return cache[case]

    return get


def _copy(owner: Owner, tmp: Path) -> Owner:
    dest = tmp / "owner.db"
    shutil.copytree(owner.path, dest, symlinks=True)
    return dataclasses.replace(owner, path=dest)


READS = {
    "count": ["count", "{db}"],
    "export": ["export", "{db}"],
    "export-reverse": ["export", "--reverse", "{db}"],
    "export-workers": ["export", "-j", "2", "{db}"],
    "scan": ["scan", "{db}"],
    "scan-reverse": ["scan", "--reverse", "{db}"],
    "get": ["get", "{db}", "k001"],
    "verify": ["verify", "{db}"],
    "verify-digest": ["verify", "--digest", "{db}"],
    "diff": ["diff", "{other}", "{db}"],
    "delete-range-dry-run": ["delete-range", "--dry-run", "--start", "a", "--end", "z", "{db}"],
}


def _run(
    args: list[str], db: Path, tmp: Path, *, input: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """Run kvtool with a private TMPDIR (checked empty afterwards by the callers)."""
    scratch = tmp / "tmpdir"
    scratch.mkdir(exist_ok=True)
    other = tmp / "other.db"
    if not other.exists():
        make_db(other, {b"k001": b"x"})
    argv = [a.format(db=db, other=other, dest=tmp / "copy.db") for a in args]
    return run_kvtool(*argv, input=input, env={"TMPDIR": str(scratch)})


def _assert_unavailable(result: subprocess.CompletedProcess[bytes], owner: Owner) -> str:
    message = result.stderr.decode()
    assert result.returncode == 69, (result.returncode, message)
    assert result.stdout == b""
    assert message.startswith("kvtool: error: ") and message.count("\n") == 1, message
    for need in owner.messages():
        assert need in message, message
    return message


@pytest.mark.parametrize("command", sorted(READS))
@pytest.mark.parametrize("case", sorted(MAKERS))
def test_reads_stop_with_69_naming_what_is_missing(
    built: Callable[[str], tuple[Owner, object]], tmp_path: Path, case: str, command: str
) -> None:
    owner, _ = built(case)
    before = dir_state(owner.path)
    result = _run(READS[command], owner.path, tmp_path)
    _assert_unavailable(result, owner)
    assert dir_state(owner.path) == before
    assert list((tmp_path / "tmpdir").iterdir()) == []


# The python-rocksdb engine (RocksDB 6.14) reads what RocksDB 6.14 wrote; rocksdict-pickled is
# rocksdict's own (format_version 6, which 6.14 cannot read).
ENGINE_CASES = [(case, "rocksdict") for case in sorted(UNLOADABLE)] + [
    (case, "python-rocksdb") for case in sorted(UNLOADABLE) if case != "rocksdict-pickled"
]


@pytest.mark.parametrize(("case", "engine"), ENGINE_CASES)
def test_info_names_what_is_missing_under_attention(
    built: Callable[[str], tuple[Owner, object]], tmp_path: Path, case: str, engine: str
) -> None:
    owner, _ = built(case)
    before = dir_state(owner.path)
    text = _run(["--engine", engine, "info", "{db}"], owner.path, tmp_path)
    assert text.returncode == 0, text.stderr
    attention = text.stdout.decode().split("attention:", 1)[1]
    for cf, what in owner.needs:
        assert f"[{cf}] needs {what}, which kvtool's RocksDB cannot load" in attention
    as_json = _run(["--engine", engine, "info", "--json", "{db}"], owner.path, tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    info = orjson.loads(as_json.stdout)
    assert info["attention"]
    assert all(cf["estimated_keys"] is None for cf in info["column_families"])
    assert dir_state(owner.path) == before
    assert list((tmp_path / "tmpdir").iterdir()) == []


def test_info_names_the_merge_operator_of_each_column_family(
    built: Callable[[str], tuple[Owner, object]], tmp_path: Path
) -> None:
    owner, _ = built("merge-app-in-one-cf")
    info = orjson.loads(_run(["info", "--json", "{db}"], owner.path, tmp_path).stdout)
    by_name = {cf["name"]: cf for cf in info["column_families"]}
    assert by_name["default"]["merge_operator"] is None
    assert by_name["events"]["merge_operator"] == "myapp.ConcatOperator"


def test_the_layouts_hold_unmerged_operands_in_sst_files_and_in_the_wal(tmp_path: Path) -> None:
    sst_dump, ldb = require_tool("sst_dump"), require_tool("ldb")
    owner = merge_app(tmp_path)
    tables = subprocess.run(
        [sst_dump, f"--file={owner.path}", "--command=scan"], capture_output=True, check=True
    ).stdout
    assert b"type:2" in tables  # kTypeMerge in an SST file
    (wal,) = owner.path.glob("*.log")
    log = subprocess.run(
        [ldb, "dump_wal", f"--walfile={wal}"], capture_output=True, check=True
    ).stdout
    assert b"MERGE" in log
    # What the owner reads: every operand merged.
    assert owner.read(read_only=True)["default"] == [(k, b"c0|c1000|c2000") for k in KEYS]


def test_an_operator_through_the_full_merge_interface_is_refused_alike(
    built: Callable[[str], tuple[Owner, dict[str, list[Record]]]], tmp_path: Path
) -> None:
    """python-rocksdb's IMergeOperator (full and partial merges) under the same name: the same
    refusals as the associative one, and the owner loses nothing."""
    pristine, expected = built("merge_app_full")
    assert expected["default"] == [(k, b"c0|c1000|c2000") for k in KEYS]
    owner = _copy(pristine, tmp_path)
    before = dir_state(owner.path)
    for args in (READS["get"], READS["export-reverse"], _with_force(WRITES["put"])):
        _assert_unavailable(_run(args, owner.path, tmp_path), owner)
    assert dir_state(owner.path) == before
    assert owner.read() == expected


WRITES = {
    "put": ["put", "{db}", "k001", "new"],
    "delete": ["delete", "{db}", "k002"],
    "import": ["import", "{db}", "-"],
    "import-sst": ["import", "--mode", "sst", "{db}", "-"],
    "delete-range": ["delete-range", "--start", "k010", "--end", "k020", "{db}"],
    "compact": ["compact", "{db}"],
    "cf-create": ["cf", "create", "{db}", "more"],
    "cf-drop": ["cf", "drop", "{db}", "events"],
    "checkpoint": ["checkpoint", "{db}", "{dest}"],
}
IMPORT_LINES = b"".join(b'{"key": "n%03d", "value": "imported"}\n' % i for i in range(20))


def _with_force(args: list[str]) -> list[str]:
    at = args.index("{db}")
    return [*args[:at], "--force", *args[at:]]


@pytest.mark.parametrize("write", sorted(WRITES))
@pytest.mark.parametrize("case", sorted(UNLOADABLE))
def test_writes_are_refused_with_or_without_force_and_the_owner_loses_nothing(
    built: Callable[[str], tuple[Owner, dict[str, list[Record]]]],
    tmp_path: Path,
    case: str,
    write: str,
) -> None:
    pristine, expected = built(case)
    owner = _copy(pristine, tmp_path)
    before = dir_state(owner.path)
    for args in (WRITES[write], _with_force(WRITES[write])):
        result = _run(args, owner.path, tmp_path, input=IMPORT_LINES)
        message = _assert_unavailable(result, owner)
        assert message.startswith(f"kvtool: error: refusing to write to {owner.path}: it needs ")
        assert "(--force does not override this)" in message
        assert dir_state(owner.path) == before
        assert not (tmp_path / "copy.db").exists()
        assert list((tmp_path / "tmpdir").iterdir()) == []
    assert owner.read() == expected


# -- RocksDB's built-in merge operators: read exactly, written, then merged by the owner ----------


def uint64add(tmp: Path) -> Owner:
    phases = _merge_phases("default", _u64)
    return _owner(tmp, {"cfs": {"default": {"merge": "uint64add"}}, "phases": phases})


def stringappend(tmp: Path) -> Owner:
    phases = _merge_phases("default", _text)
    return _owner(tmp, {"cfs": {"default": {"merge": "stringappend"}}, "phases": phases})


MAKERS.update(uint64add=uint64add, stringappend=stringappend, merge_app_full=merge_app_full)
BUILTIN: dict[str, tuple[Callable[[Path], Owner], bytes, Callable[[bytes, bytes], bytes]]] = {
    # case: (writer, the merged value of every key, the operator applied to (existing, operand))
    "uint64add": (
        uint64add,
        _u64(3000),
        lambda a, b: _u64(struct.unpack("<Q", a)[0] + struct.unpack("<Q", b)[0]),
    ),
    "stringappend": (stringappend, b"c0,c1000,c2000", lambda a, b: a + b"," + b),
}


def _export(db: Path, tmp: Path, *flags: str) -> list[Record]:
    result = _run(
        ["export", "--key-format", "hex", "--value-format", "hex", "-q", *flags, "{db}"], db, tmp
    )
    assert result.returncode == 0, result.stderr
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    return [(bytes.fromhex(r["key"]), bytes.fromhex(r["value"])) for r in lines]


@pytest.mark.parametrize("case", sorted(BUILTIN))
def test_builtin_operators_read_exactly(
    built: Callable[[str], tuple[Owner, dict[str, list[Record]]]], tmp_path: Path, case: str
) -> None:
    _, merged, _ = BUILTIN[case]
    owner, read = built(case)
    expected = read["default"]
    assert expected == [(k, merged) for k in KEYS]
    before = dir_state(owner.path)
    assert _export(owner.path, tmp_path) == expected
    assert _export(owner.path, tmp_path, "--reverse") == expected[::-1]
    assert sorted(_export(owner.path, tmp_path, "-j", "2")) == expected
    count = _run(["count", "{db}"], owner.path, tmp_path)
    assert count.returncode == 0 and count.stdout.split() == [str(len(KEYS)).encode()]
    for key, value in (expected[0], expected[len(KEYS) // 2], expected[-1]):
        got = _run(["get", "{db}", key.decode()], owner.path, tmp_path)
        assert (got.returncode, got.stdout) == (0, value)
    scan = _run(
        ["scan", "--reverse", "--format", "jsonl", "--value-format", "hex", "{db}"],
        owner.path,
        tmp_path,
    )
    assert scan.returncode == 0, scan.stderr
    assert bytes.fromhex(orjson.loads(scan.stdout.splitlines()[0])["value"]) == merged
    verify = _run(["verify", "--stats", "json", "{db}"], owner.path, tmp_path)
    assert verify.returncode == 0, verify.stderr
    info = _run(["info", "{db}"], owner.path, tmp_path)
    assert info.returncode == 0 and b"attention:       nothing" in info.stdout, info.stdout
    assert dir_state(owner.path) == before
    assert list((tmp_path / "tmpdir").iterdir()) == []


def _effect(write: str, records: dict[bytes, bytes], new: bytes) -> None:
    """What `WRITES[write]` (with the values below) does to the owner's records."""
    if write == "put":
        records[b"k001"] = new
    elif write == "delete":
        del records[b"k002"]
    elif write.startswith("import"):
        records.update({b"n%03d" % i: b"imported" for i in range(20)})
    elif write == "delete-range":
        for i in range(10, 20):
            del records[b"k%03d" % i]


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("write", sorted(set(WRITES) - {"cf-drop"}))
@pytest.mark.parametrize("case", sorted(BUILTIN))
def test_builtin_operators_are_written_and_the_owner_reads_every_merged_value(
    built: Callable[[str], tuple[Owner, dict[str, list[Record]]]],
    tmp_path: Path,
    case: str,
    write: str,
    force: bool,
) -> None:
    _, merged, apply = BUILTIN[case]
    pristine, read = built(case)
    owner = _copy(pristine, tmp_path)
    records = dict(read["default"])
    assert set(records.values()) == {merged}
    new = _u64(7) if case == "uint64add" else b"new"
    args = WRITES[write]
    if write == "put":
        args = ["put", "--value-format", "hex", "{db}", "k001", new.hex()]
    if force:
        args = _with_force(args)
    lines = IMPORT_LINES
    result = _run(args, owner.path, tmp_path, input=lines)
    assert result.returncode == 0, result.stderr
    _effect(write, records, new)
    # The owner (RocksDB 6.14, read-write, its own operator) merges one more operand into a key
    # kvtool's files hold, and reads every record.
    operand = _u64(5) if case == "uint64add" else b"c9"
    copies = [owner.path] + ([tmp_path / "copy.db"] if write == "checkpoint" else [])
    for db in copies:
        expected = dict(records)
        expected[b"k000"] = apply(expected[b"k000"], operand)
        got = Owner(db, owner.plan, ()).read(merges=[("default", b"k000", operand)])
        assert got["default"] == sorted(expected.items()), db
        if write == "cf-create":
            assert got["more"] == []
    assert list((tmp_path / "tmpdir").iterdir()) == []


def test_a_copy_replays_its_own_wal_not_the_originals(tmp_path: Path) -> None:
    """RocksDB 6.14 records the directory it wrote as `wal_dir` in the OPTIONS file: in a copy,
    that names the original. Reading the copy must read the copy's WAL, and writing to it must
    leave the original alone (before: `put COPY` replaced ORIGINAL's WAL)."""
    (tmp_path / "a").mkdir()
    original = uint64add(tmp_path / "a")
    copy = _copy(original, tmp_path / "b")
    assert f"wal_dir={original.path}" in next(copy.path.glob("OPTIONS-*")).read_text()
    # The original's owner goes on: one more operand per key, in the original's WAL only.
    phases = [[["merge", "default", k.hex(), _u64(1).hex()] for k in KEYS]]
    rocksdb614(_OWNER_614 + _WRITE, original.path, json.dumps({**original.plan, "phases": phases}))
    before = dir_state(original.path)
    assert _export(copy.path, tmp_path) == [(k, _u64(3000)) for k in KEYS]
    result = _run(["put", "--value-format", "hex", "{db}", "x", "00"], copy.path, tmp_path)
    assert result.returncode == 0, result.stderr
    assert dir_state(original.path) == before
    assert dict(copy.read()["default"])[b"k000"] == _u64(3000)
    assert original.read()["default"] == [(k, _u64(3001)) for k in KEYS]


# What RocksDB 9.8 (rocksdict 0.3.29) loads by the name an OPTIONS file records, measured: these
# are writable; an unknown name is a need kvtool cannot meet (the class name BytesXOROperator is
# not registered, only its nickname bytesxor).
LOADABLE_MERGE_OPERATORS = [
    "uint64add",
    "UInt64AddOperator",
    "stringappend",
    "StringAppendOperator",
    "{id=StringAppendOperator;delimiter=\\:;}",
    "put",
    "put_v1",
    "max",
    "MaxOperator",
    "sortlist",
    "bytesxor",
]
UNLOADABLE_MERGE_OPERATORS = [
    "myapp.ConcatOperator",
    "{id=myapp.ConcatOperator;}",
    "BytesXOROperator",
]


def _name_merge_operator(db: Path, name: str) -> None:
    for path in db.glob("OPTIONS-*"):
        text = path.read_text().replace("merge_operator=nullptr", f"merge_operator={name}")
        path.write_text(text)


@pytest.mark.parametrize("name", LOADABLE_MERGE_OPERATORS + UNLOADABLE_MERGE_OPERATORS)
def test_which_merge_operators_kvtool_loads_by_name(tmp_path: Path, name: str) -> None:
    from kvtool.engine.format_safety import check_writable_safely, database_needs
    from kvtool.engine.rdict import options_round_trip

    db = make_db(tmp_path / "db", {b"a": b"1"})
    _name_merge_operator(db, name)
    needs = database_needs(db, options_round_trip)
    if name in LOADABLE_MERGE_OPERATORS:
        assert needs == ()
        assert check_writable_safely(db, options_round_trip).safe
    else:
        assert [(n.cf, n.kind, n.name) for n in needs] == [("default", "merge operator", name)]


@pytest.mark.parametrize("case", sorted(BUILTIN))
def test_the_python_rocksdb_engine_points_to_the_default_engine_that_reads_it(
    built: Callable[[str], tuple[Owner, object]], tmp_path: Path, case: str
) -> None:
    """RocksDB 6.14's binding has no built-in merge operators; the default engine has them.
    The refusal says which engine cannot load it and which can, not "kvtool's RocksDB"."""
    owner, _ = built(case)
    result = _run(["--engine", "python-rocksdb", "count", "{db}"], owner.path, tmp_path)
    message = result.stderr.decode()
    assert result.returncode == 69, message
    assert message.count("\n") == 1 and "the python-rocksdb engine" in message, message
    assert "--engine rocksdict" in message, message
    assert _run(["count", "{db}"], owner.path, tmp_path).returncode == 0
