"""A range worker killed (kill -9) in the middle of a Parquet export (issue 15): the export ends
as a dead worker ends a JSON Lines export (exit 74, one line, a cursor), leaves complete part
files only, and the resume completes the dataset without a duplicate."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import IN_CI, kvtool_executable, run_kvtool
from .oracles import ldb_load, ldb_scan

if not IN_CI:
    pytest.importorskip("pyarrow")
    pytest.importorskip("duckdb")
import duckdb
import pyarrow.parquet as pq

Record = tuple[bytes, bytes]
# Four ldb loads, four SST files: four chunks for two workers; 32 KB parts, so a worker has a
# part open (`.inprogress`) nearly all the time it works.
RECORDS: list[Record] = [
    (b"%c:%06d" % (first, i), b"%06d" % i * 12) for first in b"abcd" for i in range(6_000)
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pqkill") / "db"
    for first in b"abcd":
        ldb_load(path, [r for r in RECORDS if r[0][0] == first])
    return path


def _stopped(pid: int) -> bool:
    states = set()
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError):
            states.add(stat.read_text().rsplit(")", 1)[1].split()[0])
    return states <= {"T", "t", "Z", "X"}


def _writing_a_part(pid: int) -> bool:
    """Whether process `pid` has a part file open that is not complete yet."""
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        with contextlib.suppress(OSError):
            if os.readlink(fd).endswith(".parquet.inprogress"):
                return True
    return False


def _first_part_complete_and_one_open(out: Path) -> bool:
    """Whether the first chunk with records has a complete part (so the stop keeps records:
    chunks are handed out in key order, and an empty chunk writes no file) and a part is open."""
    names = sorted(p.name for p in out.glob("chunk-*"))
    if not names or not any(n.endswith(".inprogress") for n in names):
        return False
    first = names[0].split("-")[1]
    return any(n.startswith(f"chunk-{first}-") and n.endswith(".parquet") for n in names)


def _kill_a_worker_mid_part(proc: subprocess.Popen[bytes], out: Path) -> int | None:
    """SIGKILL a range worker while it writes a part, for certain: once the first chunk has a
    complete part and a part is `.inprogress`, the parent and its workers are stopped
    (SIGSTOP), so what the test then sees (a worker holding an unfinished part open, the parent
    not yet told) stays true until the kill; all continue after it. None when the export ended
    first (run it again)."""
    deadline = time.monotonic() + 60
    while proc.poll() is None:
        assert time.monotonic() < deadline, "the export was never seen writing a part"
        if not _first_part_complete_and_one_open(out):
            time.sleep(0.001)
            continue
        family = [proc.pid]
        with contextlib.suppress(OSError):
            family += map(
                int, Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            )
        for pid in family:
            os.kill(pid, signal.SIGSTOP)
        try:
            while not all(_stopped(pid) for pid in family):
                assert time.monotonic() < deadline, "kvtool did not stop"
                time.sleep(0.001)
            victim = next((pid for pid in family[1:] if _writing_a_part(pid)), None)
            if victim is not None:
                os.kill(victim, signal.SIGKILL)
                return victim
        finally:
            for pid in family:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        time.sleep(0.001)
    return None


def test_a_worker_killed_mid_part_stops_with_74_complete_parts_and_a_resume(
    db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    command = [kvtool_executable(), "export", str(db), "--format", "parquet", "-o", str(out),
               "-j", "2", "--part-size", "32KB", "-q"]  # fmt: skip
    for _attempt in range(5):
        with subprocess.Popen(command, stderr=subprocess.PIPE) as proc:
            victim = _kill_a_worker_mid_part(proc, out)
            _, stderr = proc.communicate(timeout=120)
        if victim is not None:
            break
        assert proc.returncode == 0, stderr
        subprocess.run(["rm", "-rf", str(out)], check=True)
    else:
        pytest.fail("the export was never caught writing a part")

    text = stderr.decode()
    assert proc.returncode == 74, text
    assert text.count("\n") == 1 and "Traceback" not in text  # -q: the error line alone
    assert text.startswith(f"kvtool: error: worker process {victim} was killed by SIGKILL")
    assert not (out / "_SUCCESS").exists()
    manifest = json.loads((out / "_kvtool_manifest.json").read_text())
    assert manifest["state"] == "stopped" and f"--after {manifest['cursor']} " in text
    # Complete parts only: every file a *.parquet glob sees is listed and readable, in key order.
    listed = sorted(p["path"] for p in manifest["parts"])
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet")) == listed
    assert [p.name for p in out.iterdir() if not p.name.startswith(("part-", "_kvtool"))] == []
    kept: list[Record] = []
    for part in manifest["parts"]:
        kept += [(r["key"], r["value"]) for r in pq.read_table(out / part["path"]).to_pylist()]
    assert 0 < len(kept) < len(RECORDS) and kept == RECORDS[: len(kept)]

    resumed = run_kvtool("export", db, "--format", "parquet", "-o", out, "-j", "2",
                         "--part-size", "32KB", "--after", manifest["cursor"])  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    counted = run_kvtool("count", db)
    (count,) = duckdb.sql(f"SELECT count(*) FROM '{out}/*.parquet'").fetchall()[0]
    assert count == int(counted.stdout) == len(RECORDS)
    rows = []
    for part in json.loads((out / "_kvtool_manifest.json").read_text())["parts"]:
        rows += [(r["key"], r["value"]) for r in pq.read_table(out / part["path"]).to_pylist()]
    assert rows == ldb_scan(db) == RECORDS
    assert (out / "_SUCCESS").exists()
