"""Stops that must never lose or tear a record: signals with a blocked reader, a second signal,
SIGHUP, a range worker killed, closed pipes, interrupted imports and checkpoints.

Every run is a real `kvtool` subprocess. A blocked reader is a pipe nobody reads: the tests wait
until the pipe is full (FIONREAD equals its capacity), signal, and only then read everything. The
database is written by `ldb` (RocksDB 7.8), and `ldb scan` is the oracle.
"""

from __future__ import annotations

import array
import base64
import contextlib
import errno
import fcntl
import functools
import gzip
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import termios
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import orjson
import pytest

from .conftest import kvtool_executable, require_tool, run_kvtool
from .oracles import ldb_scan

RECORDS = 100_000  # two chunks of range workers (range_plan.CHUNK_RECORDS)
F_GETPIPE_SZ = (
    1032  # fcntl.F_GETPIPE_SZ, Linux; named in fcntl only from Python 3.10 on some builds
)


# -- the database and its oracle ------------------------------------------------------------------
@pytest.fixture(scope="module")
def ldb_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str]]]:
    """100,000 records (about 14 MB of JSON Lines) loaded and compacted by `ldb`; the records as
    `ldb scan` reads them."""
    ldb = require_tool("ldb")
    root = tmp_path_factory.mktemp("stops")
    db = root / "ldb.db"
    text = b"".join(
        b"key:%012d ==> %s\n" % (i, (b"%08x" % (i * 2654435761 % 2**32)) * 12 + b"-v")
        for i in range(RECORDS)
    )
    subprocess.run([ldb, f"--db={db}", "--create_if_missing", "load"], input=text, check=True)
    subprocess.run([ldb, f"--db={db}", "compact"], check=True, capture_output=True)
    scanned = subprocess.run([ldb, f"--db={db}", "scan"], check=True, capture_output=True).stdout
    records = [tuple(line.split(" : ", 1)) for line in scanned.decode().splitlines()]
    assert len(records) == RECORDS
    return db, records  # type: ignore[return-value]


def _records(jsonl: bytes) -> list[tuple[str, str]]:
    """The records of JSON Lines output; every line must be a whole record."""
    assert not jsonl or jsonl.endswith(b"\n"), f"torn last line: ...{jsonl[-80:]!r}"
    out = []
    for line in jsonl.splitlines():
        record = orjson.loads(line)
        out.append((record["key"], record["value"]))
    return out


def _jsonl(records: list[tuple[str, str]]) -> list[bytes]:
    """kvtool's JSON Lines for text records (the sizes the output reaches)."""
    return [orjson.dumps({"key": k, "value": v}) + b"\n" for k, v in records]


def _cursor(stderr: bytes) -> str:
    match = re.search(rb"resume with --after (\S+)", stderr)
    assert match, stderr.decode()
    return match.group(1).decode()


# -- driving a blocked reader ---------------------------------------------------------------------
def _start(
    *args: str | Path, env: dict[str, str] | None = None, stdin: int | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [kvtool_executable(), *map(str, args)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def _wait_for(predicate: Callable[[], bool], what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        assert proc.poll() is None, f"kvtool ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


def _pipe_full(proc: subprocess.Popen[bytes]) -> None:
    """Wait until kvtool's stdout pipe is full: from then on its writes block."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    capacity = fcntl.fcntl(fd, F_GETPIPE_SZ)

    def full() -> bool:
        waiting = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, waiting)
        return waiting[0] >= capacity

    _wait_for(full, "a full stdout pipe", proc)


def _signal_taken(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send `sig` and wait until the process has taken it (no longer pending), so that a second
    one is a second delivery and not merged with the first."""
    proc.send_signal(sig)
    bit = 1 << (sig - 1)

    def taken() -> bool:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        pending = re.findall(r"^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$", status, re.M)
        return not any(int(mask, 16) & bit for mask in pending)

    _wait_for(taken, f"signal {sig} to be taken", proc)


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, bytes, bytes]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _thread_states(pid: int) -> set[str]:
    """The scheduler states of the threads of `pid` (R, S, D, T, Z, ...; empty once it is gone)."""
    states = set()
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            states.add(stat.read_text().rsplit(")", 1)[1].split()[0])
    return states


def _act_while(
    proc: subprocess.Popen[bytes], state: Callable[[], bool], act: Callable[[], None]
) -> bool:
    """Run `act` (a signal, a kill) while `state()` holds for the running kvtool, for certain.

    A poll alone cannot promise that: the state may pass between the look and the act (a copy
    that ends, a file renamed), and a signal that lands after kvtool's work is done stops its
    exit instead (exit -2). So once the poll sees the state, the process is stopped (SIGSTOP:
    every thread) and looked at again: what the test sees then stays true until `act` has run,
    and the process continues (SIGCONT) to take the signal in that state. False when the state
    was missed (it passed, or kvtool ended, before the test stopped it): run kvtool again.
    """
    deadline = time.monotonic() + 60
    while proc.poll() is None:
        assert time.monotonic() < deadline, "gave up waiting for the state to act in"
        if state():
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                while not (states := _thread_states(proc.pid)) <= {"T", "t", "Z", "X"}:
                    assert time.monotonic() < deadline, f"kvtool did not stop: {states}"
                    time.sleep(0.001)
                if not states or "Z" in states or not state():
                    return False
                act()
                return True
            finally:
                os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.001)
    return False


STOPS = {
    "SIGINT": ([signal.SIGINT], 130),
    "SIGTERM": ([signal.SIGTERM], 143),
    "SIGHUP": ([signal.SIGHUP], 129),
    "double SIGINT": ([signal.SIGINT, signal.SIGINT], 130),
}


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("how", list(STOPS))
def test_a_stop_with_a_blocked_reader_keeps_whole_records_and_resumes_exactly(
    ldb_db: tuple[Path, list[tuple[str, str]]], tmp_path: Path, how: str, workers: str
) -> None:
    db, expected = ldb_db
    signals, code = STOPS[how]
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    proc = _start("export", db, "-j", workers, env={"TMPDIR": str(private_tmp)})
    _pipe_full(proc)
    for sig in signals:
        _signal_taken(proc, sig)
    returncode, part, err = _finish(proc)

    assert returncode == code, err.decode()
    got = _records(part)
    assert 0 < len(got) < RECORDS
    assert got == expected[: len(got)]
    if len(signals) > 1:
        assert b"stopping: writing out the whole records" in err
    assert list(private_tmp.iterdir()) == []  # the private read-only view is gone
    rest = run_kvtool("export", db, "-j", workers, "--after", _cursor(err))
    assert rest.returncode == 0, rest.stderr.decode()
    assert got + _records(rest.stdout) == expected


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_third_signal_stops_at_once_when_the_reader_never_reads(
    ldb_db: tuple[Path, list[tuple[str, str]]], workers: str
) -> None:
    db, _ = ldb_db
    proc = _start("export", db, "-j", workers)
    _pipe_full(proc)
    for _ in range(3):
        _signal_taken(proc, signal.SIGINT)
    assert proc.wait(timeout=60) == 130  # stdout is still unread: nothing else could end it
    assert proc.stderr is not None
    assert proc.stderr.read().decode().strip().endswith("kvtool: error: interrupted")
    proc.communicate()


@pytest.mark.parametrize("victim", [0, 1])
def test_a_killed_worker_stops_the_export_at_once_with_whole_records(
    ldb_db: tuple[Path, list[tuple[str, str]]], victim: int
) -> None:
    """Worker 0 is the one blocked writing (its batch is cut by the kill: the parent mends it);
    worker 1 is reading ahead (nothing of it reached the output)."""
    db, expected = ldb_db
    proc = _start("export", db, "-j", "2")
    _pipe_full(proc)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(children) == 2
    os.kill(int(children[victim]), signal.SIGKILL)
    returncode, part, err = _finish(proc)

    assert returncode == 74, err.decode()
    message = err.decode().strip().splitlines()[-1]
    assert f"worker process {children[victim]} was killed by SIGKILL" in message
    assert "nothing was written" not in message
    got = _records(part)
    assert 0 < len(got) < RECORDS
    assert got == expected[: len(got)]
    rest = run_kvtool("export", db, "-j", "2", "--after", _cursor(err))
    assert rest.returncode == 0, rest.stderr.decode()
    assert got + _records(rest.stdout) == expected


def test_a_killed_worker_leaves_a_partial_file_of_whole_records(
    ldb_db: tuple[Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    """The kill lands mid-run for certain: the coordinating parent is stopped (`_act_while`)
    while the output holds less than a tenth of the records, which is inside the first chunk
    (about half of them); without the parent no worker gets the next chunk's turn, so both
    workers still have records to write when one is killed."""
    db, expected = ldb_db
    target = tmp_path / "out.jsonl"
    tenth = len(b"".join(_jsonl(expected[: RECORDS // 10])))

    def writing() -> bool:
        sizes = [p.stat().st_size for p in tmp_path.glob(".out.jsonl.*.tmp")]
        return 0 < max(sizes, default=0) < tenth

    def kill_a_worker() -> None:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 2, children
        os.kill(int(children[0]), signal.SIGKILL)

    for _attempt in range(5):  # a poll that missed the first tenth: again
        proc = _start("export", db, "-j", "2", "-o", target)
        caught = _act_while(proc, writing, kill_a_worker)
        returncode, _, err = _finish(proc)
        if caught:
            break
        assert returncode == 0, err.decode()
        target.unlink()
    else:
        pytest.fail("the export was never seen writing its first tenth")

    assert returncode == 74, err.decode()
    partial = tmp_path / "out.jsonl.partial"
    got = _records(partial.read_bytes())
    assert got == expected[: len(got)]
    assert list(tmp_path.glob(".out.jsonl.*")) == []


def test_sighup_stops_an_export_to_a_file_and_cleans_up(
    ldb_db: tuple[Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    db, expected = ldb_db
    out = tmp_path / "out"
    out.mkdir()
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    target = out / "all.jsonl"
    proc = _start(
        "export", db, "-o", target, "--rate", "10000",  # 10 s: the stop lands mid-run
        env={"TMPDIR": str(private_tmp)},
    )  # fmt: skip

    def writing() -> bool:
        return any(p.stat().st_size > 0 for p in out.glob(".all.jsonl.*.tmp"))

    _wait_for(writing, "the temporary output file", proc)
    _signal_taken(proc, signal.SIGHUP)
    returncode, _, err = _finish(proc)

    assert returncode == 129, err.decode()
    assert "interrupted by SIGHUP" in err.decode()
    # The records so far and (since the `outputs` work) the cursor beside them; no temp file.
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    assert (out / "all.jsonl.partial").exists()
    assert list(private_tmp.iterdir()) == []
    got = _records((out / "all.jsonl.partial").read_bytes())
    assert 0 < len(got) < RECORDS
    rest = run_kvtool("export", db, "--after", _cursor(err))
    assert got + _records(rest.stdout) == expected


# -- closed pipes ---------------------------------------------------------------------------------
def _closed_stdout(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    """Run kvtool with a stdout pipe whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [kvtool_executable(), *map(str, args)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [
        ["export", "{db}", "-j", "1"],
        ["export", "{db}", "-j", "2"],
        ["export", "{db}", "--format", "csv"],
        ["diff", "{db}", "{other}"],
        ["diff", "{db}", "{other}", "--keys-only"],
        ["scan", "{db}"],
        ["scan", "{db}", "--format", "jsonl", "--page-size", "5000"],
        ["count", "{db}"],
        ["info", "{db}"],
        ["get", "{db}", "key:000000000007"],
        ["cf", "list", "{db}"],
        ["verify", "-q", "--digest", "{db}"],
        ["--help"],
    ],
    ids=" ".join,
)
def test_a_closed_pipe_is_quiet_for_every_command(
    ldb_db: tuple[Path, list[tuple[str, str]]], tmp_path_factory: pytest.TempPathFactory,
    args: list[str],
) -> None:  # fmt: skip
    db, _ = ldb_db
    other = tmp_path_factory.getbasetemp() / "other.db"
    if not other.exists():
        ldb = require_tool("ldb")
        text = b"".join(b"key:%012d ==> other\n" % i for i in range(0, RECORDS, 3))
        subprocess.run(
            [ldb, f"--db={other}", "--create_if_missing", "load"], input=text, check=True
        )
    result = _closed_stdout(*(a.format(db=db, other=other) for a in args))
    assert (result.returncode, result.stderr.decode()) == (0, "")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_export_into_head_is_quiet(
    ldb_db: tuple[Path, list[tuple[str, str]]], workers: str
) -> None:
    db, expected = ldb_db
    proc = _start("export", db, "-j", workers)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err.decode()) == (0, "")
    assert _records(first) == expected[:1]


# -- import ---------------------------------------------------------------------------------------
def _stored(db: Path, cf: str | None = None) -> list[tuple[bytes, bytes]]:
    """The records of `db` (one column family) as plain `ldb` 7.8, its writer, reads them."""
    return ldb_scan(db, *([f"--column_family={cf}"] if cf is not None else []))


def _ldb_db_with_cf(path: Path, cf: str) -> Path:
    ldb = require_tool("ldb")
    subprocess.run(
        [ldb, f"--db={path}", "--create_if_missing", "put", "kept", "by-ldb"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [ldb, f"--db={path}", "create_column_family", cf], check=True, capture_output=True
    )
    return path


IMPORT_RECORDS = [(b"\x00k%07d" % i, b"\xffvalue %d" % i) for i in range(200_000)]


def _import_lines() -> list[bytes]:
    return [
        b'{"key":"%s","value":"%s"}\n' % (k.hex().encode(), base64.b64encode(v))
        for k, v in IMPORT_RECORDS
    ]


def _open_fifo(path: Path, proc: subprocess.Popen[bytes]) -> BinaryIO:
    """The writing end of the FIFO `path`, once kvtool has opened it to read (a plain open would
    wait for ever if kvtool ended before opening it)."""

    def opened() -> bool:
        try:
            fds.append(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as exc:  # ENXIO: no reader yet
            assert exc.errno == errno.ENXIO, exc
            return False
        return True

    fds: list[int] = []
    _wait_for(opened, f"kvtool to open {path.name}", proc)
    os.set_blocking(fds[0], True)
    return os.fdopen(fds[0], "wb")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_an_interrupted_import_says_what_is_committed_and_how_to_resume(
    tmp_path: Path, sig: signal.Signals, gz: bool
) -> None:
    """FILE is a FIFO the test holds open with three quarters of the lines written: kvtool
    commits batches and then waits for more, so the signal lands mid-run for certain. Then FILE
    becomes the whole file, and the printed resume command runs as printed."""
    db = _ldb_db_with_cf(tmp_path / "db", "events")
    lines = _import_lines()
    source = tmp_path / ("in.jsonl.gz" if gz else "in.jsonl")
    os.mkfifo(source)
    proc = _start(
        "import", "--cf", "events", "--key-format", "hex", "--value-format", "base64",
        "--batch-records", "500", db, source,
    )  # fmt: skip
    head = b"".join(lines[: len(lines) * 3 // 4])
    if gz:  # a sync flush: kvtool can decompress everything sent so far
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        head = packer.compress(head) + packer.flush(zlib.Z_SYNC_FLUSH)
    with _open_fifo(source, proc) as fifo:
        fifo.write(head)
        fifo.flush()
        # Stop it once it has committed a good part: the WAL grows with each batch.
        _wait_for(
            lambda: sum(p.stat().st_size for p in db.glob("*.log")) > 2_000_000,
            "a few batches",
            proc,
        )
        proc.send_signal(sig)
        returncode, _, err = _finish(proc)

    code = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}[sig]
    message = err.decode()
    assert returncode == code, message
    assert message.count("\n") == 1 and message.startswith("kvtool: error: interrupted")
    assert "already consumed" not in message
    match = re.search(r"committed (\d+) records from lines 1-(\d+)", message)
    assert match, message
    committed = int(match.group(1))
    assert int(match.group(2)) == committed
    stored = _stored(db, "events")
    assert stored == sorted(IMPORT_RECORDS[:committed])  # exactly what the message says
    assert _stored(db) == [(b"kept", b"by-ldb")]
    resume = re.search(r"resume from line \d+: (.*)\)$", message.strip())
    assert resume, message
    command = resume.group(1)
    assert ("zcat " in command) == gz
    assert "--cf events" in command and "--key-format hex" in command
    assert "--value-format base64" in command
    # The advice runs as printed: `kvtool` on PATH is the installed console script.
    source.unlink()
    data = b"".join(lines)
    source.write_bytes(gzip.compress(data, compresslevel=1) if gz else data)
    done = subprocess.run(["bash", "-c", command], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert _stored(db, "events") == sorted(IMPORT_RECORDS)
    assert _stored(db) == [(b"kept", b"by-ldb")]


def test_keyboard_interrupt_in_library_use_is_a_clean_stop(tmp_path: Path) -> None:
    from kvtool.errors import StoppedError
    from kvtool.formats.records import FieldFormat
    from kvtool.ops.importer import ImportOptions, import_records

    db = _ldb_db_with_cf(tmp_path / "db", "events")
    lines = _import_lines()[:5000]

    def stream() -> Iterator[bytes]:
        yield from lines[:2345]
        raise KeyboardInterrupt

    with pytest.raises(StoppedError) as stopped:
        import_records(
            db,
            stream(),  # type: ignore[arg-type]
            ImportOptions(
                key_format=FieldFormat.HEX,
                value_format=FieldFormat.BASE64,
                cf="events",
                batch_records=1000,
            ),
        )
    assert stopped.value.exit_code == 130
    assert "committed 2000 records from lines 1-2000" in str(stopped.value)
    assert _stored(db, "events") == sorted(IMPORT_RECORDS[:2000])


def test_sst_mode_interrupted_tells_the_truth_about_the_ingest(tmp_path: Path) -> None:
    """A signal while the SST file exists in the work directory (written, or being ingested:
    a moved file leaves it when the ingest succeeds) lands there for certain (`_act_while`);
    the message says which of nothing or everything was imported, and the database agrees."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(_import_lines()))
    for attempt in range(5):  # the SST phase lasts a good part of a second: a poll rarely misses
        work = tmp_path / f"work{attempt}"
        work.mkdir()
        db = _ldb_db_with_cf(tmp_path / f"db{attempt}", "events")
        proc = _start(
            "import", "--mode", "sst", "--key-format", "hex", "--value-format", "base64",
            "--tmp-dir", work, db, source,
        )  # fmt: skip

        def sst_written(work: Path = work) -> bool:
            return any(work.glob("kvtool-import-*/import-00000.sst"))

        caught = _act_while(proc, sst_written, functools.partial(proc.send_signal, signal.SIGINT))
        returncode, _, err = _finish(proc)
        if caught:
            break
        assert returncode == 0, err.decode()
    else:
        pytest.fail("the SST file was never seen")

    stored = _stored(db)
    message = err.decode()
    assert returncode == 130, message
    assert message.count("\n") == 1
    if "nothing was imported" in message:
        assert stored == [(b"kept", b"by-ldb")]
    else:
        assert f"all {len(IMPORT_RECORDS)} records" in message
        assert len(stored) == len(IMPORT_RECORDS) + 1
    assert list(work.iterdir()) == []


def test_sst_work_dirs_of_killed_runs_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    db = _ldb_db_with_cf(tmp_path / "db", "events")
    # Sorted runs spill at 64 KB; stdin stays open, so the run is still reading when killed.
    proc = _start(
        "import", "--mode", "sst", "--sort-memory", "64KB", "--key-format", "hex",
        "--value-format", "base64", db, "-", stdin=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(b"".join(_import_lines()[:5000]))
    proc.stdin.flush()
    _wait_for(lambda: any(tmp_path.glob("kvtool-import-*/run-*")), "a sorted run", proc)
    proc.kill()  # SIGKILL: no code runs, the directory stays
    proc.communicate(timeout=60)
    left = list(tmp_path.glob("kvtool-import-*"))
    assert len(left) == 1 and left[0].name.startswith(f"kvtool-import-{proc.pid}@")
    host = socket.gethostname()
    live = tmp_path / f"kvtool-import-{os.getpid()}@{host}.inuse123"  # this test is alive
    elsewhere = tmp_path / f"kvtool-import-{proc.pid}@not-{host}.other12"
    unnamed = tmp_path / "kvtool-import-abcd1234"  # an older run's: owner unknown
    for path in (live, elsewhere, unnamed):
        path.mkdir()

    again = run_kvtool("import", "--mode", "sst", db, "-", input=b'{"key":"a","value":"b"}\n')

    assert again.returncode == 0, again.stderr.decode()
    assert sorted(tmp_path.glob("kvtool-import-*")) == sorted([live, elsewhere, unnamed])
    for path in (live, elsewhere, unnamed):
        shutil.rmtree(path)


# -- checkpoint -----------------------------------------------------------------------------------
def _holds(proc: subprocess.Popen[bytes], path: Path) -> bool:
    """Whether the process has `path` open (RocksDB keeps the database's LOCK file open from the
    open to the close)."""
    for fd in Path(f"/proc/{proc.pid}/fd").glob("*"):
        with contextlib.suppress(OSError):  # closed meanwhile
            if os.readlink(fd) == str(path):
                return True
    return False


def test_an_interrupted_checkpoint_is_complete_or_absent(
    ldb_db: tuple[Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    """On another filesystem (tmpfs) RocksDB copies the files (DEST.tmp is its work directory
    while the one native call runs, which a signal cannot cut short). The signal lands while
    kvtool holds the database open, for certain (`_act_while`); before that, kvtool's work is
    done and the signal would stop its exit instead. Stopped before the copy, nothing is left;
    stopped inside it (the copy of these 2 MB takes a millisecond or two), the whole copy is
    kept and said to be kept."""
    source, expected = ldb_db
    db = tmp_path / "db"
    shutil.copytree(source, db)
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem")
    dest = shm / f"kvtool-test-{os.getpid()}"
    work = dest.with_name(dest.name + ".tmp")
    try:
        for _attempt in range(10):  # the open takes tens of milliseconds: a poll rarely misses
            proc = _start("checkpoint", db, dest)
            holds = functools.partial(_holds, proc, db / "LOCK")
            caught = _act_while(proc, holds, functools.partial(proc.send_signal, signal.SIGINT))
            returncode, _, err = _finish(proc)
            if caught:
                break
            assert returncode == 0, err.decode()
            shutil.rmtree(dest)
        else:
            pytest.fail("kvtool was never seen holding the database open")
        assert not work.exists()
        if returncode == 130:
            assert not dest.exists(), err.decode()
        else:
            assert returncode == 0, err.decode()
            assert "while the checkpoint was being written; it is complete" in err.decode()
            copy = run_kvtool("export", dest)
            assert _records(copy.stdout) == expected
    finally:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def test_a_signal_before_the_checkpoint_copy_leaves_nothing(
    ldb_db: tuple[Path, list[tuple[str, str]]],
    tmp_path: Path,
    writer_process: Callable[[Path], subprocess.Popen[str]],
) -> None:
    """Stopped while it waits for the owner's lock (blocked: the stop lands there for certain),
    a checkpoint exits 130 and leaves neither DEST nor RocksDB's DEST.tmp."""
    source, _ = ldb_db
    db = tmp_path / "db"
    shutil.copytree(source, db)
    writer_process(db)
    dest = tmp_path / "copy"
    proc = _start("checkpoint", "--wait-lock", "60s", db, dest)
    assert proc.stderr is not None
    assert "waiting up to 60s for the lock" in proc.stderr.readline().decode()
    proc.send_signal(signal.SIGINT)
    returncode, _, err = _finish(proc)
    assert returncode == 130, err.decode()
    assert err.decode().strip().endswith("kvtool: error: interrupted")
    assert not dest.exists() and not dest.with_name("copy.tmp").exists()


if sys.platform != "linux":  # /proc, FIONREAD on pipes, F_GETPIPE_SZ
    pytestmark = pytest.mark.skip(reason="Linux only")


# -- mending a batch a dead worker cut ------------------------------------------------------------
@pytest.mark.parametrize("written", [-1, 0, 100])
def test_a_cut_batch_is_mended_on_a_pipe_and_reported_when_it_cannot_be(
    ldb_db: tuple[Path, list[tuple[str, str]]], written: int
) -> None:
    """The parent's side of a worker killed mid-write (`written` bytes of its batch went out; -1:
    the kernel's count was not available): the rest of the batch follows, or the cut is reported."""
    from kvtool.engine import Bounds, OpenMode, open_db
    from kvtool.formats.writers import renderer
    from kvtool.ops.export_parallel import ParallelResult, _mend, _Torn
    from kvtool.stream import ReadSpec, ScanStats

    db, expected = ldb_db
    render = renderer("jsonl")
    with open_db(db, OpenMode.READ_ONLY) as handle:
        sequence = handle.sequence_number()
        with handle.iterator() as it:
            it.seek_to_first()
            batch = it.read_batch(1024)
    data = render(batch)
    result = ParallelResult(stats=ScanStats(), output_bytes=0, plan=[Bounds()])
    result.sequence = sequence
    result.torn = _Torn(0, batch[0][0], len(batch), len(data), written)
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, F_GETPIPE_SZ - 1, 1 << 20)  # F_SETPIPE_SZ: room for the batch
        os.set_blocking(read_end, False)
        _mend(db, ReadSpec(), render, write_end, None, result)
        try:
            mended = os.read(read_end, 1 << 20)
        except BlockingIOError:
            mended = b""
    finally:
        os.close(read_end)
        os.close(write_end)
    if written < 0:
        assert (result.cut, mended) == (True, b"")
    elif written == 0:
        assert (result.cut, mended) == (False, b"")
    else:
        assert result.cut is False
        assert mended == data[written:]
        assert result.stats.records == 1024 and result.stats.last_key == batch[-1][0]
        assert _records(data[:written] + mended) == expected[:1024]


def test_a_cut_batch_in_a_regular_file_is_cut_back(
    ldb_db: tuple[Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    from kvtool.engine import Bounds
    from kvtool.formats.writers import renderer
    from kvtool.ops.export_parallel import ParallelResult, _mend, _Torn
    from kvtool.stream import ReadSpec, ScanStats

    db, _ = ldb_db
    out = tmp_path / "out"
    with out.open("wb") as f:
        f.write(b"head\n" + b'{"key":"whole"}\n' + b'{"key":"cu')
        f.flush()
        result = ParallelResult(stats=ScanStats(), output_bytes=16, plan=[Bounds()])
        result.torn = _Torn(0, b"k", 1, 20, 10)
        _mend(db, ReadSpec(), renderer("jsonl"), f.fileno(), 5, result)
        f.write(b"next\n")  # the offset follows the cut
    assert out.read_bytes() == b'head\n{"key":"whole"}\nnext\n'
    assert result.cut is False
