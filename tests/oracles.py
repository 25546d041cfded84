"""Databases written by programs other than kvtool, and read back by the program that wrote them.

The writer of a database is its oracle: a test builds its input with `ldb` 7.8 (Debian's
rocksdb-tools), RocksDB 6.14 through `import rocksdb` (the faust-streaming-rocksdb wheel) or
rocksdict with non-default options, then compares what kvtool reads with what that writer reads,
and after a kvtool write checks that the writer still opens the database and reads every record.

RocksDB 6.14 and rocksdict run in a subprocess: a native crash there fails the test with the
writer's own message instead of killing pytest, and no native handle outlives the call.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import IN_CI, require_tool

Record = tuple[bytes, bytes]


# -- ldb 7.8 ---------------------------------------------------------------------------------------
def ldb(
    *args: str | os.PathLike[str], input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run plain `ldb`, with no flag that skips unknown options (one hid a real break)."""
    return subprocess.run(
        [require_tool("ldb"), *map(str, args)],
        input=input if input is not None else b"",
        capture_output=True,
        timeout=120,
        check=False,
    )


def ldb_ok(*args: str | os.PathLike[str], input: bytes | None = None) -> bytes:
    """`ldb` that must succeed; returns its stdout."""
    result = ldb(*args, input=input)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    # ldb prints some failures on stdout and still exits 0 (e.g. "Failed: ...").
    assert not result.stdout.startswith(b"Failed"), result.stdout[-2000:]
    return result.stdout


def ldb_load(db: Path, records: Iterable[Record], *flags: str, wal: bool = False) -> Path:
    """`ldb --db=DB --create_if_missing [flags] load --hex`. Without `wal` the run writes no WAL,
    so ldb flushes when it closes: one call, one SST file. With `wal` the records stay in the WAL
    (the next open's recovery flushes them)."""
    lines = b"".join(b"0x%s ==> 0x%s\n" % (k.hex().encode(), v.hex().encode()) for k, v in records)
    load = ["load", "--hex"] if wal else ["load", "--hex", "--disable_wal"]
    ldb_ok(f"--db={db}", "--create_if_missing", *flags, *load, input=lines)
    return db


def parse_hex_scan(output: bytes) -> list[Record]:
    """Parse `ldb scan --hex` / `ldb dump --hex` lines `0xKEY : 0xVALUE` (a lone `0x` is empty)."""
    out: list[Record] = []
    for line in output.decode().splitlines():
        key, sep, value = line.partition(" : ")
        if not sep or not key.startswith("0x"):
            continue
        out.append((bytes.fromhex(key[2:]), bytes.fromhex(value.strip()[2:])))
    return out


def ldb_scan(db: Path, *flags: str) -> list[Record]:
    """Every record `ldb --db=DB scan --hex [flags]` reads, in the database's order."""
    return parse_hex_scan(ldb_ok(f"--db={db}", *flags, "scan", "--hex"))


# -- RocksDB 6.14 through `import rocksdb` ---------------------------------------------------------
def require_rocksdb614() -> None:
    """Skip without the python-rocksdb API, but fail under CI (the test extra installs it)."""
    if importlib.util.find_spec("rocksdb") is None:
        message = "`import rocksdb` is not installed (pip install -e '.[test]' brings it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


# Helpers every RocksDB 6.14 script can use. The names are what the OPTIONS file records, and what
# a reader must load: `rocksdb.ReverseBytewiseComparator` and `rocksdb.FixedPrefix.4` are built
# into RocksDB (so RocksDB 9.8 loads them by name), the `myapp.*` ones exist only in an application.
PRELUDE_614 = """
import json, struct, sys
import rocksdb
from rocksdb.interfaces import AssociativeMergeOperator, Comparator, SliceTransform
from rocksdb.merge_operators import StringAppendOperator, UintAddOperator


class ReverseBytewise(Comparator):
    def compare(self, a, b):
        return (a < b) - (a > b)

    def name(self):
        return b"rocksdb.ReverseBytewiseComparator"


class AppReverse(ReverseBytewise):
    def name(self):
        return b"myapp.ReverseComparator"


class Concat(AssociativeMergeOperator):
    def merge(self, key, existing, value):
        return True, value if existing is None else existing + b"|" + value

    def name(self):
        return b"myapp.ConcatOperator"


class FixedPrefix(SliceTransform):
    def __init__(self, n):
        self.n = n

    def name(self):
        return b"rocksdb.FixedPrefix.%d" % self.n

    def transform(self, src):
        return (0, self.n)

    def in_domain(self, src):
        return len(src) >= self.n

    def in_range(self, dst):
        return len(dst) == self.n


def make_options(spec):
    opts = rocksdb.Options()
    opts.create_if_missing = True
    opts.create_missing_column_families = True
    comparator = spec.get("comparator")
    if comparator == "reverse":
        opts.comparator = ReverseBytewise()
    elif comparator == "app":
        opts.comparator = AppReverse()
    merge = spec.get("merge")
    if merge == "uint64add":
        opts.merge_operator = UintAddOperator()
    elif merge == "stringappend":
        opts.merge_operator = StringAppendOperator()
    elif merge == "concat":
        opts.merge_operator = Concat()
    if spec.get("prefix_len"):
        opts.prefix_extractor = FixedPrefix(spec["prefix_len"])
    table = {"checksum": "crc32"}
    if spec.get("bloom_bits"):
        table["filter_policy"] = rocksdb.BloomFilterPolicy(spec["bloom_bits"])
    if spec.get("format_version") is not None:
        table["format_version"] = spec["format_version"]
    opts.table_factory = rocksdb.BlockBasedTableFactory(**table)
    if spec.get("compression"):
        opts.compression = getattr(rocksdb.CompressionType, spec["compression"])
    return opts


def open_db(path, spec, read_only=False):
    cfs = {name.encode(): make_options(spec) for name in spec.get("column_families", [])}
    return rocksdb.DB(path, make_options(spec), column_families=cfs or None, read_only=read_only)


def cf_key(db, cf, key):
    return key if cf == "default" else (db.get_column_family(cf.encode()), key)
"""


@dataclass(frozen=True)
class Spec:
    """The options a RocksDB 6.14 writer uses; readers must use the same to be its oracle.

    comparator: None (bytewise), "reverse" (built-in name) or "app" (an application's own name).
    merge: None, "uint64add", "stringappend" (python-rocksdb's own, named as RocksDB's built-ins)
    or "concat" (`myapp.ConcatOperator`, joins operands with `|`).
    """

    comparator: str | None = None
    merge: str | None = None
    prefix_len: int | None = None
    bloom_bits: int | None = None
    format_version: int | None = None
    compression: str | None = None
    column_families: Sequence[str] = field(default_factory=tuple)

    def as_json(self) -> str:
        return json.dumps(
            {k: (list(v) if k == "column_families" else v) for k, v in vars(self).items()}
        )


@dataclass(frozen=True)
class Op:
    """One write: `put`, `merge` or `delete` of `key` in column family `cf`."""

    key: bytes
    value: bytes = b""
    kind: str = "put"
    cf: str = "default"


def put(key: bytes, value: bytes, cf: str = "default") -> Op:
    return Op(key, value, "put", cf)


def merge(key: bytes, value: bytes, cf: str = "default") -> Op:
    return Op(key, value, "merge", cf)


def delete(key: bytes, cf: str = "default") -> Op:
    return Op(key, b"", "delete", cf)


def run_python(prelude: str, body: str, *args: str | os.PathLike[str]) -> str:
    """Run `prelude + body` in a fresh interpreter with `args` as sys.argv[1:]; returns stdout."""
    result = subprocess.run(
        [sys.executable, "-c", prelude + "\n" + textwrap.dedent(body), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"writer failed ({result.returncode}): {result.stderr[-3000:]}"
    return result.stdout


def rocksdb614(body: str, *args: str | os.PathLike[str]) -> str:
    """Run a RocksDB 6.14 script (PRELUDE_614 is in scope) in a subprocess; returns its stdout."""
    require_rocksdb614()
    return run_python(PRELUDE_614, body, *args)


def _ops_json(ops: Iterable[Op]) -> str:
    return json.dumps([[o.kind, o.cf, o.key.hex(), o.value.hex()] for o in ops])


_APPLY_614 = """
def apply(db, ops):
    batch = rocksdb.WriteBatch()
    for kind, cf, key, value in ops:
        key, value = cf_key(db, cf, bytes.fromhex(key)), bytes.fromhex(value)
        if kind == "put":
            batch.put(key, value)
        elif kind == "merge":
            batch.merge(key, value)
        else:
            batch.delete(key)
    db.write(batch)
"""


def rocksdb614_write(
    db: Path,
    sst_runs: Sequence[Iterable[Op]] = (),
    *,
    wal: Iterable[Op] = (),
    spec: Spec = Spec(),
) -> Path:
    """Write with RocksDB 6.14: each of `sst_runs` ends up in an SST file of its own (written,
    closed, and flushed by the next open's recovery), then `wal` stays only in the WAL."""
    runs = [_ops_json(run) for run in sst_runs]
    rocksdb614(
        _APPLY_614
        + textwrap.dedent(
            """
        path, spec = sys.argv[1], json.loads(sys.argv[2])
        runs, wal = json.loads(sys.argv[3]), json.loads(sys.argv[4])
        for run in runs:
            db = open_db(path, spec)
            apply(db, run)
            db.close()
        # Open once more so that recovery flushes the last run's WAL into an SST file.
        db = open_db(path, spec)
        apply(db, wal)
        db.close()
        """
        ),
        db,
        spec.as_json(),
        json.dumps([json.loads(r) for r in runs]),
        _ops_json(wal),
    )
    return db


def rocksdb614_read(
    db: Path, *, spec: Spec = Spec(), cf: str = "default", read_only: bool = False
) -> list[Record]:
    """Every record RocksDB 6.14 reads from `db` (its own order), opened read-write unless
    `read_only`: a read-write open is what the owner application does."""
    out = rocksdb614(
        """
        path, spec, cf, ro = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
        db = open_db(path, spec, read_only=ro)
        handle = None if cf == "default" else db.get_column_family(cf.encode())
        it = db.iteritems(handle) if handle is not None else db.iteritems()
        it.seek_to_first()
        for key, value in it:
            if isinstance(key, tuple):
                key = key[1]
            print(key.hex(), value.hex())
        del it
        db.close()
        """,
        db,
        spec.as_json(),
        cf,
        "1" if read_only else "0",
    )
    return [
        (bytes.fromhex(k), bytes.fromhex(v))
        for k, _, v in (line.partition(" ") for line in out.splitlines())
    ]


# -- rocksdict with non-default options -----------------------------------------------------------
PRELUDE_RDICT = """
import json, sys
import rocksdict as rd
"""


def rocksdict_script(body: str, *args: str | os.PathLike[str]) -> str:
    """Run a rocksdict script (`rd` is rocksdict) in a subprocess; returns its stdout."""
    return run_python(PRELUDE_RDICT, body, *args)


def records_of(ops: Iterable[Op], cf: str = "default") -> dict[bytes, bytes]:
    """The state plain puts and deletes leave in `cf` (merges need the operator: not here)."""
    state: dict[bytes, bytes] = {}
    for op in ops:
        if op.cf != cf:
            continue
        if op.kind == "put":
            state[op.key] = op.value
        elif op.kind == "delete":
            state.pop(op.key, None)
        else:
            raise ValueError("records_of cannot apply merge operands")
    return state


def as_sorted(records: Mapping[bytes, bytes], *, reverse: bool = False) -> list[Record]:
    return sorted(records.items(), reverse=reverse)
