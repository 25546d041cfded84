"""scan, export, count and diff against real databases: the same records as Debian's ldb, clean
stops that resume without loss or repeat, cursors, corruption, and untouched database dirs."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import subprocess
from pathlib import Path

import orjson
import pytest

from kvtool.formats.records import decode_field

from .conftest import (
    dir_state,
    kvtool_executable,
    make_db,
    require_tool,
    run_kvtool,
    run_stopped_by_deadline,
)

Records = list[tuple[bytes, bytes]]


# ---------------------------------------------------------------- helpers


def ldb_scan(db: Path) -> Records:
    """Every record of `db` as Debian's ldb (RocksDB 7.8) reads it."""
    ldb = require_tool("ldb")
    out = subprocess.run(
        [ldb, f"--db={db}", "scan", "--hex"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    records = []
    for line in out.splitlines():
        key, value = line.split(" : ")
        records.append((bytes.fromhex(key[2:]), bytes.fromhex(value[2:])))
    return records


def parse_hex_export(data: bytes) -> Records:
    rows = [orjson.loads(line) for line in data.splitlines()]
    return [(bytes.fromhex(r["key"]), bytes.fromhex(r["value"])) for r in rows]


def parse_auto_export(data: bytes) -> Records:
    rows = [orjson.loads(line) for line in data.splitlines()]
    return [(decode_field(r["key"], "auto"), decode_field(r["value"], "auto")) for r in rows]


def stats_of(stderr: bytes) -> dict[str, object]:
    """The one JSON stats line (--stats json) on stderr."""
    lines = [line for line in stderr.splitlines() if line.startswith(b"{")]
    assert len(lines) == 1, stderr
    stats: dict[str, object] = orjson.loads(lines[0])
    return stats


def export(db: Path, *args: str) -> bytes:
    result = run_kvtool("export", db, "-q", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def text_db(tmp_path: Path) -> Path:
    """2000 records in two prefixes, with values of varying length."""
    records = {b"a:%04d" % i: b"alpha-%d" % i * (i % 5) for i in range(1000)}
    records.update({b"b:%04d" % i: b"beta-%d" % i for i in range(1000)})
    return make_db(tmp_path / "text.db", records)


@pytest.fixture
def paced_db(tmp_path: Path) -> Path:
    """6000 records: at --rate 2000 an export takes about 3 seconds, long enough to interrupt."""
    return make_db(tmp_path / "paced.db", {b"r:%05d" % i: b"v" * (i % 37) for i in range(6000)})


# ---------------------------------------------------------------- equal to ldb


RANGES = {
    "whole": ([], lambda k: True, False),
    "prefix": (["--prefix", "b:"], lambda k: k.startswith(b"b:"), False),
    "start-end": (
        ["--start", "a:0500", "--end", "b:0100"],
        lambda k: b"a:0500" <= k < b"b:0100",
        False,
    ),
    "reverse": (["--reverse"], lambda k: True, True),
    "reverse-prefix": (["--reverse", "--prefix", "a:"], lambda k: k.startswith(b"a:"), True),
    "reverse-start-end": (
        ["--reverse", "--start", "a:0990", "--end", "b:0010"],
        lambda k: b"a:0990" <= k < b"b:0010",
        True,
    ),
}


@pytest.mark.parametrize("name", sorted(RANGES))
def test_export_equals_ldb_scan(text_db: Path, name: str) -> None:
    args, keep, reverse = RANGES[name]
    expected = [r for r in ldb_scan(text_db) if keep(r[0])]
    if reverse:
        expected.reverse()
    assert expected, "the range must not be empty"
    hexed = export(text_db, "--key-format", "hex", "--value-format", "hex", *_hex_args(args))
    assert parse_hex_export(hexed) == expected
    assert parse_auto_export(export(text_db, *args)) == expected


def _hex_args(args: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(args):
        out.append(
            arg.encode().hex() if i and args[i - 1] in ("--prefix", "--start", "--end") else arg
        )
    return out


@pytest.mark.parametrize("fmt", ["auto", "hex", "base64"])
def test_binary_db_export_equals_ldb(binary_db: Path, fmt: str) -> None:
    expected = ldb_scan(binary_db)
    data = export(binary_db, "--key-format", fmt, "--value-format", fmt)
    rows = [orjson.loads(line) for line in data.splitlines()]
    got = [(decode_field(r["key"], fmt), decode_field(r["value"], fmt)) for r in rows]
    assert got == expected
    assert data.count(b"\n") == len(expected)  # newlines inside keys/values are escaped


def test_binary_prefix_given_in_hex(binary_db: Path) -> None:
    data = export(binary_db, "--key-format", "hex", "--prefix", "ff")
    assert [orjson.loads(line)["key"] for line in data.splitlines()] == ["fffe"]


def test_every_line_parses_with_jq(binary_db: Path, text_db: Path) -> None:
    jq = require_tool("jq")
    for db in (binary_db, text_db):
        data = export(db)
        result = subprocess.run([jq, "-c", "."], input=data, capture_output=True, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count(b"\n") == data.count(b"\n") > 0


def test_keys_only_and_limit(text_db: Path) -> None:
    data = export(text_db, "--keys-only", "--limit", "3", "--prefix", "b:")
    assert [orjson.loads(line) for line in data.splitlines()] == [
        {"key": "b:0000"},
        {"key": "b:0001"},
        {"key": "b:0002"},
    ]


def test_value_format_json_embeds_parsed_values(tmp_path: Path) -> None:
    # Embedded only when the bytes are orjson's own spelling (import gives them back exactly);
    # other values are wrapped (tests/test_records_roundtrip.py covers every case).
    db = make_db(tmp_path / "j.db", {b"a": b'{"n":1}', b"b": b"not json", b"c": b'{"n": 1}'})
    data = export(db, "--value-format", "json")
    assert [orjson.loads(line) for line in data.splitlines()] == [
        {"key": "a", "value": {"n": 1}},
        {"key": "b", "value": {"text": "not json"}},
        {"key": "c", "value": {"text": '{"n": 1}'}},
    ]


# ---------------------------------------------------------------- files


def test_export_to_file_and_gzip(text_db: Path, tmp_path: Path) -> None:
    full = export(text_db)
    plain, packed = tmp_path / "out.jsonl", tmp_path / "out.jsonl.gz"
    assert run_kvtool("export", text_db, "-q", "-o", plain).returncode == 0
    assert run_kvtool("export", text_db, "-q", "-o", packed).returncode == 0
    assert plain.read_bytes() == full
    assert gzip.decompress(packed.read_bytes()) == full
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".out", "out"))) == [
        "out.jsonl",
        "out.jsonl.gz",
    ]


def test_csv_and_tsv(binary_db: Path) -> None:
    tsv = export(binary_db, "--format", "tsv", "--key-format", "hex", "--value-format", "hex")
    rows = [line.split(b"\t") for line in tsv.splitlines()]
    assert [(bytes.fromhex(k.decode()), bytes.fromhex(v.decode())) for k, v in rows] == ldb_scan(
        binary_db
    )
    csv = export(binary_db, "--format", "csv", "--limit", "1")
    assert csv.splitlines()[0] == b"key,value"


# ---------------------------------------------------------------- stopping and resuming


def _start_export(db: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [kvtool_executable(), "--trace-handles", "export", str(db), "--stats", "json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _read_some(proc: subprocess.Popen[bytes], at_least: int) -> bytes:
    """Block until `at_least` bytes of output arrived (no sleeps: the pipe says when)."""
    assert proc.stdout is not None
    got = b""
    while len(got) < at_least:
        chunk = os.read(proc.stdout.fileno(), 65536)
        assert chunk, "export ended before it could be interrupted"
        got += chunk
    return got


@pytest.mark.parametrize(
    ("how", "code"),
    [("SIGINT", 130), ("SIGTERM", 143), ("timeout", 124)],
)
def test_stopped_export_resumes_exactly(paced_db: Path, how: str, code: int) -> None:
    full = export(paced_db)
    for attempt in range(5):
        if how == "timeout":
            # The deadline counts from the start, and a loaded machine can spend most of a
            # second opening: a run stopped before its first record runs again with twice the
            # time at half the rate (see conftest.run_stopped_by_deadline).
            rate, extra = 2000 / 2**attempt, ["--timeout", f"{2**attempt}s"]
        else:
            rate, extra = 2000, []
        proc = _start_export(paced_db, "--rate", f"{rate:g}", *extra)
        if how == "timeout":
            head = b""
        else:
            head = _read_some(proc, random.randint(1, 40_000))  # the rest waits in the pipe
            proc.send_signal(getattr(signal, how))
        rest, stderr = proc.communicate(timeout=60)
        first = head + rest
        if first:  # a deadline before the first record tests no stop between records: again
            break
    assert proc.returncode == code, stderr
    assert first.endswith(b"\n") and 0 < len(first) < len(full)
    assert full.startswith(first)  # whole records only, in order
    stats = stats_of(stderr)
    cursor = stats["cursor"]
    assert isinstance(cursor, str)
    assert f"--after {cursor}".encode() in stderr
    assert stats["records"] == first.count(b"\n")
    assert b"handle release db" in stderr and b"left open" not in stderr
    second = export(paced_db, "--after", cursor)
    assert first + second == full


def test_stopped_reverse_prefix_export_resumes_exactly(paced_db: Path) -> None:
    args = ["--reverse", "--prefix", b"r:03".hex(), "--key-format", "hex"]
    full = export(paced_db, *args)
    # 1,000 records (53 KB, less than a pipe holds) at 100 a second: the stop lands mid-run.
    proc = _start_export(paced_db, "--rate", "100", *args)
    head = _read_some(proc, 500)
    proc.send_signal(signal.SIGINT)
    rest, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    cursor = stats_of(stderr)["cursor"]
    assert isinstance(cursor, str)
    assert head + rest + export(paced_db, *args, "--after", cursor) == full


def test_stopped_export_to_file_keeps_a_partial_file(paced_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    result = run_stopped_by_deadline(
        "export", paced_db, "-o", target, "--stats", "json", rate=3000, timeout=0.5
    )
    assert result.returncode == 124, result.stderr
    assert not target.exists()
    partial = tmp_path / "out.jsonl.partial"
    cursor = stats_of(result.stderr)["cursor"]
    assert isinstance(cursor, str)
    assert partial.read_bytes() + export(paced_db, "--after", cursor) == export(paced_db)


def test_export_into_head_exits_quietly(tmp_path: Path) -> None:
    db = make_db(tmp_path / "many.db", {b"k%06d" % i: b"x" * 100 for i in range(50_000)})
    proc = subprocess.Popen(
        [kvtool_executable(), "export", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    stderr = proc.stderr.read()
    proc.wait(timeout=60)
    assert orjson.loads(line) == {"key": "k000000", "value": "x" * 100}
    assert proc.returncode == 0, stderr
    assert b"Traceback" not in stderr and b"error" not in stderr


# ---------------------------------------------------------------- scan pages and cursors


@pytest.mark.parametrize("args", [[], ["--reverse"], ["--prefix", "a:"], ["--start", "a:0990"]])
def test_paged_scan_walked_to_the_end_equals_export(text_db: Path, args: list[str]) -> None:
    full = export(text_db, *args)
    pages, after = [], []
    for _ in range(1000):
        result = run_kvtool("scan", text_db, "--format", "jsonl", "-n", "97", *args, *after)
        assert result.returncode == 0, result.stderr
        pages.append(result.stdout)
        lines = result.stderr.decode().splitlines()
        nxt = [line for line in lines if line.startswith("next: ")]
        if not nxt:
            assert "end of range" in result.stderr.decode()
            break
        after = ["--after", nxt[0].rsplit(" ", 1)[1]]
    assert b"".join(pages) == full
    assert len(pages) == -(-full.count(b"\n") // 97)


def test_scan_table_shows_binary_safely(binary_db: Path) -> None:
    result = run_kvtool("scan", binary_db)
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert text.splitlines()[0].split() == ["KEY", "VALUE"]
    assert "\\xff\\xfe" in text and "a\\nb" in text
    assert len(text.splitlines()) == 1 + 7


@pytest.mark.parametrize(
    "cursor_args",
    [
        ["--after", "garbage"],
        ["--after", "kv2.!!!"],
        ["--after", "kv2.AQ"],
        ["--after", "kv1.AQDMdPfNNn8bdGtleTowMDAwMDAwMDAwMDI"],
        ["--after", "kv9.AQAAAAAAAAAAAGE"],
    ],
)
def test_bad_cursor_exits_2(small_db: Path, cursor_args: list[str]) -> None:
    for command in ("scan", "export", "count"):
        result = run_kvtool(command, small_db, *cursor_args)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.startswith(b"kvtool: error: --after"), result.stderr
        assert b"Traceback" not in result.stderr


def test_cursor_of_another_range_or_direction_exits_2(small_db: Path) -> None:
    result = run_kvtool("scan", small_db, "-n", "5", "--prefix", "key:0")
    token = result.stderr.decode().split("--after ")[1].split()[0]
    assert run_kvtool("scan", small_db, "--prefix", "key:0", "--after", token).returncode == 0
    for other in (["--prefix", "key:1"], ["--prefix", "key:0", "--reverse"], []):
        bad = run_kvtool("export", small_db, *other, "--after", token)
        assert bad.returncode == 2, bad.stderr
        assert b"cursor" in bad.stderr


@pytest.mark.parametrize(
    "range_args",
    [
        ["--start", "key:5", "--end", "key:1"],
        ["--key-format", "hex", "--prefix", "zz"],
        ["--key-format", "base64", "--start", "%%%"],
    ],
)
def test_bad_range_exits_2_with_one_line(small_db: Path, range_args: list[str]) -> None:
    for command in ("scan", "export", "count", "diff"):
        dbs = [small_db, small_db] if command == "diff" else [small_db]
        result = run_kvtool(command, *dbs, *range_args)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stdout == b""
        lines = result.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kvtool: error: --"), lines


# ---------------------------------------------------------------- count


def test_count_exact_and_estimate(text_db: Path) -> None:
    def count(*args: str) -> str:
        result = run_kvtool("count", text_db, *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.decode().strip()

    assert count() == "2000"
    assert count("--prefix", "a:") == "1000"
    assert count("--prefix", "a:", "--reverse") == "1000"
    assert count("--start", "a:0500", "--end", "b:0100") == "600"
    assert count("--limit", "7") == "7"
    assert count("--estimate").startswith("~")
    assert run_kvtool("count", text_db, "--estimate", "--prefix", "a:").returncode == 2


def test_count_after_a_cursor(text_db: Path) -> None:
    for args in ([], ["--reverse"]):
        scan = run_kvtool("scan", text_db, "-n", "150", *args)
        token = scan.stderr.decode().split("--after ")[1].split()[0]
        result = run_kvtool("count", text_db, *args, "--after", token)
        assert result.stdout.strip() == b"1850", result.stderr


# ---------------------------------------------------------------- corruption and safety


@pytest.fixture
def corrupt_db(tmp_path: Path) -> Path:
    """A copy of a DB whose one SST file has bytes flipped in the middle of a data block."""
    source = make_db(tmp_path / "good.db", {b"c:%06d" % i: os.urandom(200) for i in range(20_000)})
    copy = tmp_path / "corrupt.db"
    shutil.copytree(source, copy)
    sst = max(copy.glob("*.sst"), key=lambda p: p.stat().st_size)
    data = bytearray(sst.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 64):
        data[i] ^= 0xFF
    sst.write_bytes(bytes(data))
    return copy


def test_corrupt_block_fails_export_and_count_with_74(corrupt_db: Path, tmp_path: Path) -> None:
    for args in (
        ["export", corrupt_db],
        ["count", corrupt_db],
        ["scan", corrupt_db, "-n", "20000"],
    ):
        result = run_kvtool(*args)
        assert result.returncode == 74, (args, result.returncode, result.stderr[-300:])
        assert result.stderr.startswith(b"kvtool: error: ") or b"\nkvtool: error: " in result.stderr
        assert b"Traceback" not in result.stderr
    target = tmp_path / "never.jsonl"
    assert run_kvtool("export", corrupt_db, "-o", target).returncode == 74
    assert not any(p.name.startswith((".never", "never")) for p in tmp_path.iterdir())


def test_reading_commands_leave_the_db_dir_unchanged(text_db: Path, small_db: Path) -> None:
    before = dir_state(text_db), dir_state(small_db)
    for args in (
        ["scan", text_db],
        ["export", text_db, "--reverse"],
        ["count", text_db],
        ["count", text_db, "--estimate"],
        ["diff", text_db, small_db],
    ):
        # diff exits 1: the two differ
        assert run_kvtool(*args).returncode == (1 if args[0] == "diff" else 0), args
    assert (dir_state(text_db), dir_state(small_db)) == before


def test_missing_db_is_66_and_creates_nothing(tmp_path: Path) -> None:
    for command in ("scan", "export", "count"):
        result = run_kvtool(command, tmp_path / "nope")
        assert result.returncode == 66, result.stderr
    assert not (tmp_path / "nope").exists()


# ---------------------------------------------------------------- diff


def test_diff_reports_added_removed_changed(tmp_path: Path) -> None:
    a = make_db(tmp_path / "a.db", {b"same": b"1", b"gone": b"2", b"edit": b"old", b"\xff": b"x"})
    b = make_db(tmp_path / "b.db", {b"same": b"1", b"new": b"3", b"edit": b"new", b"\xff": b"y"})
    result = run_kvtool("diff", a, b, "--stats", "json")
    assert result.returncode == 1, result.stderr  # they differ, as diff(1) says
    assert [orjson.loads(line) for line in result.stdout.splitlines()] == [
        {"op": "changed", "key": "edit", "old": "old", "new": "new"},
        {"op": "removed", "key": "gone", "value": "2"},
        {"op": "added", "key": "new", "value": "3"},
        {"op": "changed", "key": {"base64": "/w=="}, "old": "x", "new": "y"},
    ]
    stats = stats_of(result.stderr)
    assert (stats["added"], stats["removed"], stats["changed"], stats["same"]) == (1, 1, 2, 1)
    reverse = run_kvtool("diff", a, b, "--reverse", "-q")
    assert reverse.stdout.splitlines() == result.stdout.splitlines()[::-1]


# ---------------------------------------------------------------- progress


def _stderr_on_a_terminal(*args: str | Path) -> bytes:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    # A real terminal has a size; a bare pty is 0x0, where tqdm draws nothing.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [kvtool_executable(), *map(str, args)], stdout=subprocess.DEVNULL, stderr=slave
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is gone
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0, seen
    return seen


def test_progress_bar_only_on_a_terminal(text_db: Path) -> None:
    on_terminal = _stderr_on_a_terminal("export", text_db)
    assert b"/2.00k" in on_terminal, on_terminal  # the total is the key estimate
    assert b"%" in on_terminal
    assert b"%" not in run_kvtool("export", text_db).stderr
    assert b"%" not in _stderr_on_a_terminal("export", text_db, "-q")


# ---------------------------------------------------------------- column families, stats file


def test_column_family_export_count_scan(tmp_path: Path) -> None:
    db = make_db(
        tmp_path / "cf.db",
        {b"d:1": b"default"},
        cf={"meta": {b"m:%02d" % i: b"\x00%d" % i for i in range(30)}},
    )
    ldb = require_tool("ldb")
    listing = subprocess.run(
        [ldb, f"--db={db}", "--column_family=meta", "scan", "--hex"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    expected = [
        tuple(bytes.fromhex(x[2:]) for x in line.split(" : ")) for line in listing.splitlines()
    ]
    assert parse_auto_export(export(db, "--cf", "meta")) == expected
    assert run_kvtool("count", db, "--cf", "meta").stdout.strip() == b"30"
    assert b"m:00" in run_kvtool("scan", db, "--cf", "meta").stdout
    missing = run_kvtool("export", db, "--cf", "nope")
    assert missing.returncode == 2 and b"nope" in missing.stderr


def test_stats_file_and_quiet(text_db: Path, tmp_path: Path) -> None:
    stats_path = tmp_path / "stats.json"
    result = run_kvtool("export", text_db, "-q", "--stats-file", stats_path, "--prefix", "b:")
    assert result.returncode == 0 and result.stderr == b""
    stats = orjson.loads(stats_path.read_bytes())
    assert stats["records"] == 1000 and stats["cursor"] is None
    assert stats["key_bytes"] == 6000
    for key in ("value_bytes", "pages", "elapsed_s", "records_per_s", "mb_per_s", "rate_wait_s"):
        assert key in stats


def test_unwritable_output_is_74_not_a_traceback(small_db: Path, tmp_path: Path) -> None:
    # A missing directory is a bad -o (usage, 2, before any work), as for --stats-file.
    missing_dir = run_kvtool("export", small_db, "-o", tmp_path / "no" / "such" / "x.jsonl")
    assert missing_dir.returncode == 2, missing_dir.stderr
    assert b"does not exist" in missing_dir.stderr and missing_dir.stderr.count(b"\n") == 1
    if Path("/dev/full").exists():
        with open("/dev/full", "wb") as full:
            proc = subprocess.run(
                [kvtool_executable(), "export", str(small_db), "-q", "--limit", "2"],
                stdout=full,
                stderr=subprocess.PIPE,
                check=False,
            )
        assert proc.returncode == 74, proc.stderr
        assert b"No space left" in proc.stderr and b"Traceback" not in proc.stderr
