"""Exact `du` on range workers (`--workers 2`): the report equals one process's field by field and
what the writer (RocksDB 6.14) reads, on several column families cut into several chunks; a
stop signal or a killed worker ends with the table's exit code, one line and no report; a live
writer's changes between the workers' opens make du read in one process."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kvtool.ops.du import Accumulator, CfUsage, Grouping, largest_first
from kvtool.ops.du_exact import merge

from .conftest import kvtool_executable, run_kvtool
from .oracles import Record, rocksdb614

CFS = ["default", "empty", "users"]  # as RocksDB lists them
RUN = 10_000  # records of each SST file of `default`


@pytest.fixture(scope="module")
def db614(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RocksDB 6.14: three L0 files in `default` (one key prefix each: a chunk each), two in
    `users`, none in `empty`; value sizes repeat (ties among the largest records across
    chunks); the largest record only in the WAL."""
    path = tmp_path_factory.mktemp("duw") / "614.db"
    rocksdb614(
        """
        path, n = sys.argv[1], int(sys.argv[2])
        spec = {"column_families": ["users", "empty"]}
        def value(i):
            return b"v" * ((i * 37) % 500)
        for run, prefix in enumerate([b"cart", b"order", b"session"]):
            db = open_db(path, spec)
            users = db.get_column_family(b"users")
            batch = rocksdb.WriteBatch()
            for i in range(n):
                batch.put(b"%s:%07d" % (prefix, i), value(i + run))
                if run < 2:
                    batch.put((users, b"u%d:%06d" % (run, i)), value(3 * i))
            db.write(batch)
            db.close()  # the next open's recovery flushes this run into an L0 file
        db = open_db(path, spec)
        db.put(b"wal:1", b"w" * 600)
        db.close()
        """,
        path,
        str(RUN),
    )
    return path


def du_json(db: Path, *args: str) -> dict[str, Any]:
    result = run_kvtool("du", "--json", "--key-format", "hex", *args, db)
    assert result.returncode == 0, result.stderr.decode()
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def writer_report(records: list[Record], top: int) -> dict[str, Any]:
    """What du's exact report says of one column family, from the writer's records."""
    groups: dict[bytes, list[int]] = {}
    sizes: dict[int, int] = {}
    for key, value in records:
        g = groups.setdefault(key[: key.find(b":") + 1] or key, [0, 0])
        g[0] += 1
        g[1] += len(key) + len(value)
        sizes[len(value).bit_length()] = sizes.get(len(value).bit_length(), 0) + 1
    largest = sorted(records, key=lambda r: (-len(r[0]) - len(r[1]), r[0]))[:top]
    return {
        "records": len(records),
        "bytes": sum(len(k) + len(v) for k, v in records),
        "prefixes": {g.hex(): v for g, v in groups.items()},
        "value_sizes": [sizes[b] for b in sorted(sizes)],
        "largest": [(k.hex(), len(k) + len(v)) for k, v in largest],
    }


def report_of(cf: dict[str, Any]) -> dict[str, Any]:
    return {
        "records": cf["records"],
        "bytes": cf["bytes"],
        "prefixes": {p["prefix"]: [p["records"], p["bytes"]] for p in cf["prefixes"]},
        "value_sizes": [v["records"] for v in cf["value_sizes"]],
        "largest": [(r["key"], r["bytes"]) for r in cf["largest"]],
    }


def test_workers_report_what_one_process_the_writer_count_and_export_read(db614: Path) -> None:
    one = du_json(db614, "-j", "1", "--top", "25", "--groups", "100")
    two = du_json(db614, "-j", "2", "--top", "25", "--groups", "100")
    assert two == one
    assert [cf["name"] for cf in two["column_families"]] == CFS
    writer = writer_records(db614)
    for cf in two["column_families"]:
        assert report_of(cf) == writer_report(writer[cf["name"]], 25), cf["name"]
        if cf["name"] == "empty":
            continue
        count = run_kvtool("count", db614, "--cf", cf["name"])
        assert int(count.stdout) == cf["records"]
        hexes = ("--key-format", "hex", "--value-format", "hex", "-q")
        export = run_kvtool("export", db614, "--cf", cf["name"], *hexes)
        rows = [json.loads(line) for line in export.stdout.splitlines()]
        assert len(rows) == cf["records"]
        assert sum(len(r["key"]) + len(r["value"]) for r in rows) // 2 == cf["bytes"]
    # The same through the library: the workers' run did not fall back to one process, and
    # cut the column families into several chunks.
    out = subprocess.run(
        [sys.executable, "-c", _LIBRARY, str(db614)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    chunks, same = json.loads(out.stdout)
    assert chunks >= 8 and same


def writer_records(db: Path) -> dict[str, list[Record]]:
    """Every record of each column family as RocksDB 6.14 reads it (read-only: it writes
    nothing)."""
    out = rocksdb614(
        """
        db = open_db(sys.argv[1], {"column_families": ["users", "empty"]}, read_only=True)
        out = {}
        for name in ["default", "users", "empty"]:
            it = db.iteritems(db.get_column_family(name.encode())) if name != "default" else (
                db.iteritems())
            it.seek_to_first()
            out[name] = [[k[1].hex() if isinstance(k, tuple) else k.hex(), v.hex()]
                         for k, v in it]
        print(json.dumps(out))
        """,
        db,
    )
    return {
        name: [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in rows]
        for name, rows in json.loads(out).items()
    }


_LIBRARY = """
import json, sys
from pathlib import Path
from kvtool.engine import OpenMode, open_db
from kvtool.ops.du import Grouping, usage_dict
from kvtool.ops.du_exact import UsageTally, _one_process, parallel_usage
from kvtool.stream import Stopper

db, grouping = Path(sys.argv[1]), Grouping()
with Stopper() as stopper:
    two = parallel_usage(db, grouping, None, 7, 2, stopper, None)
    one = _one_process(db, grouping, None, 7, stopper, None)
with open_db(db, OpenMode.READ_ONLY) as handle:
    chunks = len(UsageTally(None, grouping, 7).plan(handle))
assert two is not None, "the workers fell back to one process"
print(json.dumps([chunks, [vars(u) for u in two] == [vars(u) for u in one]], default=str))
"""


def test_an_unknown_column_family_is_a_usage_error_with_workers(db614: Path) -> None:
    result = run_kvtool("du", db614, "-j", "2", "--cf", "nope")
    assert result.returncode == 2, result.stderr
    assert result.stderr == b"kvtool: error: no column family 'nope'\n"


def test_a_corrupt_block_is_exit_74_in_a_worker_as_in_one_process(
    db614: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "corrupt.db"
    shutil.copytree(db614, copy)
    sst = max(copy.glob("*.sst"), key=lambda p: p.stat().st_size)
    data = bytearray(sst.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    sst.write_bytes(bytes(data))
    errors = []
    for workers in ("1", "2"):
        result = run_kvtool("du", copy, "-j", workers)
        assert result.returncode == 74, result.stderr
        assert result.stdout == b""
        errors.append(result.stderr)
    assert errors[0] == errors[1]  # the file and offset, from the worker that read it
    assert errors[0].startswith(b"kvtool: error: ") and errors[0].count(b"\n") == 1


def test_largest_records_merge_to_one_runs_in_any_chunking() -> None:
    """Ties everywhere (12 sizes among 5,000 records): the partials of any cut of the records,
    merged, give exactly the one-run result, which is the first `top` by (bytes desc, key)."""
    rng = random.Random(5)
    records = sorted((b"k%05d" % i, b"v" * rng.randrange(12)) for i in range(5000))
    grouping = Grouping(depth=3).function()

    def usage_of(part: list[Record]) -> CfUsage:
        usage = CfUsage("default")
        acc = Accumulator(usage, grouping, 40)
        for at in range(0, len(part), 97):
            acc.add(part[at : at + 97])
        acc.finish()
        return usage

    whole = usage_of(records)
    expected = sorted(((len(k) + len(v), k, len(v)) for k, v in records), key=largest_first)
    assert whole.largest == expected[:40]
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(records)), 6))
        merged = CfUsage("default")
        for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True):
            part = usage_of(records[a:b])
            groups = {p: (g.records, g.key_bytes, g.value_bytes) for p, g in part.groups.items()}
            merge(merged, (0, groups, part.value_sizes, part.largest))
        merged.largest = sorted(merged.largest, key=largest_first)[:40]
        assert merged.largest == whole.largest
        assert merged.groups == whole.groups and merged.value_sizes == whole.value_sizes


# -- stops ----------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _has_sst_open(pid: int) -> bool:
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
        return any(os.readlink(fd).endswith(".sst") for fd in fds)
    except OSError:
        return False


def _stopped_mid_run(
    db: Path, workers: str, ready: Callable[[int], bool], act: Callable[[int], None]
) -> tuple[int, bytes, bytes]:
    """Run `du DB -j WORKERS`, freeze it (SIGSTOP) as soon as `ready(pid)` holds, check that it
    still holds (the run is not over: it is frozen inside its read), `act(pid)`, and let it go
    on. A poll that missed the run (it ended first) tries again, a few times."""
    for _attempt in range(5):
        proc = subprocess.Popen(
            [kvtool_executable(), "du", "--json", "-j", workers, str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        caught = False
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if ready(proc.pid):
                os.kill(proc.pid, signal.SIGSTOP)
                caught = ready(proc.pid)
                if caught:
                    act(proc.pid)
                os.kill(proc.pid, signal.SIGCONT)
                break
            time.sleep(0.001)
        out, err = proc.communicate(timeout=60)
        if caught:
            return proc.returncode, out, err
        assert proc.returncode == 0, err
    pytest.fail("du was never caught before its end")


@pytest.mark.parametrize(
    ("workers", "sig"), [("2", signal.SIGINT), ("2", signal.SIGTERM), ("1", signal.SIGINT)]
)
def test_a_stop_signal_ends_du_with_its_code_and_no_report(
    db614: Path, workers: str, sig: signal.Signals
) -> None:
    """Frozen while its workers exist (not reaped: inside the run) or while the database is
    open, du gets the signal; it must not print the report it could not finish."""

    def ready(pid: int) -> bool:  # inside exact_usage's Stopper, which checks before it ends
        return len(_children(pid)) == 2 if workers == "2" else _has_sst_open(pid)

    code, out, err = _stopped_mid_run(db614, workers, ready, lambda pid: os.kill(pid, sig))
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], err
    assert out == b""
    reason = "interrupted" if sig == signal.SIGINT else "interrupted by SIGTERM"
    assert err == (
        f"kvtool: error: {reason} before du read every record: no report (it would be "
        "incomplete)\n".encode()
    )


def test_a_killed_worker_is_exit_74_and_no_report(db614: Path) -> None:
    killed: list[int] = []

    def kill_worker(pid: int) -> None:
        victim = _children(pid)[0]
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    def ready(pid: int) -> bool:
        """Worker 0 has the database open: it has not said it is done (it closes the database
        first), so its death is one without a last word."""
        children = _children(pid)
        return len(children) == 2 and _has_sst_open(children[0])

    code, out, err = _stopped_mid_run(db614, "2", ready, kill_worker)
    assert code == 74, err
    assert out == b""
    assert (
        err
        == (
            f"kvtool: error: worker process {killed[0]} was killed by SIGKILL (out of memory?)\n"
        ).encode()
    )


def test_a_live_writer_between_the_workers_opens_makes_du_read_in_one_process(
    tmp_path: Path,
) -> None:
    """The writer (rocksdict) puts a:N in `default` and z:N in `users` in one batch, N rising:
    a report of one point in time counts as many of each. Workers opening at different moments
    see different N (their sequence numbers differ): du must read in one process instead.
    (Not a copy of db614: RocksDB 6.14 writes its path into the OPTIONS file as `wal_dir`, so
    a writer on a copy would write its log into the original.)"""
    db = tmp_path / "live.db"
    code = (
        "import sys, itertools, time\n"
        "from rocksdict import Rdict, Options, WriteBatch\n"
        "o = Options(raw_mode=True)\n"
        "o.create_if_missing(True)\n"
        "o.create_missing_column_families(True)\n"
        "db = Rdict(sys.argv[1], o, column_families={'users': Options(raw_mode=True)})\n"
        "users = db.get_column_family_handle('users')\n"
        "for run in b'kmp':  # three SST files in each column family: several chunks\n"
        "    for i in range(2000):\n"
        "        b = WriteBatch(raw_mode=True)\n"
        "        b.put(b'%c:%06d' % (run, i), b'v' * (i % 40))\n"
        "        b.put(b'%c:%06d' % (run, i), b'v' * (i % 40), users)\n"
        "        db.write(b)\n"
        "    db.flush()\n"
        "    db.get_column_family('users').flush()\n"
        "print('ready', flush=True)\n"
        "for n in itertools.count():\n"
        "    b = WriteBatch(raw_mode=True)\n"
        "    b.put(b'a:%09d' % n, b'x')\n"
        "    b.put(b'z:%09d' % n, b'x', users)\n"
        "    db.write(b)\n"
        "    time.sleep(0.0002)  # a steady trickle: the log stays small, the test fast\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        for _ in range(3):
            report = du_json(db, "-j", "2", "--groups", "100")
            by_cf = {cf["name"]: cf for cf in report["column_families"]}
            low = {p["prefix"]: p["records"] for p in by_cf["default"]["prefixes"]}
            high = {p["prefix"]: p["records"] for p in by_cf["users"]["prefixes"]}
            assert low["613a"] == high["7a3a"] > 0
            assert low["6b3a"] == high["6b3a"] == 2000
    finally:
        writer.kill()
        writer.wait(timeout=30)
