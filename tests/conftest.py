"""Shared test helpers: real databases, the installed `kvtool` as a subprocess, directory states."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kvtool.engine import OpenMode, open_db

IN_CI = bool(os.environ.get("CI"))


def require_tool(name: str) -> str:
    """Path of an external tool (ldb, sst_dump, jq); skip without it, but fail under CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (.ci/run lists the packages the tests use)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def kvtool_executable() -> str:
    """The installed console script next to this interpreter (falls back to PATH)."""
    candidate = Path(sys.executable).parent / "kvtool"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("kvtool")
    if found is None:
        pytest.fail("the kvtool console script is not installed: pip install -e '.[test]'")
    return found


def run_kvtool(
    *args: str | os.PathLike[str],
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed `kvtool` with no terminal; returns stdout/stderr as bytes."""
    return subprocess.run(
        [kvtool_executable(), *map(str, args)],
        input=input if input is not None else b"",
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def dir_state(path: Path, *, live_owner: bool = False) -> dict[str, tuple[int, int, str]]:
    """Every file below `path`: (size, mtime_ns, sha256). Equal states mean nothing changed.

    With `live_owner`, the info LOG files are left out: a running owner writes its own LOG in the
    background (seen under load), and the tests without an owner check that kvtool never does.
    """
    state: dict[str, tuple[int, int, str]] = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            if live_owner and name.startswith("LOG"):
                continue
            full = Path(root) / name
            st = full.lstat()
            digest = hashlib.sha256(full.read_bytes()).hexdigest() if full.is_file() else "dir"
            state[str(full.relative_to(path))] = (st.st_size, st.st_mtime_ns, digest)
    return state


def installed_engines() -> list[str]:
    """Every engine the conformance tests run on: rocksdict, and python-rocksdb when `import
    rocksdb` works (always under CI=true, where a missing binding fails the tests)."""
    engines = ["rocksdict"]
    try:
        import rocksdb  # type: ignore[import-untyped]  # noqa: F401

        engines.append("python-rocksdb")
    except ImportError:
        if os.environ.get("CI"):
            engines.append("python-rocksdb")
    return engines


@pytest.fixture(params=installed_engines())
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each installed engine: `open_db` and the `kvtool` it starts use it."""
    name: str = request.param
    monkeypatch.setenv("KVTOOL_ENGINE", name)
    return name


def make_db(
    path: Path, records: dict[bytes, bytes], *, cf: dict[str, dict[bytes, bytes]] | None = None
) -> Path:
    """Create a database holding `records` (and column families `cf`), flushed to SST files."""
    with open_db(path, OpenMode.READ_WRITE, create=True, engine="rocksdict") as db:
        for name in cf or {}:
            db.create_column_family(name)
        with db.write_batch() as batch:
            for key, value in records.items():
                batch.put(key, value)
            for name, items in (cf or {}).items():
                for key, value in items.items():
                    batch.put(key, value, name)
            db.write(batch)
        db.flush()
        for name in cf or {}:
            db.flush(name)
    return path


@pytest.fixture
def small_db(tmp_path: Path) -> Path:
    """100 text records key:000..key:099 -> value-N."""
    return make_db(
        tmp_path / "small.db",
        {b"key:%03d" % i: b"value-%d" % i for i in range(100)},
    )


@pytest.fixture
def binary_db(tmp_path: Path) -> Path:
    """Keys and values hard to carry: NUL, newline, invalid UTF-8, ` ==> `, empty."""
    records = {
        b"\x00": b"nul key",
        b"a\nb": b"newline\nin value",
        b"\xff\xfe": b"\x80invalid utf8",
        b"plain": b"",
        b"arrow ==> key": b"value ==> arrow",
        b"tab\tkey": b"\x00\x01\x02",
        "ünïcode".encode(): "välue".encode(),
    }
    return make_db(tmp_path / "binary.db", records)


@pytest.fixture
def writer_process(tmp_path: Path) -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    """Start a separate process that holds a database open read-write, like its owner app."""
    started: list[subprocess.Popen[str]] = []

    def start(db: Path) -> subprocess.Popen[str]:
        code = (
            "import sys\n"
            "from rocksdict import Rdict, Options\n"
            "o, cfs = Options.load_latest(sys.argv[1])\n"
            "db = Rdict(sys.argv[1], o, column_families=cfs)\n"
            "db.put(b'live-writer', b'wal-only')\n"
            "print('ready', flush=True)\n"
            "sys.stdin.read()\n"
            "db.close()\n"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=30)


def _wrote_a_record(result: subprocess.CompletedProcess[bytes]) -> bool:
    """Whether a stopped export, count or diff got past its first record (see below)."""
    if re.search(rb"nothing was (written|counted|compared): run it again", result.stderr):
        return False
    # A resumed run that stopped before its first record names the file it appends to, not
    # "nothing was written": its --stats json line (the stats envelope) counts no records.
    first = result.stderr.split(b"\n", 1)[0]
    if first.startswith(b"{"):
        with contextlib.suppress(ValueError):
            stats = json.loads(first)
            if isinstance(stats, dict) and 0 in (stats.get("records"), stats.get("count")):
                return False
    return True


def run_stopped_by_deadline(
    *args: str | os.PathLike[str],
    rate: float,
    timeout: float,
    wrote: Callable[[subprocess.CompletedProcess[bytes]], bool] = _wrote_a_record,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed `kvtool ARGS --rate RATE --timeout TIMEOUTs`: a deadline that must stop
    the run after at least one record, and before the end (at most RATE * TIMEOUT records pass).

    The deadline counts from the start, so on a loaded machine the open alone can outlast it
    (seen: 0.56 s against 0.5 s, five times in a row; the run then says "nothing was written"
    (counted, compared), its stats count no records, or `wrote` says so). Such a run tests no
    stop between records: it runs again with twice the time at half the rate (no more records),
    a few times."""
    for attempt in range(5):
        result = run_kvtool(
            *args,
            "--rate",
            f"{rate / 2**attempt:g}",
            "--timeout",
            f"{timeout * 2**attempt:g}s",
            env=env,
        )
        if wrote(result):
            break
    return result
