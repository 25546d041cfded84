"""The library API (`from kvtool import ...`): results match what the writer (ldb) reads, every
handle is released however a stream ends, stops resume exactly, and a call changes nothing
process-wide in the caller (signal handlers, allocator, garbage collector, no forked child)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import kvtool
from kvtool.engine import TRACER
from tests.conftest import require_tool
from tests.oracles import ldb_load, ldb_scan

ROOT = Path(__file__).resolve().parent.parent
RECORDS = [(b"k%03d" % i, b"v%d" % i) for i in range(200)] + [(b"\xff\x00bin", b"\x00\x01")]


@pytest.fixture(scope="module")
def ldb_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("ldb")
    return ldb_load(tmp_path_factory.mktemp("library") / "ldb.db", RECORDS)


def tree(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_import_cheap_and_lazy() -> None:
    code = (
        "import sys, kvtool; before = set(sys.modules); kvtool.__version__; "
        "print(sorted(m for m in before if m.startswith(('kvtool.', 'rocksdict', 'typer', "
        "'orjson'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT)},
    ).stdout
    assert out.strip() == "[]"
    assert set(kvtool.__all__) <= set(dir(kvtool))
    for name in kvtool.__all__:
        assert getattr(kvtool, name) is not None


def test_every_public_name_is_typed_and_lazy() -> None:
    """What mypy sees (the TYPE_CHECKING imports) is what runs (the lazy table) and is __all__."""
    import ast

    tree = ast.parse((ROOT / "kvtool" / "__init__.py").read_text())
    typed = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for stmt in node.body
        if isinstance(stmt, ast.ImportFrom)
        for alias in stmt.names
    }
    assert typed == set(kvtool.__all__) - {"__version__"}
    assert typed == set(kvtool._HOMES)


def test_reads_match_the_writer_and_leave_the_db_as_it_was(ldb_db: Path) -> None:
    before = tree(ldb_db)
    assert list(kvtool.scan(ldb_db)) == ldb_scan(ldb_db)
    assert list(kvtool.scan(str(ldb_db), prefix="k01", reverse=True, limit=3)) == [
        (b"k019", b"v19"),
        (b"k018", b"v18"),
        (b"k017", b"v17"),
    ]
    assert kvtool.count(ldb_db).count == len(RECORDS)
    assert kvtool.count(ldb_db, start=b"k100", end="k150").count == 50
    assert kvtool.get(ldb_db, b"\xff\x00bin") == b"\x00\x01"
    out = io.BytesIO()
    result = kvtool.export(ldb_db, out, value_format="base64")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == result.stats["records"] == len(RECORDS) and result.cursor is None
    assert lines[0] == {"key": "k000", "value": "djA="}
    assert kvtool.verify(ldb_db).records == len(RECORDS)
    assert kvtool.diff(ldb_db, ldb_db).same == len(RECORDS)
    assert tree(ldb_db) == before
    assert TRACER.open_handles() == []


def test_a_stream_releases_its_handles_however_it_ends(ldb_db: Path) -> None:
    for _record in kvtool.scan(ldb_db):  # break out of a plain loop: the stream is dropped
        assert TRACER.open_handles() != []
        break
    assert TRACER.open_handles() == []
    records = iter(kvtool.scan(ldb_db))
    next(records)
    del records  # abandoned half-way
    assert TRACER.open_handles() == []
    stream = kvtool.scan(ldb_db)
    with pytest.raises(RuntimeError), stream:
        for _ in stream:
            raise RuntimeError("the caller's own error")
    assert TRACER.open_handles() == []
    with pytest.raises(kvtool.DatabaseNotFoundError):
        list(kvtool.scan(ldb_db.parent / "missing.db"))
    assert not (ldb_db.parent / "missing.db").exists()


def test_scan_cursor_resumes_after_a_break(ldb_db: Path) -> None:
    taken = []
    with kvtool.scan(ldb_db, prefix="k") as stream:
        for record in stream:
            taken.append(record)
            if len(taken) == 50:
                break
    rest = list(kvtool.scan(ldb_db, prefix="k", after=stream.cursor))
    assert taken + rest == [r for r in RECORDS if r[0].startswith(b"k")]
    with pytest.raises(kvtool.UsageError):
        list(kvtool.scan(ldb_db, prefix="x", after=stream.cursor))  # another range's cursor


def test_scan_stopped_by_its_timeout_resumes_exactly(ldb_db: Path) -> None:
    # Paced at 50 records/s, 201 records take 4 s: the 1 s timeout always stops the scan (if
    # the open alone took that second, nothing was taken and the cursor is None: start over).
    taken = []
    with pytest.raises(kvtool.StoppedError) as caught:
        for record in kvtool.scan(ldb_db, rate=50, timeout=1.0):
            taken.append(record)
    assert caught.value.exit_code == kvtool.ExitCode.TIMEOUT
    assert TRACER.open_handles() == []
    rest = list(kvtool.scan(ldb_db, after=caught.value.cursor))
    assert taken + rest == ldb_scan(ldb_db)


def test_export_stopped_by_its_timeout_resumes_exactly(ldb_db: Path, tmp_path: Path) -> None:
    # Paced at 50 records/s, the 201 records take 4 s: the 1 s timeout always stops the run.
    # (On a loaded machine the open alone may take that second: then nothing was written, the
    # cursor is None, and the resume starts from the beginning.)
    target = tmp_path / "out.jsonl"
    first = kvtool.export(ldb_db, target, rate=50, timeout=1.0, key_format="hex")
    assert first.stopped is not None
    with pytest.raises(kvtool.StoppedError) as caught:
        first.raise_for_status()
    assert caught.value.exit_code == kvtool.ExitCode.TIMEOUT
    second = kvtool.export(ldb_db, target, after=first.cursor, key_format="hex")
    assert second.stopped is None and second.cursor is None
    keys = [bytes.fromhex(json.loads(line)["key"]) for line in target.read_text().splitlines()]
    assert keys == [k for k, _ in ldb_scan(ldb_db)]


def test_writes_read_back_by_ldb(tmp_path: Path) -> None:
    require_tool("ldb")
    db = ldb_load(tmp_path / "w.db", [(b"a", b"1")])
    kvtool.put(db, "b", b"2")
    stats = kvtool.import_records(db, ((b"c%d" % i, "x") for i in range(3)))
    assert stats.records == 3
    assert kvtool.delete(db, "a") is True
    with pytest.raises(kvtool.KeyNotFoundError) as caught:
        kvtool.get(db, "a")
    assert caught.value.exit_code == 1
    assert ldb_scan(db) == [(b"b", b"2"), (b"c0", b"x"), (b"c1", b"x"), (b"c2", b"x")]


# Runs in a fresh interpreter: signal handlers, malloc settings and the gc threshold are the
# process's, so the pytest process (which may have run the CLI in-process) is no witness.
SIDE_EFFECTS = r"""
import ctypes, gc, io, multiprocessing, os, signal, sys
from pathlib import Path

forks = []
os.register_at_fork(before=lambda: forks.append(os.getpid()))
libc_loads = []
_CDLL = ctypes.CDLL
class WatchedCDLL(_CDLL):
    def __init__(self, name, *args, **kwargs):
        if name is None or "libc" in str(name):  # None: the process's own symbols (libc's)
            libc_loads.append(name)
        super().__init__(name, *args, **kwargs)
ctypes.CDLL = WatchedCDLL

def own(signum, frame):
    pass
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, own)
gc_before = gc.get_threshold()
handlers_seen = set()

class Out(io.RawIOBase):
    def writable(self):
        return True
    def write(self, data):
        handlers_seen.update(
            signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        )
        return len(data)

import kvtool
db, work = Path(sys.argv[1]), Path(sys.argv[2])
kvtool.export(db, Out())
kvtool.export(db, work / "out.jsonl", value_format="json")
for key, value in kvtool.scan(db):
    handlers_seen.update(signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM))
kvtool.count(db)
kvtool.diff(db, db, Out())
kvtool.verify(db, digest=True)
kvtool.import_records(work / "new.db", [(b"k", b"v")], create=True, mode="sst")
kvtool.checkpoint(work / "new.db", work / "copy.db")
kvtool.compact(work / "new.db")
children = [
    c for t in os.listdir("/proc/self/task")
    for c in open(f"/proc/self/task/{t}/children").read().split()
]
print("library", forks, libc_loads, gc.get_threshold() == gc_before, handlers_seen == {own},
      multiprocessing.active_children(), children, flush=True)

# The command line, in the same process, does tune it: the watchers above can see it.
from kvtool.cli.app import run
assert run(["export", str(db), "-o", str(work / "cli.jsonl"), "-q"]) == 0
print("cli", bool(libc_loads), gc.get_threshold() != gc_before,
      signal.getsignal(signal.SIGTERM) is own, flush=True)
"""


def test_library_calls_change_nothing_process_wide(ldb_db: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SIDE_EFFECTS, str(ldb_db), str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # No fork, no malloc tuning, the caller's gc threshold and its own signal handlers
    # throughout (seen from inside the export's writes and the scan's loop), no child left.
    assert lines[0] == "library [] [] True True [] []"
    # The CLI tunes the allocator and the collector for its run and restores the handlers.
    assert lines[1] == "cli True True True"
