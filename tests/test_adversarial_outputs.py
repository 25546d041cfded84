"""Adversarial cases for what kvtool writes and what it is given (issue 10): `-o` targets of every
kind, full disks, stats files, stopped exports resumed into their `.partial`, cut cursors, huge
cursors, terminals, permissions and bad numbers.

Databases are written by `ldb` 7.8 and checked against what `ldb` reads back (tests/oracles.py).
No test touches the machine's real /dev: device targets are `mknod` clones in tmp_path (as root),
since the bug under test replaced the device node with a regular file.
"""

from __future__ import annotations

import base64
import gzip
import os
import pty
import re
import signal
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from .conftest import (
    dir_state,
    kvtool_executable,
    require_tool,
    run_kvtool,
    run_stopped_by_deadline,
)
from .oracles import ldb_load, ldb_scan

Record = tuple[bytes, bytes]
ROOT = os.geteuid() == 0


def one_error_line(stderr: bytes) -> str:
    """The single `kvtool: error: ...` line a failure prints (and nothing else)."""
    assert stderr.startswith(b"kvtool: error: ") and stderr.count(b"\n") == 1, stderr
    assert b"Traceback" not in stderr and b"bug" not in stderr, stderr
    return stderr.decode()


def decode_jsonl(data: bytes) -> list[Record]:
    """Records of an `auto` JSON Lines export, decoded independently of kvtool."""

    def field(value: object) -> bytes:
        if isinstance(value, str):
            return value.encode()
        assert isinstance(value, dict) and set(value) == {"base64"}, value
        return base64.b64decode(value["base64"])

    out = []
    for line in data.splitlines():
        obj = orjson.loads(line)
        out.append((field(obj["key"]), field(obj["value"])))
    return out


def records(n: int) -> list[Record]:
    """Keys in ldb's order; values with bytes a file must carry (NUL, newline, invalid UTF-8)."""
    return [(b"r:%05d" % i, b"v%d\x00\n\xff" % i * (i % 5)) for i in range(n)]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """3,000 records written by ldb 7.8."""
    return ldb_load(tmp_path / "ldb.db", records(3000))


def export_bytes(db: Path, *args: str | os.PathLike[str]) -> bytes:
    result = run_kvtool("export", db, "-q", "-j", "1", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def mknod_clone(path: Path, major: int, minor: int) -> Path:
    """A character device like /dev/null (1, 3) or /dev/full (1, 7), inside tmp_path."""
    if not ROOT:
        pytest.skip("creating a device node needs root")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    return path


def full_device(tmp_path: Path) -> Path:
    """A device where every write fails with ENOSPC (/dev/full): a clone as root, else the real
    one (a non-root kvtool cannot replace it, whatever the code does)."""
    return mknod_clone(tmp_path / "full", 1, 7) if ROOT else Path("/dev/full")


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") or "tmp" in p.name)


# ---------------------------------------------------------------- -o: what is written over


def test_new_file_gets_the_umask_mode(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    result = subprocess.run(
        [kvtool_executable(), "export", str(db), "-q", "-o", str(target)],
        capture_output=True,
        preexec_fn=lambda: os.umask(0o027),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # 0666 less the umask, not 0600
    assert decode_jsonl(target.read_bytes()) == ldb_scan(db)


def test_replaced_file_keeps_its_mode(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")
    target.chmod(0o604)
    result = run_kvtool("export", db, "-q", "-o", target)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o604
    assert decode_jsonl(target.read_bytes()) == ldb_scan(db)
    assert leftovers(tmp_path) == []


def test_symlink_is_followed_and_stays_a_link(db: Path, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "data.jsonl"
    target.write_bytes(b"old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    result = run_kvtool("export", db, "-q", "-o", link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert decode_jsonl(target.read_bytes()) == ldb_scan(db)


def test_fifo_is_written_in_place(db: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = run_kvtool("export", db, "-q", "-o", fifo)
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert decode_jsonl(received[0]) == ldb_scan(db)
    assert leftovers(tmp_path) == []


def test_device_is_written_in_place_never_replaced(db: Path, tmp_path: Path) -> None:
    null = mknod_clone(tmp_path / "null", 1, 3)
    result = run_kvtool("export", db, "-q", "-o", null)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(null.lstat().st_mode) and null.stat().st_rdev == os.makedev(1, 3)
    assert leftovers(tmp_path) == []


# Run in a private mount namespace over a fresh /dev: a kvtool that replaced /dev/stdout with a
# regular file (the bug) must not do it to the machine's /dev while this test shows it.
_PRIVATE_DEV = (
    "mount -t tmpfs kvtool-test /dev && ln -s /proc/self/fd/1 /dev/stdout "
    '&& ln -s /proc/self/fd /dev/fd && "$0" export "$1" -q -o "$2"; code=$?; '
    '[ -L /dev/stdout ] || echo "/dev/stdout was replaced" >&2; exit $code'
)


@pytest.mark.parametrize("name", ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"])
def test_dev_stdout_is_written_in_place(db: Path, tmp_path: Path, name: str) -> None:
    if not ROOT:
        pytest.skip("a private /dev needs root")
    unshare = require_tool("unshare")
    captured = tmp_path / "captured.jsonl"
    with captured.open("wb") as out:
        private = [unshare, "-m", "--propagation", "private", "sh", "-c", _PRIVATE_DEV]
        result = subprocess.run(
            [*private, kvtool_executable(), str(db), name],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert result.returncode == 0 and result.stderr == b"", result.stderr
    assert decode_jsonl(captured.read_bytes()) == ldb_scan(db)
    assert leftovers(tmp_path) == []


def stdout_link(where: Path) -> Path:
    """What /dev/stdout is (a symlink to /proc/self/fd/1), made where a kvtool that replaced it
    would replace only the test's copy: the tests run as root, and the real one is the machine's."""
    link = where / "stdout"
    if not link.is_symlink():
        link.symlink_to("/proc/self/fd/1")
    return link


def test_a_link_to_proc_self_fd_1_is_written_in_place(db: Path, tmp_path: Path) -> None:
    captured = tmp_path / "captured.jsonl"
    link = stdout_link(tmp_path)
    with captured.open("wb") as out:
        result = subprocess.run(
            [kvtool_executable(), "export", str(db), "-q", "-o", str(link)],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert decode_jsonl(captured.read_bytes()) == ldb_scan(db)
    piped = subprocess.run(  # stdout a pipe: the link leads to no file of a directory
        [kvtool_executable(), "export", str(db), "-q", "-o", str(link)],
        capture_output=True,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert decode_jsonl(piped.stdout) == ldb_scan(db)
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"
    assert leftovers(tmp_path) == []


def test_read_only_target_is_refused_before_any_work(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "keep.jsonl"
    target.write_bytes(b"precious\n")
    target.chmod(0o444)
    stats = tmp_path / "stats.json"
    result = run_kvtool("export", db, "-o", target, "--stats-file", stats)
    assert result.returncode == 77
    assert "read-only" in one_error_line(result.stderr)
    assert target.read_bytes() == b"precious\n" and stat.S_IMODE(target.stat().st_mode) == 0o444
    # No work started, but the stats file records the failure (docs/stats.schema.json).
    recorded = orjson.loads(stats.read_bytes())
    assert recorded["status"] == "failed" and recorded["exit_code"] == 77
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "args",
    [["scan"], ["get", "r:00001"], ["verify", "--digest", "-q"], ["export", "-q"]],
    ids=" ".join,
)
def test_full_stdout_is_74_with_one_line(db: Path, tmp_path: Path, args: list[str]) -> None:
    command, *rest = args
    with full_device(tmp_path).open("wb") as full:
        result = subprocess.run(
            [kvtool_executable(), command, str(db), *rest],
            stdout=full,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert result.returncode == 74
    assert "No space left on device" in one_error_line(result.stderr)


def test_export_to_a_full_device_is_74_and_the_device_stays(db: Path, tmp_path: Path) -> None:
    full = full_device(tmp_path)
    result = run_kvtool("export", db, "-q", "-o", full)
    assert result.returncode == 74
    assert "No space left on device" in one_error_line(result.stderr)
    assert stat.S_ISCHR(full.lstat().st_mode)


def test_export_to_a_full_filesystem_is_74_and_leaves_no_file(db: Path, tmp_path: Path) -> None:
    """A 64 KiB tmpfs, mounted in a private mount namespace, fills up mid-export."""
    if not ROOT:
        pytest.skip("mounting a small filesystem needs root")
    unshare = require_tool("unshare")
    mnt = tmp_path / "small"
    mnt.mkdir()
    script = (
        'mount -t tmpfs -o size=64k kvtool-test "$2" && "$0" export "$1" -q -o "$2/out.jsonl"; '
        'code=$?; ls -A "$2" >&2; exit $code'
    )
    result = subprocess.run(
        [
            unshare,
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            kvtool_executable(),
            str(db),
            str(mnt),
        ],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 74, result.stderr
    assert "No space left on device" in one_error_line(result.stderr)  # and `ls -A` said nothing


def test_stats_file_in_a_missing_directory_is_2_before_any_work(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    missing = tmp_path / "no" / "stats.json"
    result = run_kvtool("export", db, "-o", target, "--stats-file", missing, "--timeout", "5s")
    assert result.returncode == 2
    assert "--stats-file" in one_error_line(result.stderr)
    assert not target.exists() and leftovers(tmp_path) == []


def test_a_read_only_stats_file_is_refused_before_any_work(db: Path, tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    stats.write_bytes(b"{}\n")
    stats.chmod(0o444)
    out = tmp_path / "out.jsonl"
    result = run_kvtool("export", db, "-o", out, "--stats-file", stats)
    assert result.returncode == 77
    assert "read-only" in one_error_line(result.stderr)
    assert stats.read_bytes() == b"{}\n" and not out.exists()


def test_stats_file_on_a_device_is_written_in_place(db: Path, tmp_path: Path) -> None:
    null = mknod_clone(tmp_path / "null", 1, 3)
    result = run_kvtool("verify", db, "-q", "--stats-file", null)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(null.lstat().st_mode)


def test_a_full_stats_file_still_names_the_cursor(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    stats = full_device(tmp_path)
    result = run_stopped_by_deadline(
        "export", db, "-q", "-o", out, "--stats-file", stats, rate=2000, timeout=0.5,
        wrote=lambda _: (tmp_path / "out.jsonl.partial").exists(),
    )  # fmt: skip
    assert result.returncode == 74
    line = one_error_line(result.stderr)
    cursor = re.search(r"cursor (kv2\.\S+)", line)
    assert cursor, line
    saved = orjson.loads((tmp_path / "out.jsonl.partial.cursor").read_bytes())
    assert saved["cursor"] == cursor.group(1)


# ---------------------------------------------------------------- -o stopped, then resumed


def stop_after(db: Path, target: Path, *args: str) -> str:
    """Run a paced export into `target` that --timeout stops after some of the 3,000 records (at
    most 1,000 a run); return the cursor it printed."""
    result = run_stopped_by_deadline(
        "export", db, "-o", target, "--stats", "json", *args, rate=2000, timeout=0.5
    )
    assert result.returncode == 124, result.stderr
    cursor = orjson.loads(result.stderr.splitlines()[0])["cursor"]
    assert isinstance(cursor, str)
    assert f"--after {cursor} -o {target}".encode() in result.stderr
    return cursor


@pytest.mark.parametrize(
    ("name", "args"),
    [("out.jsonl", []), ("out.csv", ["-f", "csv"]), ("out.jsonl.gz", ["--key-format", "hex"])],
)
def test_stopped_twice_then_resumed_equals_one_export(
    db: Path, tmp_path: Path, name: str, args: list[str]
) -> None:
    target = tmp_path / name
    partial = tmp_path / f"{name}.partial"
    cursor = stop_after(db, target, *args)
    first = partial.read_bytes()
    # The second stop appends to the first's .partial (it used to replace it).
    cursor = stop_after(db, target, "--after", cursor, *args)
    assert partial.read_bytes().startswith(first) and len(partial.read_bytes()) > len(first)
    # The cursor file lets a huge cursor be passed back: --after @FILE.
    done = run_kvtool("export", db, "-q", "-o", target, "--after", f"@{partial}.cursor", *args)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == [name]
    whole = tmp_path / f"whole-{name}"
    assert run_kvtool("export", db, "-q", "-o", whole, *args).returncode == 0
    if name.endswith(".gz"):  # one gzip member per run: the same content
        assert gzip.decompress(target.read_bytes()) == gzip.decompress(whole.read_bytes())
    else:
        assert target.read_bytes() == whole.read_bytes()
    if name == "out.jsonl":
        assert decode_jsonl(target.read_bytes()) == ldb_scan(db)


def test_a_mismatched_resume_is_refused_and_the_partial_kept(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"
    first = stop_after(db, target)
    second = stop_after(db, target, "--after", first)
    kept = partial.read_bytes()
    for args in (
        ["--after", first],  # an older cursor: would repeat records
        ["--after", second, "-f", "csv"],  # other output options
        ["--after", second, "--value-format", "hex"],
        ["--after", second, "--prefix", "r:0"],  # another range: the cursor says so
    ):
        result = run_kvtool("export", db, "-o", target, *args)
        assert result.returncode == 2, (args, result.stderr)
        one_error_line(result.stderr)
        assert partial.read_bytes() == kept and not target.exists()
    (tmp_path / "out.jsonl.partial.cursor").unlink()
    result = run_kvtool("export", db, "-o", target, "--after", second)
    assert result.returncode == 2 and "cursor" in one_error_line(result.stderr)
    assert partial.read_bytes() == kept


def test_a_resume_from_another_database_is_refused(db: Path, tmp_path: Path) -> None:
    """The cursor names a key, not a database: another database's records after it would be
    appended as the rest of the first, exit 0. The cursor file keeps the database's IDENTITY."""
    other = ldb_load(tmp_path / "other.db", [(k, b"other") for k, _ in records(3000)])
    target = tmp_path / "out.jsonl"
    cursor = stop_after(db, target)
    partial = tmp_path / "out.jsonl.partial"
    kept = partial.read_bytes()
    refused = run_kvtool("export", other, "-o", target, "--after", cursor)
    assert refused.returncode == 2, refused.stderr
    assert "another database" in one_error_line(refused.stderr)
    assert partial.read_bytes() == kept and not target.exists()
    done = run_kvtool("export", db, "-q", "-o", target, "--after", cursor)
    assert done.returncode == 0, done.stderr
    assert decode_jsonl(target.read_bytes()) == ldb_scan(db)


def test_bytes_a_killed_run_wrote_past_its_cursor_are_dropped(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    cursor = stop_after(db, target)
    with (tmp_path / "out.jsonl.partial").open("ab") as partial:
        partial.write(b'{"key":"torn')  # what a SIGKILLed resume leaves after the last stop
    done = run_kvtool("export", db, "-q", "-o", target, "--after", cursor)
    assert done.returncode == 0, done.stderr
    assert decode_jsonl(target.read_bytes()) == ldb_scan(db)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigint_stops_then_a_resume_with_workers_completes_the_file(
    tmp_path: Path, workers: str
) -> None:
    db = ldb_load(tmp_path / "big.db", [(b"k:%07d" % i, b"%d" % i * 30) for i in range(200_000)])
    target = tmp_path / "out.jsonl"
    for _ in range(2):
        after = (
            ["--after", f"@{target}.partial.cursor"]
            if (tmp_path / "out.jsonl.partial").exists()
            else []
        )
        proc = subprocess.Popen(
            [
                kvtool_executable(),
                "export",
                str(db),
                "-q",
                "-j",
                workers,
                "--rate",
                "20000",  # ten seconds for the whole run: the stop always lands mid-run
                "-o",
                str(target),
                *after,
            ],
            stderr=subprocess.PIPE,
        )
        # Stop it mid-run: once the file being written (the temp file or the .partial) grew.
        grown = 0
        for _ in range(2000):
            sizes = [
                p.stat().st_size
                for p in tmp_path.iterdir()
                if p.name.startswith((".out", "out.jsonl.partial"))
                and not p.name.endswith("cursor")
            ]
            grown = max(sizes, default=0)
            if (
                grown > 1_000_000 + (tmp_path / "out.jsonl.partial").exists() * 2_000_000
                or proc.poll() is not None
            ):
                break
            threading.Event().wait(0.01)
        assert proc.poll() is None, "the export ended before it could be stopped"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert b"(it appends to out.jsonl.partial)" in stderr
    done = run_kvtool(
        "export", db, "-q", "-j", workers, "-o", target, "--after", f"@{target}.partial.cursor"
    )
    assert done.returncode == 0, done.stderr
    assert decode_jsonl(target.read_bytes()) == ldb_scan(db)


# ---------------------------------------------------------------- cursors


def test_any_cut_or_changed_cursor_is_refused(db: Path) -> None:
    from kvtool.errors import UsageError
    from kvtool.stream.cursor import Cursor

    result = run_kvtool("scan", db, "-n", "7")
    cursor = re.search(rb"--after (kv2\.\S+)", result.stderr)
    assert cursor, result.stderr
    token = cursor.group(1).decode()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(len("kv2."), len(token)):  # every one-character change, every cut
        for other in {alphabet[(alphabet.index(token[i]) + d) % 64] for d in (1, 17, 32)}:
            with pytest.raises(UsageError, match="not a valid cursor"):
                Cursor.decode(token[:i] + other + token[i + 1 :])
        with pytest.raises(UsageError, match="not a valid cursor"):
            Cursor.decode(token[:i])
    for bad in (token[:-1], token[:-3], token[:-4], token[:-5] + "A" + token[-4:]):
        for command in ("scan", "export", "count"):
            result = run_kvtool(command, db, "--after", bad)
            assert result.returncode == 2, (bad, command, result.stderr)
            assert "not a valid cursor" in one_error_line(result.stderr)
    assert run_kvtool("scan", db, "--after", token).returncode == 0


def test_version_1_cursor_is_refused_with_a_clear_line(db: Path) -> None:
    result = run_kvtool("export", db, "--after", "kv1.AQDMdPfNNn8bdGtleTowMDAwMDAwMDAwMDI")
    assert result.returncode == 2
    assert "version-1 cursor" in one_error_line(result.stderr)


def test_a_cursor_for_a_huge_key_is_passed_back_from_a_file(tmp_path: Path) -> None:
    big = [(bytes([65 + i]) * 150_000, b"value-%d" % i) for i in range(3)]
    db = ldb_load(tmp_path / "big.db", big)
    stats = tmp_path / "stats.json"
    first = run_kvtool("export", db, "-q", "--limit", "1", "--stats-file", stats)
    assert first.returncode == 0, first.stderr
    token = orjson.loads(stats.read_bytes())["cursor"]
    assert len(token) > 200_000
    with pytest.raises(OSError, match="Argument list too long"):
        run_kvtool("export", db, "--after", token)
    rest = run_kvtool("export", db, "-q", "--after", f"@{stats}")
    assert rest.returncode == 0, rest.stderr
    assert decode_jsonl(first.stdout + rest.stdout) == ldb_scan(db) == big
    # scan has no stats file: its saved stderr ("next: kvtool scan ... --after TOKEN") serves.
    page = run_kvtool("scan", db, "-n", "1", "-f", "jsonl")
    (tmp_path / "next.txt").write_bytes(page.stderr)
    rest = run_kvtool("scan", db, "-n", "5", "-f", "jsonl", "--after", f"@{tmp_path}/next.txt")
    assert rest.returncode == 0, rest.stderr
    assert decode_jsonl(page.stdout + rest.stdout) == big
    missing = run_kvtool("export", db, "--after", f"@{tmp_path / 'nope'}")
    assert missing.returncode == 2 and "cursor file" in one_error_line(missing.stderr)
    changed = token[:-1] + ("A" if token[-1] != "A" else "B")
    (tmp_path / "two.txt").write_text(f"{token}\n{changed}\n")
    two = run_kvtool("export", db, "--after", f"@{tmp_path}/two.txt")
    assert two.returncode == 2 and "2 different cursors" in one_error_line(two.stderr)


# ---------------------------------------------------------------- terminals


# Bytes a terminal acts on: C0 but tab/newline, DEL, and C1 (raw, or in its UTF-8 spelling).
_UNSAFE = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def on_a_terminal(*args: str | os.PathLike[str], code: int = 0) -> bytes:
    """What the installed kvtool writes to stdout when stdout is a real pty (exiting `code`)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [kvtool_executable(), *map(str, args)], stdout=slave, stderr=subprocess.PIPE
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == code, stderr
    return b"".join(chunks).replace(b"\r\n", b"\n")  # the pty's ONLCR


@pytest.fixture
def hostile_db(tmp_path: Path) -> Path:
    """Keys and values that would retitle the window, clear the screen, or carry a C1 CSI."""
    return ldb_load(
        tmp_path / "hostile.db",
        [
            (b"k1\x1b]0;owned\x07", b"\x1b[2J\x1b[31mred\r\x08"),
            (b"k2", b"\xc2\x9b31m c1 csi \x9b lone \x7f del"),
        ],
    )


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "-f", "tsv"],
        ["scan", "-f", "csv"],
        ["scan", "-f", "jsonl"],
        ["scan"],
        ["scan", "--value-format", "json"],
        ["export", "-f", "csv", "-q"],
        ["export", "-f", "tsv", "-q"],
        ["export", "-q"],
        ["export", "-f", "tsv", "-q", "-j", "2"],
        ["export", "-f", "tsv", "-q", "-o", "{stdout}"],
        ["get", "k2"],
        ["diff", "{empty}", "-q"],
        ["get", "k1\x1b]0;owned\x07", "--value-format", "utf8"],
    ],
    ids=" ".join,
)
def test_no_raw_control_bytes_reach_a_terminal(hostile_db: Path, args: list[str]) -> None:
    command, *rest = args
    empty = ldb_load(hostile_db.parent / "empty.db", [(b"other", b"x")])
    link = stdout_link(hostile_db.parent)
    shown = on_a_terminal(
        command,
        hostile_db,
        *(a.format(empty=empty, stdout=link) for a in rest),
        code=1 if command == "diff" else 0,  # the two databases differ
    )
    assert shown.strip(), shown
    assert not _UNSAFE.search(shown), shown
    assert b"\\x1b" in shown or b"\\u001b" in shown or b"\\x9b" in shown or b"9b" in shown


def test_export_o_a_terminal_device_shows_escapes(hostile_db: Path) -> None:
    master, slave = pty.openpty()
    try:
        result = run_kvtool("export", hostile_db, "-q", "-f", "tsv", "-o", os.ttyname(slave))
        assert result.returncode == 0, result.stderr
        shown = os.read(master, 65536).replace(b"\r\n", b"\n")
    finally:
        os.close(slave)
        os.close(master)
    assert b"\\x1b" in shown and not _UNSAFE.search(shown), shown


def test_a_pipe_still_gets_the_exact_bytes(hostile_db: Path) -> None:
    assert run_kvtool("get", hostile_db, "k2").stdout == b"\xc2\x9b31m c1 csi \x9b lone \x7f del"
    assert b"\x1b[2J" in run_kvtool("scan", hostile_db, "-f", "tsv").stdout


# ---------------------------------------------------------------- permissions


def as_unprivileged(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[bytes]:
    """Run kvtool so that permission bits apply: as root, without the capabilities that bypass
    them (a uid switch would not do here: the interpreter lives under root's 0700 home)."""
    prefix: list[str] = []
    if ROOT:
        setpriv = require_tool("setpriv")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    return subprocess.run(
        [*prefix, kvtool_executable(), *map(str, args)],
        input=b'{"key":"k","value":"v"}\n',
        capture_output=True,
        check=False,
    )


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(a database, its parent directory), both restored to 0755 after the test."""
    parent = tmp_path / "parent"
    parent.mkdir()
    db = ldb_load(parent / "db", records(50))
    yield db, parent
    for path in (parent, db, *db.iterdir()):
        path.chmod(0o755)


READERS = [
    ["info"],
    ["count"],
    ["scan"],
    ["export"],
    ["verify"],
    ["get", "r:00001"],
    ["diff", "{db}"],
]


def test_another_users_file_is_not_replaced(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "theirs.jsonl"
    target.write_bytes(b"theirs\n")
    target.chmod(0o644)
    if ROOT:
        os.chown(target, 65534, 65534)  # nobody's; this run may still write the directory
    else:
        target.chmod(0o444)
    result = as_unprivileged("export", db, "-o", target)
    assert result.returncode == 77, result.stderr
    assert "kvtool does not replace it" in one_error_line(result.stderr)
    assert target.read_bytes() == b"theirs\n" and leftovers(tmp_path) == []


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_an_unreadable_database_is_77(locked: tuple[Path, Path], args: list[str]) -> None:
    db, _ = locked
    db.chmod(0)
    command, *rest = args
    result = as_unprivileged(command, db, *(a.format(db=db) for a in rest))
    assert result.returncode == 77, result.stderr
    assert "permission denied" in one_error_line(result.stderr)


@pytest.mark.parametrize("args", [*READERS, ["put", "k", "v"]], ids=" ".join)
def test_an_untraversable_parent_is_77(locked: tuple[Path, Path], args: list[str]) -> None:
    db, parent = locked
    parent.chmod(0)
    command, *rest = args
    result = as_unprivileged(command, db, *(a.format(db=db) for a in rest))
    assert result.returncode == 77, result.stderr
    assert "permission denied" in one_error_line(result.stderr).lower()


@pytest.mark.parametrize(
    "args",
    [["put", "k", "v"], ["delete", "r:00001"], ["import"], ["compact"], ["cf", "create", "x"]],
    ids=" ".join,
)
def test_a_write_into_a_read_only_database_is_77_and_changes_nothing(
    locked: tuple[Path, Path], args: list[str]
) -> None:
    db, _ = locked
    for path in db.iterdir():
        path.chmod(0o444)
    db.chmod(0o555)
    before = dir_state(db)
    split = 2 if args[0] == "cf" else 1  # `cf create DB NAME`
    result = as_unprivileged(*args[:split], db, *args[split:])
    assert result.returncode == 77, result.stderr
    assert "permission denied" in one_error_line(result.stderr).lower()
    assert dir_state(db) == before
    assert ldb_scan(db) == records(50)


# ---------------------------------------------------------------- bad numbers


BAD_NUMBERS = [
    ["export", "--rate", "nan"],
    ["export", "--rate", "inf"],
    ["export", "--rate", "-5"],
    ["export", "--rate", "0"],
    ["export", "--bytes-rate", "nan"],
    ["export", "--bytes-rate", ""],
    ["export", "--bytes-rate", "0"],
    ["export", "--bytes-rate", "9" * 400],
    ["export", "--timeout", ""],
    ["export", "--timeout", "nan"],
    ["export", "--timeout", "inf"],
    ["export", "--timeout", "0"],
    ["export", "--timeout", "-1s"],
    ["export", "--timeout", "1e23"],
    ["export", "--timeout", "9" * 30 + "d"],
    ["export", "--limit", "-1"],
    ["export", "--limit", "1" + "0" * 23],
    ["export", "--workers", "0"],
    ["export", "--workers", "100000"],
    ["count", "--workers", "0"],
    ["count", "--timeout", ""],
    ["scan", "--page-size", "0"],
    ["scan", "--page-size", "1e23"],
    ["scan", "--page-size", "1" + "0" * 23],
    ["scan", "--limit", "nan"],
    ["put", "k", "v", "--wait-lock", ""],
    ["put", "k", "v", "--wait-lock", "nan"],
    ["put", "k", "v", "--wait-lock", "9" * 30 + "d"],
    ["compact", "--io-rate", "0"],
    ["compact", "--io-rate", "inf"],
    ["compact", "--wait-lock", "-1"],
    ["import", "--batch-records", "0"],
    ["import", "--batch-records", "1" + "0" * 23],
    ["import", "--batch-bytes", "0"],
    ["import", "--batch-bytes", "nan"],
    ["import", "--sort-memory", ""],
    ["delete-range", "--start", "a", "--end", "b", "--wait-lock", "inf"],
    ["cf", "create", "--wait-lock", ""],
]


@pytest.mark.parametrize("args", BAD_NUMBERS, ids=lambda a: " ".join(a)[:60])
def test_every_bad_number_is_2_with_one_line(db: Path, args: list[str]) -> None:
    before = dir_state(db)
    command, *rest = args
    if command == "cf":  # a group: `cf create DB NAME`
        argv = ["cf", rest[0], str(db), "new", *rest[1:]]
    else:
        argv = [command, str(db), *rest]
    result = run_kvtool(*argv, input=b'{"key":"a","value":"b"}\n')
    assert result.returncode == 2, result.stderr
    one_error_line(result.stderr)
    assert dir_state(db) == before


def test_quiet_silences_the_note_of_a_stopped_exports_files(db: Path, tmp_path: Path) -> None:
    """-q prints nothing but errors: the warning that FILE.partial is a stopped export (which
    a new run replaces if it stops too) showed even with -q."""
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.partial").write_bytes(b"")
    (tmp_path / "out.jsonl.partial.cursor").write_text("x\n")
    loud = run_kvtool("export", db, "-j", "1", "-o", out)
    assert loud.returncode == 0 and b"is a stopped export" in loud.stderr, loud.stderr
    quiet = run_kvtool("export", db, "-j", "1", "-q", "-o", out)
    assert quiet.returncode == 0 and quiet.stderr == b"", quiet.stderr
    assert decode_jsonl(out.read_bytes()) == ldb_scan(db)
