"""Exit codes and cursors as scripts expect them: `count` and `diff` stopped by --timeout, SIGINT
or SIGTERM print a cursor that resumes exactly (with range workers and without), `diff` exits 1
when the databases differ, `scan -q` keeps its `next:` line, `get` of a missing key exits 1.

The databases are written by `ldb` (RocksDB 7.8) in several SST files (so range workers split
the range into chunks), and `ldb scan` is the oracle. Every stop lands mid-run by construction:
--timeout runs are paced (--rate) so that the range needs several times the timeout; a signal
goes to a count paced to need a minute, once its first iterator is open, and to a diff blocked
on a full pipe, once its first output line has arrived (the rest does not fit in the pipe).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import kvtool_executable, run_kvtool, run_stopped_by_deadline
from .oracles import Record, ldb_load, ldb_scan

FILES = 16  # SST files, one per `ldb load`: range workers get a chunk of each
PER_FILE = 300
RECORDS = FILES * PER_FILE
# --timeout runs: the whole range takes 16 s at RATE; the timeout stops it after 2 s, time enough
# for range workers to start and count something under a loaded CI machine (and longer at a
# slower rate when even that was not: conftest.run_stopped_by_deadline).
RATE = 300
TIMEOUT = 2
SLOW = "40"  # signalled counts: two minutes for the whole range; each step is one record


def _key(i: int) -> bytes:
    return b"key:%06d" % i


def _value(i: int) -> bytes:
    return b"%06d" % i * 16  # 96 bytes: a diff's first 1024 lines overfill a pipe


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A: RECORDS records in FILES SST files; B: a third of A's removed, a fifth changed, and
    some added; both loaded by `ldb`, one file per load."""
    root = tmp_path_factory.mktemp("cursors")
    a, b = root / "a.db", root / "b.db"
    for f in range(FILES):
        part = range(f * PER_FILE, (f + 1) * PER_FILE)
        ldb_load(a, [(_key(i), _value(i)) for i in part])
        kept = [(_key(i), b"changed" if i % 5 == 0 else _value(i)) for i in part if i % 3]
        added = [(_key(i) + b"+", b"new") for i in part if i % 7 == 0]
        ldb_load(b, sorted(kept + added))
    return a, b


@pytest.fixture(scope="module")
def oracle(dbs: tuple[Path, Path]) -> tuple[list[Record], list[dict[str, str]]]:
    """A's records as `ldb scan` reads them, and the differences of A and B computed from what
    `ldb scan` reads of each (in key order, as kvtool diff prints them)."""
    a, b = dbs
    in_a, in_b = dict(ldb_scan(a)), dict(ldb_scan(b))
    assert len(in_a) == RECORDS
    ops: list[dict[str, str]] = []
    for key in sorted(in_a.keys() | in_b.keys()):
        k = key.decode()
        if key not in in_b:
            ops.append({"op": "removed", "key": k, "value": in_a[key].decode()})
        elif key not in in_a:
            ops.append({"op": "added", "key": k, "value": in_b[key].decode()})
        elif in_a[key] != in_b[key]:
            ops.append(
                {"op": "changed", "key": k, "old": in_a[key].decode(), "new": in_b[key].decode()}
            )
    return sorted(ldb_scan(a)), ops


def _cursor(stderr: bytes) -> str:
    """The cursor of the error line (the last line; a stats line before it quotes it too)."""
    match = re.search(rb"resume with --after (kv2\.[A-Za-z0-9_-]+)", stderr.splitlines()[-1])
    assert match, stderr.decode()
    return match.group(1).decode()


def _counted(stderr: bytes) -> int:
    match = re.search(rb"after counting (\d+) records", stderr)
    assert match, stderr.decode()
    return int(match.group(1))


def _diff_ops(stdout: bytes) -> list[dict[str, Any]]:
    assert not stdout or stdout.endswith(b"\n"), stdout[-80:]
    return [json.loads(line) for line in stdout.splitlines()]


def _start(*args: str | Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [kvtool_executable(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _signal_once_counting(proc: subprocess.Popen[bytes], sig: signal.Signals, workers: int) -> None:
    """Send `sig` once each of the `workers` processes of a count holds an open iterator
    (`--trace-handles` logs each open and release on stderr): then each has taken the first
    step of its part, which a count takes before it looks for a stop, and, paced, is far from
    done. (Range workers also open and release an iterator for an empty first chunk.)"""
    assert proc.stderr is not None
    seen = b""
    # Counted in all that was read: two workers' lines may interleave (each message is whole).
    while seen.count(b"handle open iterator") - seen.count(b"handle release iterator") < workers:
        line = proc.stderr.readline()
        assert line, seen.decode()  # the run ended before it counted
        seen += line
    proc.send_signal(sig)


# -- count ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("workers", "reverse"),
    [("1", []), ("2", ["--reverse"])],
    ids=["one-process", "workers-reverse"],
)
def test_count_stopped_by_timeout_resumes_to_the_whole(
    dbs: tuple[Path, Path],
    oracle: tuple[list[Record], list[dict[str, str]]],
    tmp_path: Path,
    workers: str,
    reverse: list[str],
) -> None:
    a, _ = dbs
    stats = tmp_path / "count.json"
    args = ["-j", workers, *reverse]
    first = run_stopped_by_deadline(
        "count", a, *args, "--stats-file", stats, rate=RATE, timeout=TIMEOUT
    )
    assert first.returncode == 124, first.stderr
    assert first.stdout == b""  # a partial count is not the answer
    part = _counted(first.stderr)
    assert 0 < part < RECORDS
    saved = json.loads(stats.read_text())
    assert saved["cursor"] == _cursor(first.stderr) and saved["count"] == part
    rest = run_kvtool("count", a, *args, "--after", f"@{stats}")
    assert rest.returncode == 0, rest.stderr
    assert part + int(rest.stdout) == len(oracle[0]) == RECORDS
    if workers != "1":
        return
    # The cursor is the scan's: export after it gives exactly the records not counted.
    exported = run_kvtool("export", a, *reverse, "--after", _cursor(first.stderr), "--keys-only")
    assert exported.returncode == 0, exported.stderr
    keys = [json.loads(line)["key"].encode() for line in exported.stdout.splitlines()]
    expected = [k for k, _ in oracle[0]]
    assert keys == (expected[::-1][part:] if reverse else expected[part:])


@pytest.mark.parametrize(
    ("workers", "sig"),
    [("1", signal.SIGTERM), ("2", signal.SIGINT)],
    ids=["one-process-SIGTERM", "workers-SIGINT"],
)
def test_count_stopped_by_a_signal_resumes_to_the_whole(
    dbs: tuple[Path, Path], tmp_path: Path, workers: str, sig: signal.Signals
) -> None:
    a, _ = dbs
    stats = tmp_path / "count.json"
    proc = _start(
        "--trace-handles", "count", a, "-j", workers, "--rate", SLOW, "--stats-file", stats
    )
    _signal_once_counting(proc, sig, int(workers))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err.decode()
    assert out == b""
    part = _counted(err)
    assert json.loads(stats.read_text())["cursor"] == _cursor(err)
    rest = run_kvtool("count", a, "-j", workers, "--after", _cursor(err))
    assert rest.returncode == 0, rest.stderr
    assert part + int(rest.stdout) == RECORDS


def test_count_after_a_scan_cursor_counts_the_rest_of_its_range(dbs: tuple[Path, Path]) -> None:
    a, _ = dbs
    workers = "2"
    page = run_kvtool("scan", a, "-q", "-n", "5", "--reverse")
    cursor = page.stderr.decode().split()[-1]
    rest = run_kvtool("count", a, "--reverse", "--after", cursor, "-j", workers)
    assert (rest.returncode, rest.stdout) == (0, b"%d\n" % (RECORDS - 5)), rest.stderr
    other = run_kvtool("count", a, "--after", cursor, "-j", workers)  # not --reverse
    assert other.returncode == 2 and b"reverse" in other.stderr, other.stderr


# -- diff -----------------------------------------------------------------------------------------
def test_diff_exits_1_when_the_databases_differ_and_0_when_not(
    dbs: tuple[Path, Path], oracle: tuple[list[Record], list[dict[str, str]]]
) -> None:
    a, b = dbs
    differ = run_kvtool("diff", a, b, "--stats", "json")
    assert differ.returncode == 1, differ.stderr
    assert b"kvtool: error" not in differ.stderr  # differences are the answer, not an error
    assert json.loads(differ.stderr)["cursor"] is None
    assert _diff_ops(differ.stdout) == oracle[1]
    quiet = run_kvtool("diff", a, b, "-q", "--keys-only")
    assert (quiet.returncode, quiet.stderr) == (1, b"")
    # Only what is in the range counts: no difference there is 0.
    same = run_kvtool("diff", a, b, "-q", "--prefix", "key:000001")
    assert (same.returncode, same.stdout, same.stderr) == (0, b"", b"")
    missing = run_kvtool("diff", a, a.parent / "nope", "-q")
    assert missing.returncode == 66, missing.stderr


def test_diff_stopped_by_timeout_resumes_exactly(
    dbs: tuple[Path, Path], oracle: tuple[list[Record], list[dict[str, str]]], tmp_path: Path
) -> None:
    a, b = dbs
    stats = tmp_path / "diff.json"
    first = run_stopped_by_deadline(
        "diff", a, b, "--stats-file", stats, "-q", rate=RATE, timeout=TIMEOUT
    )
    assert first.returncode == 124, first.stderr
    cursor = _cursor(first.stderr)
    assert json.loads(stats.read_text())["cursor"] == cursor
    got = _diff_ops(first.stdout)
    assert 0 < len(got) < len(oracle[1])
    before = json.loads(stats.read_text())
    rest = run_kvtool("diff", a, b, "--after", f"@{stats}", "-q", "--stats-file", stats)
    assert rest.returncode == 1, rest.stderr  # the rest differs too
    assert got + _diff_ops(rest.stdout) == oracle[1]
    # Each record of A is compared once: in the stopped run or in the rest.
    assert before["records_a"] + json.loads(stats.read_text())["records_a"] == RECORDS


def test_diff_stopped_by_a_signal_resumes_exactly(
    dbs: tuple[Path, Path], oracle: tuple[list[Record], list[dict[str, str]]]
) -> None:
    a, b = dbs
    sig = signal.SIGTERM
    proc = _start("diff", a, b, "--reverse", "--stats", "json")
    assert proc.stdout is not None
    # The merge loop is writing its first 1024 lines (well over a pipe's 64 KiB) and waits for
    # this reader: it cannot be done when the signal comes.
    first = proc.stdout.readline()
    assert first
    proc.send_signal(sig)
    out = proc.stdout.read()  # (communicate() would skip what readline() buffered)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err.decode()
    lines = err.decode().splitlines()
    assert json.loads(lines[-2])["cursor"] == _cursor(err)  # the stats, then the error line
    got = _diff_ops(first + out)
    assert 0 < len(got) < len(oracle[1])
    rest = run_kvtool("diff", a, b, "--reverse", "--after", _cursor(err), "-q")
    assert rest.returncode == 1, rest.stderr
    assert got + _diff_ops(rest.stdout) == oracle[1][::-1]


# -- scan -q and get ------------------------------------------------------------------------------
def test_scan_quiet_keeps_the_next_line(dbs: tuple[Path, Path]) -> None:
    a, _ = dbs
    page = run_kvtool("scan", a, "-q", "-n", "2", "--format", "jsonl", "--prefix", "key:00000")
    assert page.returncode == 0, page.stderr
    assert [json.loads(line)["key"] for line in page.stdout.splitlines()] == [
        "key:000000",
        "key:000001",
    ]
    (line,) = page.stderr.decode().splitlines()
    assert line.startswith("next: kvtool scan ") and " --after kv2." in line, line
    cursor = line.rsplit(" ", 1)[1]
    last = run_kvtool(
        "scan", a, "-q", "-n", "8", "--format", "jsonl", "--prefix", "key:00000", "--after", cursor
    )
    assert last.returncode == 0, last.stderr
    assert len(last.stdout.splitlines()) == 8  # key:000002 .. key:000009, the end of the range
    assert last.stderr == b""  # the end-of-range note is what -q drops


def test_get_of_a_missing_key_exits_1(dbs: tuple[Path, Path]) -> None:
    a, _ = dbs
    result = run_kvtool("get", a, "key:999999")
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr == b"kvtool: error: key not found: key:999999\n"
