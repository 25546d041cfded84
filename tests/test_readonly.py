"""Reading commands leave the database directory byte-for-byte as they found it."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from .conftest import dir_state, make_db, require_tool, run_kvtool

READING_COMMANDS: list[list[str]] = [
    ["info"],
    ["info", "--json"],
    ["get", "{db}", "key:001"],
    ["cf", "list"],
]


def _args(command: list[str], db: Path) -> list[str]:
    if "{db}" in command:
        return [part.replace("{db}", str(db)) for part in command]
    return [*command, str(db)]


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_reading_command_leaves_directory_unchanged(small_db: Path, command: list[str]) -> None:
    before = dir_state(small_db)
    result = run_kvtool(*_args(command, small_db))
    assert result.returncode == 0, result.stderr
    assert dir_state(small_db) == before


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_reading_command_works_on_a_directory_it_cannot_write(
    small_db: Path, command: list[str]
) -> None:
    for path in [small_db, *small_db.iterdir()]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = dir_state(small_db)
    prefix: list[str] = []
    if os.geteuid() == 0:
        # root ignores permission bits; drop the capabilities that let it.
        setpriv = require_tool("setpriv")  # util-linux: drops root's file capabilities
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    import subprocess

    from .conftest import kvtool_executable

    result = subprocess.run(
        [*prefix, kvtool_executable(), *_args(command, small_db)],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert dir_state(small_db) == before
    probe = small_db / "probe"
    if prefix:
        denied = subprocess.run([*prefix, "touch", str(probe)], capture_output=True, check=False)
        assert denied.returncode != 0, "the directory should not be writable in this test"


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_missing_database_exits_66_and_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "no" / "such.db"
    result = run_kvtool(*_args(command, missing))
    assert result.returncode == 66
    assert result.stderr.decode().startswith("kvtool: error: no database at")
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert not missing.exists() and not missing.parent.exists()


def test_a_directory_that_is_not_a_database_exits_66(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    before = dir_state(tmp_path)
    result = run_kvtool("info", tmp_path)
    assert result.returncode == 66
    assert b"is not a RocksDB database" in result.stderr
    assert dir_state(tmp_path) == before


def test_info_next_to_a_live_writer(small_db: Path, writer_process) -> None:  # type: ignore[no-untyped-def]
    writer = writer_process(small_db)
    before = dir_state(small_db, live_owner=True)
    result = run_kvtool("info", "--json", small_db)
    assert result.returncode == 0, result.stderr
    import orjson

    info = orjson.loads(result.stdout)
    assert info["held_by_pid"] == writer.pid
    assert any("in use by process" in note for note in info["attention"])
    # The writer's WAL-only record is visible: the read-only view replays the WAL in memory.
    got = run_kvtool("get", small_db, "live-writer")
    assert (got.returncode, got.stdout) == (0, b"wal-only")
    assert dir_state(small_db, live_owner=True) == before


def test_put_next_to_a_live_writer_exits_75(small_db: Path, writer_process) -> None:  # type: ignore[no-untyped-def]
    writer_process(small_db)
    result = run_kvtool("put", small_db, "k", "v")
    assert result.returncode == 75
    err = result.stderr.decode()
    assert err.startswith("kvtool: error: ") and "locked by another process" in err
    assert len(err.strip().splitlines()) == 1


def test_a_private_directory_a_killed_read_left_is_removed_by_the_next_read(
    tmp_path: Path,
) -> None:
    """SIGKILL runs no clean-up: the next read removes the directory (whose hard links would
    keep deleted SST files' space in use), and leaves alone one of a live process."""
    import subprocess

    from .conftest import kvtool_executable

    db = make_db(tmp_path / "db", {b"k%06d" % i: b"v" * 100 for i in range(20000)})
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [kvtool_executable(), "export", str(db), "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline()  # reading: its private directory exists
    left = [p.name for p in tmp.iterdir()]
    proc.kill()
    proc.wait(timeout=60)
    proc.stdout.close()
    assert len(left) == 1 and left[0].startswith(f"kvtool-ro-{proc.pid}@"), left
    live = tmp / f"kvtool-ro-{os.getpid()}@{socket.gethostname()}.keep"
    live.mkdir()
    result = run_kvtool("count", db, env={"TMPDIR": str(tmp)})
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp.iterdir()] == [live.name]
