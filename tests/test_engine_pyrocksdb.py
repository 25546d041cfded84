"""The python-rocksdb engine (`KVTOOL_ENGINE=python-rocksdb`, RocksDB 6.14) through the installed
kvtool: what RocksDB 6.14 wrote reads the same as with the default engine, its writes stay
readable by RocksDB 6.14, what it cannot do or read is one line with exit 69, and no way of
ending a run crashes it (the binding segfaults on a close under a live iterator or snapshot)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from .conftest import kvtool_executable, run_kvtool, run_stopped_by_deadline
from .oracles import (
    Spec,
    put,
    require_rocksdb614,
    rocksdb614,
    rocksdb614_read,
    rocksdb614_write,
    rocksdict_script,
)

ENGINE = {"KVTOOL_ENGINE": "python-rocksdb"}
RECORDS = [(b"k%05d" % i, b"v%d-" % i + bytes(range(i % 9))) for i in range(500)]
EXTRA = [(b"\x00bin", b""), (b"\xff\xfe", b"\x00\x01"), (b"z" * 300, b"x" * 3000)]
SPEC = Spec(format_version=4, compression="snappy_compression", column_families=("events",))


@pytest.fixture(autouse=True)
def _binding() -> None:
    require_rocksdb614()


def _written_by_614(tmp_path: Path) -> Path:
    """Two SST runs and a WAL tail, in two column families, written by RocksDB 6.14."""
    db = tmp_path / "614.db"
    data = RECORDS + EXTRA
    runs = [[put(k, v, cf) for k, v in data[i::3] for cf in ("default", "events")] for i in (0, 1)]
    wal = [put(k, v, cf) for k, v in data[2::3] for cf in ("default", "events")]
    return rocksdb614_write(db, runs, wal=wal, spec=SPEC)


def _kv(*args: str | Path, engine: str = "python-rocksdb") -> subprocess.CompletedProcess[bytes]:
    return run_kvtool(*args, env={"KVTOOL_ENGINE": engine})


def _one_error_line(result: subprocess.CompletedProcess[bytes], code: int) -> str:
    lines = result.stderr.decode().strip().splitlines()
    assert (result.returncode, len(lines)) == (code, 1), result.stderr.decode()
    assert lines[0].startswith("kvtool: error: ") and "Traceback" not in lines[0]
    return lines[0]


def _hex_records(out: bytes) -> list[tuple[bytes, bytes]]:
    rows = [orjson.loads(line) for line in out.splitlines()]
    return [(bytes.fromhex(r["key"]), bytes.fromhex(r["value"])) for r in rows]


HEX = ("--key-format", "hex", "--value-format", "hex")


def test_export_of_a_614_database_is_the_same_bytes_with_either_engine(tmp_path: Path) -> None:
    db = _written_by_614(tmp_path)
    for cf in ("default", "events"):
        expected = rocksdb614_read(db, spec=SPEC, cf=cf, read_only=True)
        assert len(expected) == len(RECORDS + EXTRA)
        outputs = {}
        for engine in ("rocksdict", "python-rocksdb"):
            result = _kv("export", db, "--cf", cf, *HEX, "-q", engine=engine)
            assert result.returncode == 0, result.stderr.decode()
            outputs[engine] = result.stdout
        assert outputs["rocksdict"] == outputs["python-rocksdb"]
        assert _hex_records(outputs["python-rocksdb"]) == expected


def test_put_and_compact_leave_a_614_database_readable_by_614(tmp_path: Path) -> None:
    db = _written_by_614(tmp_path)
    before = {cf: rocksdb614_read(db, spec=SPEC, cf=cf) for cf in ("default", "events")}
    result = _kv("put", db, "new-key", "new-value")
    assert result.returncode == 0, result.stderr.decode()
    result = _kv("put", db, "--cf", "events", "k00007", "changed")
    assert result.returncode == 0, result.stderr.decode()
    result = _kv("compact", db, "--bottommost", "force")
    assert result.returncode == 0, result.stderr.decode()
    want = dict(before["default"])
    want[b"new-key"] = b"new-value"
    assert rocksdb614_read(db, spec=SPEC) == sorted(want.items())
    events = dict(before["events"])
    events[b"k00007"] = b"changed"
    assert rocksdb614_read(db, spec=SPEC, cf="events") == sorted(events.items())
    # Its format is kept: the OPTIONS file still says what the owner wrote.
    newest = max(db.glob("OPTIONS-*"), key=lambda p: int(p.name.split("-")[1]))
    text = newest.read_text()
    assert "format_version=4" in text and "rocksdb_version=6.14.6" in text
    # And the default engine reads the same.
    out = _kv("export", db, "--cf", "events", *HEX, "-q", engine="rocksdict")
    assert _hex_records(out.stdout) == sorted(events.items())


def test_batch_import_writes_what_614_reads(tmp_path: Path) -> None:
    db = _written_by_614(tmp_path)
    lines = b"".join(b'{"key":"imp%03d","value":"x%d"}\n' % (i, i) for i in range(500))
    result = run_kvtool("import", db, "-", input=lines, env=ENGINE)
    assert result.returncode == 0, result.stderr.decode()
    got = dict(rocksdb614_read(db, spec=SPEC))
    assert all(got[b"imp%03d" % i] == b"x%d" % i for i in range(500))
    assert len(got) == len(RECORDS + EXTRA) + 500


def _format6_db(tmp_path: Path) -> Path:
    """rocksdict's defaults: table format_version 6 and XXH3 checksums."""
    db = tmp_path / "fv6.db"
    rocksdict_script(
        """
        o = rd.Options(raw_mode=True)
        o.create_if_missing(True)
        db = rd.Rdict(sys.argv[1], o)
        db[b"a"] = b"1"
        db.flush()
        db.close()
        """,
        db,
    )
    return db


def test_format_version_6_is_one_line_naming_the_file(tmp_path: Path) -> None:
    db = _format6_db(tmp_path)
    sst = next(db.glob("*.sst"))
    info = _kv("info", db)
    assert info.returncode == 0 and b"Traceback" not in info.stderr, info.stderr.decode()
    mentions = [line for line in info.stdout.decode().splitlines() if sst.name in line]
    assert len(mentions) == 1 and "table format_version 6" in mentions[0], info.stdout.decode()
    for args in (("scan",), ("export",), ("count",), ("get", "a")):
        line = _one_error_line(_kv(args[0], db, *args[1:]), 69)
        assert str(sst) in line and "format_version 6" in line and "--engine rocksdict" in line
    line = _one_error_line(_kv("put", db, "b", "2"), 69)
    assert "format_version 6" in line


def test_xxh3_checksums_are_one_line_naming_the_file(tmp_path: Path) -> None:
    db = tmp_path / "xxh3.db"
    rocksdict_script(
        """
        o = rd.Options(raw_mode=True)
        o.create_if_missing(True)
        t = rd.BlockBasedOptions()
        t.set_format_version(5)
        o.set_block_based_table_factory(t)
        db = rd.Rdict(sys.argv[1], o)
        db[b"a"] = b"1"
        db.flush()
        db.close()
        """,
        db,
    )
    line = _one_error_line(_kv("scan", db), 69)
    assert "XXH3 block checksums" in line and next(db.glob("*.sst")).name in line
    assert _kv("scan", db, engine="rocksdict").returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ["delete-range", "{db}", "--start", "k0", "--end", "k1"],
        ["import", "--mode", "sst", "{db}", "-"],
        ["compact", "--io-rate", "1MB", "{db}"],
    ],
    ids=" ".join,
)
def test_what_the_binding_lacks_is_one_line_with_69(tmp_path: Path, args: list[str]) -> None:
    db = _written_by_614(tmp_path)
    before = rocksdb614_read(db, spec=SPEC)
    result = run_kvtool(
        *(a.format(db=db) for a in args), input=b'{"key":"a","value":"b"}\n', env=ENGINE
    )
    line = _one_error_line(result, 69)
    assert "python-rocksdb" in line and "--engine rocksdict" in line
    assert rocksdb614_read(db, spec=SPEC) == before


def test_asking_for_the_engine_without_it_installed_says_how_to_install(tmp_path: Path) -> None:
    db = _written_by_614(tmp_path)
    code = (
        "import sys\n"
        "sys.modules['rocksdb'] = None  # as if faust-streaming-rocksdb were not installed\n"
        "from kvtool.cli.app import main\n"
        "sys.argv = ['kvtool', 'count', sys.argv[1]]\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        capture_output=True,
        env={**os.environ, **ENGINE},
        timeout=120,
        check=False,
    )
    line = _one_error_line(result, 69)
    assert "pip install 'kvtool[pyrocksdb]'" in line


def test_writes_stay_in_the_wal_and_614_replays_them(tmp_path: Path) -> None:
    """The binding has no flush: what kvtool wrote is in the WAL, which RocksDB 6.14 replays."""
    db = _written_by_614(tmp_path)
    ssts = set(db.glob("*.sst"))
    assert _kv("put", db, "wal-only", "yes").returncode == 0
    assert dict(rocksdb614_read(db, spec=SPEC, read_only=True))[b"wal-only"] == b"yes"
    assert ssts <= set(db.glob("*.sst"))


# -- lifetimes: every way a run ends, through the installed kvtool ---------------------------------
def test_a_kept_native_reference_defers_the_close_instead_of_crashing(tmp_path: Path) -> None:
    """A native iterator and snapshot that outlive their handles (a leak) keep the database
    open until they go: no close under them, no segfault; every use of a handle is an error."""
    db = _written_by_614(tmp_path)
    code = """
import sys
from kvtool.engine import HandleClosedError, OpenMode, open_db
for mode in (OpenMode.READ_ONLY, OpenMode.READ_WRITE):
    db = open_db(sys.argv[1], mode, engine="python-rocksdb")
    it = db.iterator()
    snap = db.snapshot()
    leaked = (it._native, snap._native)
    it.seek_to_first()
    db.close()
    for call in (lambda: it.read_batch(5), lambda: snap.get(b"k00001"), lambda: db.get(b"a")):
        try:
            call()
        except HandleClosedError:
            pass
        else:
            raise SystemExit("a released handle was usable")
    print(len(list(leaked[0])) > 0)
    del leaked
print("done")
"""
    result = subprocess.run(
        [sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stdout) == (0, "True\nTrue\ndone\n"), result.stderr


def _big_614(tmp_path: Path) -> Path:
    """60,000 records (about 3 MB of JSON Lines) in SST files, written by RocksDB 6.14."""
    db = tmp_path / "big.db"
    rocksdb614(
        """
        db = open_db(sys.argv[1], {})
        for i in range(60_000):
            db.put(b"key:%08d" % i, b"%08x" % i * 16)
        db.close()
        """,
        db,
    )
    return db


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_with_a_blocked_reader_exits_with_its_code(tmp_path: Path, sig: int) -> None:
    db = _big_614(tmp_path)
    proc = subprocess.Popen(
        [kvtool_executable(), "export", str(db), "-j", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **ENGINE},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # it is exporting: the pipe fills behind this line
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err.decode()
    assert b"Traceback" not in err
    assert (first + out).endswith(b"\n")


def test_early_end_closed_pipe_and_deadline(tmp_path: Path) -> None:
    db = _big_614(tmp_path)
    env = {**os.environ, **ENGINE}
    # Early end: the reader goes after one line (what `head -1` does).
    proc = subprocess.Popen(
        [kvtool_executable(), "export", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b'{"key":"key:00000000"')
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (0, b"")
    # A pipe closed before the first write, for the reading commands.
    for args in (["scan"], ["count"], ["info"], ["export", "-j", "2"], ["verify", "-q"]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            done = subprocess.run(
                [kvtool_executable(), args[0], str(db), *args[1:]],
                stdout=write_end, stderr=subprocess.PIPE, env=env, timeout=120, check=False,
            )  # fmt: skip
        finally:
            os.close(write_end)
        assert (done.returncode, done.stderr) == (0, b""), (args, done.stderr.decode())
    # A deadline: exit 124 with whole records and a cursor (4 s: the opens take their time on
    # a loaded machine, and the deadline counts from the start; longer when even that was short).
    result = run_stopped_by_deadline(
        "export", db, "-o", tmp_path / "out.jsonl", rate=2000, timeout=4, env=ENGINE
    )
    assert result.returncode == 124, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    partial = (tmp_path / "out.jsonl.partial").read_bytes()
    assert partial.endswith(b"\n") and b"--after" in result.stderr


def test_version_and_info_name_the_engine_and_rocksdb_614(tmp_path: Path) -> None:
    result = run_kvtool("--version", env=ENGINE)
    assert result.returncode == 0 and b"RocksDB 6.14.6" in result.stdout, result.stdout
    db = _written_by_614(tmp_path)
    info = _kv("info", db)
    assert info.returncode == 0, info.stderr.decode()
    assert re.search(
        r"^read with: +python-rocksdb \S+, RocksDB 6\.14\.6$", info.stdout.decode(), re.M
    )
    assert "read with:       rocksdict 0." in _kv("info", db, engine="rocksdict").stdout.decode()


# -- the same write safety rules as the default engine ---------------------------------------------
def test_a_merge_operator_is_refused_for_reads_and_writes_even_forced(tmp_path: Path) -> None:
    spec = Spec(merge="uint64add")
    db = rocksdb614_write(tmp_path / "merge.db", [[put(b"a", b"1")]], spec=spec)
    before = rocksdb614_read(db, spec=spec)
    assert "merge operator" in _one_error_line(_kv("count", db), 69)
    line = _one_error_line(_kv("put", db, "--force", "b", "2"), 69)
    assert "--force does not override this" in line
    assert rocksdb614_read(db, spec=spec) == before


def test_a_prefix_extractor_needs_force_and_reads_stay_exact(tmp_path: Path) -> None:
    spec = Spec(prefix_len=4, bloom_bits=10)
    rows = [(b"%04d-%03d" % (i % 7, i), b"v%d" % i) for i in range(300)]
    db = rocksdb614_write(tmp_path / "prefix.db", [[put(k, v) for k, v in rows]], spec=spec)
    expected = rocksdb614_read(db, spec=spec)
    out = _kv("export", db, *HEX, "-q")
    assert _hex_records(out.stdout) == expected
    assert _kv("get", db, "0003-010").stdout == b"v10"
    line = _one_error_line(_kv("put", db, "0001-999", "new"), 2)
    assert "prefix_extractor" in line and "--force" in line
    assert rocksdb614_read(db, spec=spec) == expected
    assert _kv("put", db, "--force", "0001-999", "new").returncode == 0
    assert rocksdb614_read(db, spec=spec) == sorted([*expected, (b"0001-999", b"new")])


def test_a_wal_damaged_mid_file_is_74_and_allow_data_loss_reads_what_614_recovers(
    tmp_path: Path,
) -> None:
    db = tmp_path / "wal.db"
    rocksdb614(
        """
        db = open_db(sys.argv[1], {})
        for i in range(3000):
            db.put(b"key%06d" % i, b"v" * 200 + b"%d" % i)
        db.close()
        """,
        db,
    )
    (wal,) = [p for p in db.glob("*.log") if p.stat().st_size]
    with wal.open("r+b") as f:
        f.seek(wal.stat().st_size // 2)
        f.write(b"\xde\xad\xbe\xef" * 8)
    recovered = rocksdb614_read(db, read_only=True)  # RocksDB 6.14 stops there, silently
    assert 0 < len(recovered) < 3000
    for args in (("count",), ("export",), ("put", "k", "v")):
        line = _one_error_line(_kv(args[0], db, *args[1:]), 74)
        assert str(wal) in line, line
    result = _kv("--allow-data-loss", "count", db)
    assert (result.returncode, result.stdout) == (0, b"%d\n" % len(recovered)), result.stderr


def test_checkpoint_delete_and_column_families_stay_readable_by_614(tmp_path: Path) -> None:
    db = _written_by_614(tmp_path)
    expected = rocksdb614_read(db, spec=SPEC)
    assert _kv("delete", db, "k00003").returncode == 0
    expected = [(k, v) for k, v in expected if k != b"k00003"]
    copy = tmp_path / "copy.db"
    result = _kv("checkpoint", db, copy)
    assert result.returncode == 0, result.stderr.decode()
    assert rocksdb614_read(copy, spec=SPEC) == expected
    assert rocksdb614_read(copy, spec=SPEC, cf="events") == rocksdb614_read(
        db, spec=SPEC, cf="events"
    )
    assert _kv("cf", "create", db, "extra").returncode == 0
    assert _kv("put", db, "--cf", "extra", "x", "1").returncode == 0
    spec = Spec(
        format_version=4, compression="snappy_compression", column_families=("events", "extra")
    )
    assert rocksdb614_read(db, spec=spec, cf="extra") == [(b"x", b"1")]
    assert _kv("cf", "drop", db, "extra").returncode == 0
    assert _kv("cf", "list", db).stdout == b"default\nevents\n"
    assert rocksdb614_read(db, spec=SPEC) == expected
