"""A crash between a flush or compaction writing its file and the MANIFEST edit that adds it
is not lost data; a lost MANIFEST edit still is (exit 74).

The crash states are made of real ones, never of guessed bytes: a rocksdict writer copies its
own directory before a flush (MANIFEST and WAL), after it, and after a compaction, then is
SIGKILLed. The file a step made, dropped into the copy from before that step, is exactly what a
crash between the two leaves on disk. The writer's records are the truth; ldb 7.8 reading the
state and rocksdict 9.8 opening a copy read-write (which deletes what the version does not
reference) are the oracles of what RocksDB recovers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kvtool.errors import ExitCode

from .conftest import dir_state, run_kvtool
from .oracles import PRELUDE_RDICT, Record, ldb_scan, rocksdb614, rocksdict_script

NOTE = "left by an interrupted flush/compaction; RocksDB removes it on the next read-write open"
NOTES = "left by interrupted flushes/compactions; RocksDB removes them on the next read-write open"

# Stages: "wal" (the second batch of writes is in the WAL only), "flushed", "compacted".
_WRITER = """
import os, shutil, signal
path, stages = sys.argv[1], sys.argv[2]
o = rd.Options(raw_mode=True)
o.create_if_missing(True)
t = rd.BlockBasedOptions(); t.set_format_version(5); o.set_block_based_table_factory(t)
db = rd.Rdict(path, o)

def stage(name):
    shutil.copytree(path, os.path.join(stages, name), ignore=shutil.ignore_patterns("LOCK", "LOG*"))

for i in range(2000):
    db.put(b"a%05d" % i, b"x" * 100)
db.flush()
for i in range(0, 2000, 2):
    db.put(b"a%05d" % i, b"y" * 100)
for i in range(0, 2000, 7):
    db.delete(b"a%05d" % i)
db.delete_range(b"a01900", b"a01950")
stage("wal")
db.flush()
stage("flushed")
db.compact_range(None, None)
stage("compacted")
os.kill(os.getpid(), signal.SIGKILL)
"""


def _truth() -> list[Record]:
    state = {b"a%05d" % i: b"x" * 100 for i in range(2000)}
    state.update({b"a%05d" % i: b"y" * 100 for i in range(0, 2000, 2)})
    for i in range(0, 2000, 7):
        state.pop(b"a%05d" % i)
    for i in range(1900, 1950):
        state.pop(b"a%05d" % i, None)
    return sorted(state.items())


TRUTH = _truth()


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash")
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE_RDICT + _WRITER, str(root / "db"), str(root)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == -9, result.stderr.decode()[-2000:]
    return root


def _ssts(db: Path) -> set[str]:
    return {p.name for p in db.glob("*.sst")}


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def _made(stages: Path, before: str, after: str) -> set[str]:
    """The SST files step `after` made (in its copy, not in `before`'s)."""
    made = _ssts(stages / after) - _ssts(stages / before)
    assert made, (before, after)
    return made


def _wal(stages: Path) -> str:
    (wal,) = [p.name for p in (stages / "wal").glob("*.log") if p.stat().st_size]
    return wal


def flush_output(stages: Path, db: Path) -> set[str]:
    """Before the flush (its WAL holds the records), with the file the flush wrote."""
    _copy(stages / "wal", db)
    made = _made(stages, "wal", "flushed")
    for name in made:
        shutil.copy2(stages / "flushed" / name, db / name)
    return made


def compaction_output(stages: Path, db: Path) -> set[str]:
    """After the flush, with the file the compaction of both L0 files wrote (its records
    at sequence number 0, as compaction to the last level leaves them)."""
    _copy(stages / "flushed", db)
    made = _made(stages, "flushed", "compacted")
    for name in made:
        shutil.copy2(stages / "compacted" / name, db / name)
    return made


def compaction_inputs(stages: Path, db: Path) -> set[str]:
    """After the compaction was recorded, with the inputs it replaced not yet deleted."""
    _copy(stages / "compacted", db)
    inputs = _ssts(stages / "flushed") - _ssts(stages / "compacted")
    for name in inputs:
        shutil.copy2(stages / "flushed" / name, db / name)
    return inputs


def cut_manifest_wal_kept(stages: Path, db: Path) -> set[str]:
    """After the flush with its MANIFEST edit lost (cut to its size before the flush), but the
    WAL it retired still there: recovery replays it, so nothing is lost."""
    made = _cut_manifest(stages, db)
    shutil.copy2(stages / "wal" / _wal(stages), db / _wal(stages))
    return made


def _cut_manifest(stages: Path, db: Path) -> set[str]:
    _copy(stages / "flushed", db)
    current = (db / "CURRENT").read_text().strip()
    assert (stages / "wal" / "CURRENT").read_text().strip() == current  # no new MANIFEST
    os.truncate(db / current, (stages / "wal" / current).stat().st_size)
    (db / _wal(stages)).unlink(missing_ok=True)  # a flush deletes the WAL it made obsolete
    return _made(stages, "wal", "flushed")


MAKERS: dict[str, Callable[[Path, Path], set[str]]] = {
    "flush_output": flush_output,
    "compaction_output": compaction_output,
    "compaction_inputs": compaction_inputs,
    "cut_manifest_wal_kept": cut_manifest_wal_kept,
    "lost_flush_edit": _cut_manifest,
}


@pytest.fixture(scope="module")
def states(stages: Path) -> dict[str, tuple[Path, set[str]]]:
    """Every crash state (read-only: tests that write copy one), with the files left over."""
    out = {}
    for name, make in MAKERS.items():
        db = stages / "states" / name
        out[name] = (db, make(stages, db))
    return out


@pytest.fixture(scope="module")
def rocksdb_reads(
    states: dict[str, tuple[Path, set[str]]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[list[Record], set[str]]]:
    """What the owner's RocksDB (9.8) reads after its read-write open of a copy of each state,
    and the SST files left after it (one process for them all)."""
    copies = tmp_path_factory.mktemp("rw")
    for name, (db, _) in states.items():
        shutil.copytree(db, copies / name)
    out = rocksdict_script(
        """
import os
for name in sorted(os.listdir(sys.argv[1])):
    db = rd.Rdict(os.path.join(sys.argv[1], name), rd.Options(raw_mode=True))
    records = [[k.hex(), v.hex()] for k, v in db.items()]
    db.close()
    print(json.dumps([name, records]))
""",
        copies,
    )
    reads = {}
    for line in out.splitlines():
        name, records = json.loads(line)
        recovered = [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in records]
        reads[name] = (recovered, _ssts(copies / name))
    return reads


def _export(db: Path) -> tuple[list[Record], bytes]:
    result = run_kvtool("export", db, "--key-format", "hex", "--value-format", "hex")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return [(bytes.fromhex(r["key"]), bytes.fromhex(r["value"])) for r in rows], result.stderr


def _ldb(db: Path) -> list[Record]:
    return ldb_scan(db, "--try_load_options=false")  # the writer's OPTIONS name 9.8's options


def _notes(stderr: bytes) -> list[str]:
    """The note lines of a run's stderr (the stats block of a run without -q aside)."""
    text = stderr.decode()
    assert "Traceback" not in text and "kvtool: error" not in text, text
    return [line for line in text.splitlines() if line.startswith("kvtool: note: ")]


@pytest.mark.parametrize("name", [n for n in MAKERS if n != "lost_flush_edit"])
def test_a_crash_leftover_is_a_note_and_reads_like_rocksdb(
    states: dict[str, tuple[Path, set[str]]],
    rocksdb_reads: dict[str, tuple[list[Record], set[str]]],
    name: str,
) -> None:
    db, left = states[name]
    before = dir_state(db)
    records, stderr = _export(db)
    (note,) = _notes(stderr)
    assert all(str(db / f) in note for f in left), note
    assert (NOTE if len(left) == 1 else NOTES) in note, note
    assert records == TRUTH == _ldb(db)
    assert dir_state(db) == before  # a read-only command deletes nothing
    # RocksDB's own read-write open reads the same and deletes what was left.
    recovered, remaining = rocksdb_reads[name]
    assert recovered == TRUTH and left and not left & remaining


def test_other_reads_leave_the_leftover_and_say_it_once(
    states: dict[str, tuple[Path, set[str]]],
) -> None:
    db, (left,) = states["flush_output"]
    before = dir_state(db)
    for args in (("verify",), ("count",), ("info",), ("export", "-j", "2")):
        result = run_kvtool(*args, db)
        assert result.returncode == 0, (args, result.stderr)
        assert [str(db / left) in n for n in _notes(result.stderr)] == [True], (args, result)
    # verify -q in cron: a success prints nothing, the note included; so for every -q.
    quiet = run_kvtool("verify", "-q", db)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, b"", b"")
    quiet = run_kvtool("export", "-q", "-j", "2", db)
    assert (quiet.returncode, quiet.stderr) == (0, b""), quiet.stderr
    assert dir_state(db) == before


def test_a_lost_flush_edit_is_still_lost_data(
    states: dict[str, tuple[Path, set[str]]],
    rocksdb_reads: dict[str, tuple[list[Record], set[str]]],
) -> None:
    """The MANIFEST cut to its size before the flush and the WAL gone: the flushed records are
    in that one file, which RocksDB's read-write open deletes."""
    db, (lost,) = states["lost_flush_edit"]
    result = run_kvtool("verify", "-q", db)
    assert result.returncode == ExitCode.IO_ERROR, result.stderr
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("kvtool: error: ") and str(db / "MANIFEST-") in line, line
    assert str(db / lost) in line and NOTE not in line, line
    recovered, remaining = rocksdb_reads["lost_flush_edit"]
    assert len(recovered) > len(TRUTH) and lost not in remaining  # the deletes are gone too


def test_inputs_an_older_manifest_retired(
    states: dict[str, tuple[Path, set[str]]], tmp_path: Path
) -> None:
    """The owner's next open wrote a new MANIFEST (the live files only, no history) and crashed
    before deleting the old one and the compaction inputs it retired: the old MANIFEST says so.
    (Their records are not all elsewhere: the compaction dropped the overwritten x values.)"""
    source, inputs = states["compaction_inputs"]
    db = _copy(source, tmp_path / "db")
    old = (db / "CURRENT").read_text().strip()
    rocksdict_script("rd.Rdict(sys.argv[1], rd.Options(raw_mode=True)).close()", db)
    assert (db / "CURRENT").read_text().strip() != old and not inputs & _ssts(db)
    for name in [old, *inputs]:
        shutil.copy2(source / name, db / name)
    result = run_kvtool("count", db)
    assert (result.returncode, result.stdout) == (0, b"%d\n" % len(TRUTH)), result.stderr
    (note,) = _notes(result.stderr)
    assert all(str(db / name) in note for name in inputs) and NOTES in note, note


def test_a_write_lets_rocksdb_remove_the_leftover(stages: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    (left,) = flush_output(stages, db)
    result = run_kvtool("put", db, "b", "v")
    assert result.returncode == 0, result.stderr
    assert not (db / left).exists()
    assert _ldb(db) == [*TRUTH, (b"b", b"v")]


def test_an_ingested_file_whose_edit_was_lost_is_lost_data(
    states: dict[str, tuple[Path, set[str]]], tmp_path: Path
) -> None:
    """An external file (SstFileWriter: no column family id, an external file version) holds
    its records at sequence number 0 whatever their place: older values of live keys (the x
    of even keys, which y overwrote) must not pass for copies of them. The error is the one
    line on stderr; the flush leftover next to it is not named."""
    source, (left,) = states["cut_manifest_wal_kept"]
    db = _copy(source, tmp_path / "db")
    rocksdict_script(
        """
w = rd.SstFileWriter(rd.Options(raw_mode=True))
w.open(sys.argv[1])
for i in range(2, 200, 2):
    w[b"a%05d" % i] = b"x" * 100
w.finish()
""",
        db / "000100.sst",
    )
    result = run_kvtool("count", db)
    assert result.returncode == ExitCode.IO_ERROR, result.stderr
    (line,) = result.stderr.decode().splitlines()
    assert str(db / "000100.sst") in line and left not in line, line


@pytest.fixture(scope="module")
def r614_leftover(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """RocksDB 6.14 flushes the WAL it recovers into an SST file, then writes a new MANIFEST;
    a crash between the two leaves the old MANIFEST, the WAL and that file."""
    root = tmp_path_factory.mktemp("r614")
    before_open, after_open = root / "wal", root / "opened"
    rocksdb614(
        """
import os, shutil
path = sys.argv[1]
db = rocksdb.DB(path, rocksdb.Options(create_if_missing=True))
for i in range(500):
    db.put(b"k%04d" % i, b"v%d" % i)
shutil.copytree(path, sys.argv[2], ignore=shutil.ignore_patterns("LOCK", "LOG*"))
os._exit(0)  # no close: the records are in the WAL only
""",
        root / "owner",
        before_open,
    )
    rocksdb614(
        """
import shutil
db = rocksdb.DB(sys.argv[1], rocksdb.Options())
db.close()
shutil.copytree(sys.argv[1], sys.argv[2], ignore=shutil.ignore_patterns("LOCK", "LOG*"))
""",
        root / "owner",
        after_open,
    )
    (left,) = _ssts(after_open) - _ssts(before_open)
    db = _copy(before_open, root / "db")
    shutil.copy2(after_open / left, db / left)
    assert len(_ldb(db)) == 500  # its OPTIONS name the owner's directory as wal_dir
    return db, left


@pytest.mark.parametrize("engine", ["rocksdict", "python-rocksdb"])
def test_a_rocksdb_614_recovery_flush_left_behind(
    r614_leftover: tuple[Path, str], engine: str
) -> None:
    db, left = r614_leftover
    result = run_kvtool("count", db, env={"KVTOOL_ENGINE": engine})
    assert (result.returncode, result.stdout) == (0, b"500\n"), result.stderr
    (note,) = _notes(result.stderr)
    assert str(db / left) in note and NOTE in note


_CF_WRITER = """
import os, shutil, signal
path, stages = sys.argv[1], sys.argv[2]
o = rd.Options(raw_mode=True)
o.create_if_missing(True)
o.create_missing_column_families(True)
db = rd.Rdict(path, o, column_families={"b": rd.Options(raw_mode=True)})
b = db.get_column_family("b")

def stage(name):
    shutil.copytree(path, os.path.join(stages, name), ignore=shutil.ignore_patterns("LOCK", "LOG*"))

for i in range(1000):
    db.put(b"a%05d" % i, b"x" * 50)
    b.put(b"b%05d" % i, b"y" * 50)
    if i % 3 == 0:
        b.put_entity(b"e%05d" % i, [b"c1", b"c2"], [b"v1", b"v2-%d" % i])
stage("wal")
b.flush()
stage("flushed_b")
db.flush()
stage("flushed_both")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_column_families_and_entities(tmp_path: Path) -> None:
    """Column family `b` (puts and wide-column entities) flushed, its edit lost, the WAL it came
    from still live for `default`: a leftover. Then `default` flushed and its edit lost, the WAL
    deleted: that file is lost data, and `b`'s recorded file is not in question."""
    stages = tmp_path / "stages"
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE_RDICT + _CF_WRITER, str(tmp_path / "db"), str(stages)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == -9, result.stderr.decode()[-2000:]
    (b_file,) = _made(stages, "wal", "flushed_b")
    (default_file,) = _made(stages, "flushed_b", "flushed_both")
    left = _copy(stages / "wal", tmp_path / "left")
    shutil.copy2(stages / "flushed_b" / b_file, left / b_file)
    lost = _copy(stages / "flushed_both", tmp_path / "lost")
    manifest = (lost / "CURRENT").read_text().strip()
    os.truncate(lost / manifest, (stages / "flushed_b" / manifest).stat().st_size)

    result = run_kvtool("count", "--cf", "b", left)
    assert (result.returncode, result.stdout) == (0, b"1334\n"), result.stderr
    (note,) = _notes(result.stderr)
    assert str(left / b_file) in note and NOTE in note, note
    result = run_kvtool("verify", "-q", lost)
    assert result.returncode == ExitCode.IO_ERROR, result.stderr
    (line,) = result.stderr.decode().splitlines()
    assert str(lost / default_file) in line and b_file not in line, line
    # RocksDB's read-write open: every record of `b` from the WAL, the leftover deleted.
    out = rocksdict_script(
        """
o = rd.Options(raw_mode=True)
db = rd.Rdict(sys.argv[1], o, column_families={"b": rd.Options(raw_mode=True)})
print(len(list(db.get_column_family("b").keys())), len(list(db.keys())))
db.close()
""",
        left,
    )
    assert out.split() == ["1334", "1000"]
    assert not (left / b_file).exists()


_DROP_WRITER = """
import os, shutil, signal
path, stages = sys.argv[1], sys.argv[2]
o = rd.Options(raw_mode=True)
o.create_if_missing(True)
o.create_missing_column_families(True)
db = rd.Rdict(path, o, column_families={"b": rd.Options(raw_mode=True)})
b = db.get_column_family("b")
for i in range(1000):
    b.put(b"b%05d" % i, b"y" * 50)
    db.put(b"a%05d" % i, b"x")
b.flush()
db.flush()
skip = shutil.ignore_patterns("LOCK", "LOG*")
shutil.copytree(path, os.path.join(stages, "before"), ignore=skip)
del b
db.drop_column_family("b")
shutil.copytree(path, os.path.join(stages, "dropped"), ignore=skip)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_dropped_column_familys_file(tmp_path: Path) -> None:
    """The owner dropped column family `b` and crashed before deleting its file: not lost data
    (the MANIFEST records the drop), though no live column family holds its records."""
    stages = tmp_path / "stages"
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE_RDICT + _DROP_WRITER, str(tmp_path / "db"), str(stages)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == -9, result.stderr.decode()[-2000:]
    db = _copy(stages / "dropped", tmp_path / "left")
    (left,) = _ssts(stages / "before") - _ssts(db)
    shutil.copy2(stages / "before" / left, db / left)
    result = run_kvtool("count", db)
    assert (result.returncode, result.stdout) == (0, b"1000\n"), result.stderr
    (note,) = _notes(result.stderr)
    assert str(db / left) in note and NOTE in note, note
