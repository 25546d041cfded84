"""`kvtool import` and `kvtool delete-range`: round trips checked by ldb, bounded batches, bad
input that stops (or is skipped) with exactly the committed records in the database."""

from __future__ import annotations

import gzip
import json
import random
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from kvtool.engine import OpenMode, open_db
from kvtool.formats.records import encoder

from .conftest import dir_state, make_db, require_tool, run_kvtool

# -- helpers --------------------------------------------------------------------------------------


def ldb_scan_hex(db: Path, cf: str | None = None) -> list[tuple[bytes, bytes]]:
    """Every record of `db` as Debian's ldb (an independent reader) sees it."""
    ldb = require_tool("ldb")
    args = [ldb, f"--db={db}", "scan", "--hex"]
    if cf:
        args.insert(2, f"--column_family={cf}")
    out = subprocess.run(args, capture_output=True, check=True).stdout.decode()
    records = []
    for line in out.splitlines():
        key, _, value = line.partition(" : ")
        records.append((bytes.fromhex(key[2:]), bytes.fromhex(value[2:])))
    return records


def read_all(db: Path, cf: str | None = None) -> list[tuple[bytes, bytes]]:
    with open_db(db, OpenMode.READ_ONLY) as handle:
        return [record for batch in handle.batches(cf) for record in batch]


def to_jsonl(records: list[tuple[bytes, bytes]], key_fmt: str, value_fmt: str) -> bytes:
    """What `export` writes: one {"key", "value"} object per line, fields encoded per format."""
    enc_key, enc_value = encoder(key_fmt), encoder(value_fmt)
    return b"".join(
        orjson.dumps({"key": enc_key(k), "value": enc_value(v)}) + b"\n" for k, v in records
    )


def stats_of(result: subprocess.CompletedProcess[bytes]) -> dict[str, object]:
    """The --stats json line of a run (the last line of stderr)."""
    parsed: dict[str, object] = json.loads(result.stderr.decode().strip().splitlines()[-1])
    return parsed


def binary_records(n: int = 600, seed: int = 4) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    records = {
        b"": b"empty key",
        b"\x00": b"nul key",
        b"a\nb": b"newline\nin value",
        b"\xff\xfe": b"\x80invalid utf8",
        b"plain": b"",
        "ünïcode".encode(): "välue ✓".encode(),
        b'quote"back\\slash': b"\t\r\x1b",
    }
    for _ in range(n):
        key = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 24)))
        records[key] = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    return sorted(records.items())


def text_records(n: int = 300) -> list[tuple[bytes, bytes]]:
    return [(f"key:{i:05d} ✓".encode(), f"välue {i}\nline two".encode()) for i in range(n)]


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, list[tuple[bytes, bytes]]]:
    records = binary_records()
    db = make_db(tmp_path / "src.db", dict(records))
    return db, records


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["batch", "sst"])
@pytest.mark.parametrize(
    ("key_fmt", "value_fmt", "kind"),
    [
        ("auto", "auto", "binary"),
        ("hex", "hex", "binary"),
        ("base64", "base64", "binary"),
        ("hex", "base64", "binary"),
        ("utf8", "utf8", "text"),
    ],
)
def test_roundtrip_is_byte_identical(
    tmp_path: Path, mode: str, key_fmt: str, value_fmt: str, kind: str
) -> None:
    records = binary_records() if kind == "binary" else text_records()
    src = make_db(tmp_path / "src.db", dict(records))
    exported = to_jsonl(read_all(src), key_fmt, value_fmt)
    dest = tmp_path / "dest.db"
    result = run_kvtool(
        "import",
        "--create",
        "--mode",
        mode,
        "--key-format",
        key_fmt,
        "--value-format",
        value_fmt,
        "--batch-records",
        "97",
        "--stats",
        "json",
        dest,
        "-",
        input=exported,
    )
    assert result.returncode == 0, result.stderr
    assert stats_of(result)["records"] == len(records)
    assert to_jsonl(read_all(dest), key_fmt, value_fmt) == exported
    assert ldb_scan_hex(dest) == ldb_scan_hex(src) == records


def test_roundtrip_via_export(
    tmp_path: Path, source: tuple[Path, list[tuple[bytes, bytes]]]
) -> None:
    src, records = source
    for fmt in ("auto", "hex", "base64"):
        formats = ["--key-format", fmt, "--value-format", fmt]
        first = run_kvtool("export", *formats, src)
        assert first.returncode == 0, first.stderr
        dest = tmp_path / f"dest-{fmt}.db"
        loaded = run_kvtool("import", "--create", *formats, dest, "-", input=first.stdout)
        assert loaded.returncode == 0, loaded.stderr
        second = run_kvtool("export", *formats, dest)
        assert second.returncode == 0, second.stderr
        assert second.stdout == first.stdout
        assert ldb_scan_hex(dest) == ldb_scan_hex(src) == records


def test_gzip_export_imports_as_it_was_written(
    tmp_path: Path, source: tuple[Path, list[tuple[bytes, bytes]]]
) -> None:
    src, records = source
    archive = tmp_path / "all.jsonl.gz"
    assert run_kvtool("export", "-q", src, "-o", archive).returncode == 0
    assert archive.read_bytes()[:2] == b"\x1f\x8b"  # gzip's magic: it really is compressed
    dest = tmp_path / "dest.db"
    loaded = run_kvtool("import", "--create", "-q", dest, archive)
    assert loaded.returncode == 0, loaded.stderr
    assert read_all(dest) == records


@pytest.mark.parametrize("name", ["in.jsonl.gz", "in.jsonl"])
def test_truncated_gzip_says_what_was_committed_and_resumes(tmp_path: Path, name: str) -> None:
    """gzip is known by its magic bytes, not its name: the resume hint reads through zcat."""
    lines = [b'{"key": "k%04d", "value": "v"}\n' % i for i in range(3000)]
    whole = gzip.compress(b"".join(lines), compresslevel=0)  # stored: truncation keeps lines
    damaged = tmp_path / name
    damaged.write_bytes(whole[: len(whole) // 2])
    db = tmp_path / "db"
    result = run_kvtool("import", "--create", "--batch-records", "100", db, damaged)
    assert result.returncode == 65, result.stderr
    message = result.stderr.decode()
    assert message.count("\n") == 1 and "cannot read the input" in message, message
    match = re.search(r"committed (\d+) records from lines 1-(\d+)", message)
    assert match and match.group(1) == match.group(2) and int(match.group(1)) % 100 == 0, message
    committed = int(match.group(1))
    assert f"zcat {damaged} | tail -n +{committed + 1} | kvtool import {db} -" in message
    assert len(read_all(db)) == committed
    resumed = run_kvtool("import", db, "-", input=b"".join(lines[committed:]))
    assert resumed.returncode == 0, resumed.stderr
    assert len(read_all(db)) == len(lines)


def test_import_reads_a_file_and_reports_stats(tmp_path: Path) -> None:
    records = text_records(250)
    data = tmp_path / "in.jsonl"
    data.write_bytes(to_jsonl(records, "auto", "auto"))
    stats_file = tmp_path / "stats.json"
    result = run_kvtool(
        "import",
        "--create",
        "--batch-records",
        "100",
        "--stats-file",
        stats_file,
        tmp_path / "db",
        data,
    )
    assert result.returncode == 0, result.stderr
    assert b"kvtool: import" in result.stderr
    written = json.loads(stats_file.read_text())
    assert written["records"] == 250
    assert written["batches"] == 3
    assert written["lines"] == 250
    assert read_all(tmp_path / "db") == records
    assert result.stdout == b""


def test_batch_bytes_bounds_each_batch(tmp_path: Path) -> None:
    records = [(b"k%04d" % i, b"v" * 95) for i in range(100)]  # 100 bytes per record
    result = run_kvtool(
        "import",
        "--create",
        "--batch-bytes",
        "1000",
        "--stats",
        "json",
        tmp_path / "db",
        input=to_jsonl(records, "auto", "auto"),
    )
    assert result.returncode == 0, result.stderr
    assert stats_of(result)["batches"] == 10
    assert read_all(tmp_path / "db") == records


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    result = run_kvtool(
        "import", "--create", "-q", tmp_path / "db", input=to_jsonl(text_records(3), "auto", "auto")
    )
    assert result.returncode == 0
    assert result.stderr == b"" and result.stdout == b""


@pytest.mark.parametrize("mode", ["batch", "sst"])
def test_last_duplicate_wins(tmp_path: Path, mode: str) -> None:
    lines = [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"c", b"1"), (b"a", b"3"), (b"b", b"2")]
    result = run_kvtool(
        "import",
        "--create",
        "--mode",
        mode,
        "--batch-records",
        "2",
        tmp_path / "db",
        input=to_jsonl(lines, "auto", "auto"),
    )
    assert result.returncode == 0, result.stderr
    assert read_all(tmp_path / "db") == [(b"a", b"3"), (b"b", b"2"), (b"c", b"1")]


def test_sst_mode_external_sort_matches_batch_mode(tmp_path: Path) -> None:
    rng = random.Random(7)
    lines = [(b"key:%05d" % rng.randrange(3000), b"value-%d" % i) for i in range(5000)]
    data = to_jsonl(lines, "auto", "auto")
    sst = run_kvtool(
        "import",
        "--create",
        "--mode",
        "sst",
        "--sort-memory",
        "64KB",
        "--tmp-dir",
        tmp_path,
        "--stats",
        "json",
        tmp_path / "sst.db",
        input=data,
    )
    assert sst.returncode == 0, sst.stderr
    assert int(str(stats_of(sst)["sorted_runs"])) > 3  # the budget forced runs on disk
    batch = run_kvtool("import", "--create", tmp_path / "batch.db", input=data)
    assert batch.returncode == 0, batch.stderr
    expected = sorted(dict(lines).items())
    assert read_all(tmp_path / "sst.db") == read_all(tmp_path / "batch.db") == expected
    assert ldb_scan_hex(tmp_path / "sst.db") == expected
    # Sorted runs and SST files were temporary: nothing is left in --tmp-dir.
    assert not list(tmp_path.glob("kvtool-import-*"))


def test_sst_mode_into_existing_db_overrides_and_keeps_format(tmp_path: Path) -> None:
    db = make_db(tmp_path / "db", {b"a": b"old", b"m": b"old", b"z": b"old"})
    result = run_kvtool(
        "import",
        "--mode",
        "sst",
        db,
        input=to_jsonl([(b"m", b"new"), (b"b", b"new")], "auto", "auto"),
    )
    assert result.returncode == 0, result.stderr
    assert read_all(db) == [(b"a", b"old"), (b"b", b"new"), (b"m", b"new"), (b"z", b"old")]
    from kvtool.engine.format_safety import sst_format_versions

    assert set(sst_format_versions(db).values()) == {5}


def test_import_into_column_family(tmp_path: Path) -> None:
    db = make_db(tmp_path / "db", {b"a": b"default"})
    data = to_jsonl([(b"x", b"in cf")], "auto", "auto")
    missing = run_kvtool("import", "--cf", "events", db, input=data)
    assert missing.returncode == 2
    assert b"no column family 'events'" in missing.stderr
    for mode in ("batch", "sst"):
        result = run_kvtool("import", "--create", "--cf", "events", "--mode", mode, db, input=data)
        assert result.returncode == 0, result.stderr
    assert read_all(db, "events") == [(b"x", b"in cf")]
    assert read_all(db) == [(b"a", b"default")]
    assert ldb_scan_hex(db, "events") == [(b"x", b"in cf")]


def test_import_into_missing_db_without_create_creates_nothing(tmp_path: Path) -> None:
    result = run_kvtool("import", tmp_path / "nope", input=b'{"key":"a","value":"b"}\n')
    assert result.returncode == 66
    assert result.stderr.startswith(b"kvtool: error: no database at")
    assert not (tmp_path / "nope").exists()


def test_import_missing_input_file_is_usage_error(tmp_path: Path) -> None:
    db = make_db(tmp_path / "db", {b"a": b"1"})
    result = run_kvtool("import", db, tmp_path / "missing.jsonl")
    assert result.returncode == 2
    assert b"cannot read" in result.stderr


def test_import_into_busy_db_exits_75(
    tmp_path: Path, writer_process: Callable[[Path], subprocess.Popen[str]]
) -> None:
    db = make_db(tmp_path / "db", {b"a": b"1"})
    writer_process(db)
    result = run_kvtool("import", db, input=b'{"key":"b","value":"2"}\n')
    assert result.returncode == 75
    assert b"locked by another process" in result.stderr


def test_blank_lines_and_extra_fields_are_ignored(tmp_path: Path) -> None:
    data = b'\n{"key":"a","value":"1","note":"x"}\n   \n{"key":"b","value":"2"}\n\n'
    result = run_kvtool("import", "--create", "--stats", "json", tmp_path / "db", input=data)
    assert result.returncode == 0, result.stderr
    assert read_all(tmp_path / "db") == [(b"a", b"1"), (b"b", b"2")]
    assert stats_of(result)["lines"] == 5


def test_last_line_without_newline_is_accepted_when_complete(tmp_path: Path) -> None:
    data = b'{"key":"a","value":"1"}\n{"key":"b","value":"2"}'
    result = run_kvtool("import", "--create", tmp_path / "db", input=data)
    assert result.returncode == 0, result.stderr
    assert read_all(tmp_path / "db") == [(b"a", b"1"), (b"b", b"2")]


def test_value_format_json_stores_compact_json(tmp_path: Path) -> None:
    data = b'{"key":"a","value":{"n": 1, "l": [1, 2]}}\n{"key":"b","value":"s"}\n'
    result = run_kvtool("import", "--create", "--value-format", "json", tmp_path / "db", input=data)
    assert result.returncode == 0, result.stderr
    assert read_all(tmp_path / "db") == [(b"a", b'{"n":1,"l":[1,2]}'), (b"b", b'"s"')]


# -- bad input ------------------------------------------------------------------------------------

GOOD = [(b"key:%02d" % i, b"value-%d" % i) for i in range(1, 12)]


def _lines_with_bad(bad: bytes, at: int, *, last: bool = False) -> bytes:
    """GOOD as JSONL (hex keys and values) with `bad` as line `at` (1-based)."""
    lines = to_jsonl(GOOD, "hex", "hex").splitlines(keepends=True)
    if last:
        return b"".join(lines[: at - 1]) + bad
    return b"".join([*lines[: at - 1], bad, *lines[at - 1 :]])


BAD_LINES = {
    "malformed-json": (b'{"key": "6b", "value": \n', "not valid JSON"),
    "not-an-object": (b'["6b", "76"]\n', "a record must be a JSON object"),
    "missing-value": (b'{"key": "6b"}\n', 'the record has no "value" field'),
    "missing-key": (b'{"value": "76"}\n', 'the record has no "key" field'),
    "bad-hex": (b'{"key": "zz", "value": "76"}\n', "is not valid hex"),
    "not-a-string": (b'{"key": 12, "value": "76"}\n', "must be a string in hex format"),
    "invalid-utf8": (b'{"key": "6b\xff", "value": "76"}\n', "not valid JSON"),
}


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_bad_line_stops_after_last_complete_batch(tmp_path: Path, kind: str) -> None:
    bad, reason = BAD_LINES[kind]
    db = make_db(tmp_path / "db", {b"existing": b"kept"})
    data = _lines_with_bad(bad, 8)
    result = run_kvtool(
        "import",
        "--key-format",
        "hex",
        "--value-format",
        "hex",
        "--batch-records",
        "3",
        db,
        "-",
        input=data,
    )
    assert result.returncode == 65, result.stderr
    message = result.stderr.decode()
    assert message.count("\n") == 1 and message.startswith("kvtool: error: line 8: ")
    assert reason in message
    # Lines 1-6 form two complete batches; line 7 was in the unfinished batch: not written.
    assert "committed 6 records from lines 1-6, nothing after line 6" in message
    assert "tail -n +7" in message
    assert read_all(db) == sorted([(b"existing", b"kept"), *GOOD[:6]])
    # Resuming as told, with the bad line fixed, completes the import.
    fixed = b"".join(data.splitlines(keepends=True)[6:]).replace(bad, b"")
    resumed = run_kvtool("import", "--key-format", "hex", "--value-format", "hex", db, input=fixed)
    assert resumed.returncode == 0, resumed.stderr
    assert read_all(db) == sorted([(b"existing", b"kept"), *GOOD])


def test_bad_base64_in_auto_format(tmp_path: Path) -> None:
    db = make_db(tmp_path / "db", {})
    data = b'{"key":"a","value":"1"}\n{"key":{"base64":"!!"},"value":"2"}\n'
    result = run_kvtool("import", db, input=data)
    assert result.returncode == 65
    assert b"line 2: key '!!' is not valid base64; nothing was committed" in result.stderr
    assert read_all(db) == []


def test_truncated_last_line(tmp_path: Path) -> None:
    db = make_db(tmp_path / "db", {})
    data = _lines_with_bad(b'{"key": "6b", "val', 5, last=True)
    result = run_kvtool(
        "import", "--key-format", "hex", "--value-format", "hex", "--batch-records", "2", db,
        input=data,
    )  # fmt: skip
    assert result.returncode == 65
    message = result.stderr.decode()
    assert "line 5: truncated record" in message
    assert "committed 4 records from lines 1-4" in message
    assert read_all(db) == GOOD[:4]


def test_bad_first_line_commits_nothing(tmp_path: Path) -> None:
    db = make_db(tmp_path / "db", {b"existing": b"kept"})
    before = ldb_scan_hex(db)
    result = run_kvtool("import", db, input=b"nope\n" + to_jsonl(GOOD, "auto", "auto"))
    assert result.returncode == 65
    assert b"line 1: not valid JSON" in result.stderr
    assert b"nothing was committed" in result.stderr
    assert ldb_scan_hex(db) == before


def test_sst_mode_bad_line_commits_nothing(tmp_path: Path) -> None:
    db = make_db(tmp_path / "db", {b"existing": b"kept"})
    result = run_kvtool(
        "import",
        "--mode",
        "sst",
        "--key-format",
        "hex",
        "--value-format",
        "hex",
        "--tmp-dir",
        tmp_path,
        db,
        input=_lines_with_bad(b"{oops\n", 9),
    )
    assert result.returncode == 65
    assert b"line 9: not valid JSON" in result.stderr
    assert b"nothing was committed" in result.stderr
    assert read_all(db) == [(b"existing", b"kept")]
    assert not list(tmp_path.glob("kvtool-import-*"))


def test_on_error_skip_reports_and_imports_the_rest(tmp_path: Path) -> None:
    db = make_db(tmp_path / "db", {})
    good = to_jsonl(GOOD, "auto", "auto").splitlines(keepends=True)
    bad_at = {2, 5, 9}
    lines: list[bytes] = []
    for n in range(1, len(good) + len(bad_at) + 1):
        lines.append(b"{broken\n" if n in bad_at else good.pop(0))
    result = run_kvtool(
        "import", "--on-error", "skip", "--batch-records", "2", "--stats", "json", db,
        input=b"".join(lines) + b'{"key": "x"',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stats = stats_of(result)
    assert stats["skipped_lines"] == 4
    assert stats["skipped_at"] == "2, 5, 9, 15"
    assert str(stats["first_error"]).startswith("line 2: not valid JSON")
    assert stats["records"] == len(GOOD)
    assert read_all(db) == GOOD


def test_on_error_skip_names_only_the_first_lines(tmp_path: Path) -> None:
    data = b"bad\n" * 25 + b'{"key":"a","value":"1"}\n'
    result = run_kvtool(
        "import", "--create", "--on-error", "skip", "--stats", "json", tmp_path / "db", input=data
    )
    assert result.returncode == 0, result.stderr
    stats = stats_of(result)
    assert stats["skipped_lines"] == 25
    assert stats["skipped_at"] == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ..."


def test_key_format_json_is_refused(tmp_path: Path) -> None:
    result = run_kvtool(
        "import", "--create", "--key-format", "json", tmp_path / "db", input=b'{"key":1}\n'
    )
    assert result.returncode == 2
    # A choice the option never offers (help and completion list auto utf8 hex base64).
    assert b"'--key-format': 'json' is not one of 'auto', 'utf8', 'hex', 'base64'" in result.stderr
    assert not (tmp_path / "db").exists()


# -- delete-range ---------------------------------------------------------------------------------


@pytest.fixture
def hundred(tmp_path: Path) -> Path:
    return make_db(tmp_path / "db", {b"key:%03d" % i: b"v%d" % i for i in range(100)})


def test_delete_range_dry_run_counts_and_changes_nothing(hundred: Path) -> None:
    before = dir_state(hundred)
    result = run_kvtool(
        "delete-range", "--dry-run", "--start", "key:010", "--end", "key:030", "--stats", "json",
        hundred,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stats = stats_of(result)
    assert stats["records_in_range"] == 20
    assert stats["deleted"] == 0
    assert dir_state(hundred) == before


def test_delete_range_deletes_exactly_the_range(hundred: Path) -> None:
    result = run_kvtool(
        "delete-range", "--start", "key:010", "--end", "key:030", "--stats", "json", hundred
    )
    assert result.returncode == 0, result.stderr
    assert stats_of(result)["deleted"] == 20
    expected = [(b"key:%03d" % i, b"v%d" % i) for i in range(100) if not 10 <= i < 30]
    assert read_all(hundred) == expected
    assert ldb_scan_hex(hundred) == expected
    again = run_kvtool(
        "delete-range", "--start", "key:010", "--end", "key:030", "--stats", "json", hundred
    )
    assert stats_of(again)["deleted"] == 0


def test_delete_range_hex_keys_and_column_family(tmp_path: Path) -> None:
    db = make_db(
        tmp_path / "db",
        {b"\x00\x01": b"d"},
        cf={"events": {b"\x00\x01": b"a", b"\x00\xff": b"b", b"\x01": b"c"}},
    )
    result = run_kvtool(
        "delete-range", "--cf", "events", "--key-format", "hex", "--start", "0001", "--end",
        "01", "--stats", "json", db,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert stats_of(result)["deleted"] == 2
    assert read_all(db, "events") == [(b"\x01", b"c")]
    assert read_all(db) == [(b"\x00\x01", b"d")]


@pytest.mark.parametrize(("start", "end"), [("b", "a"), ("a", "a")])
def test_delete_range_refuses_empty_or_reversed_range(hundred: Path, start: str, end: str) -> None:
    before = dir_state(hundred)
    result = run_kvtool("delete-range", "--start", start, "--end", end, hundred)
    assert result.returncode == 2
    assert b"--start must sort before --end" in result.stderr
    assert dir_state(hundred) == before


def test_delete_range_requires_both_bounds(hundred: Path) -> None:
    result = run_kvtool("delete-range", "--start", "a", hundred)
    assert result.returncode == 2
    assert re.search(rb"Missing option '--end'", result.stderr)


# -- signals and handles --------------------------------------------------------------------------


def _count_records(db: Path) -> int:
    try:
        return len(read_all(db))
    except Exception:  # the writer may be between files; try again
        return -1


def _start_import(*args: str | Path) -> subprocess.Popen[bytes]:
    from .conftest import kvtool_executable

    return subprocess.Popen(
        [kvtool_executable(), "import", *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_with_committed_batches_and_resume_line(
    tmp_path: Path, signum: int, code: int
) -> None:
    db = make_db(tmp_path / "db", {})
    proc = _start_import("--batch-records", "2", "--key-format", "hex", "--value-format", "hex", db)
    assert proc.stdin is not None
    lines = to_jsonl(GOOD, "hex", "hex").splitlines(keepends=True)
    proc.stdin.write(b"".join(lines[:5]))
    proc.stdin.flush()
    # Lines 1-4 are two complete batches; line 5 waits in an unfinished one.
    _wait_until(lambda: _count_records(db) == 4, "two committed batches")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    message = err.decode()
    assert message.count("\n") == 1
    assert "committed 4 records from lines 1-4, nothing after line 4" in message
    assert message.startswith("kvtool: error: interrupted")
    assert "tail -n +5" in message
    assert read_all(db) == GOOD[:4]


def test_signal_in_sst_mode_imports_nothing_and_cleans_up(tmp_path: Path) -> None:
    db = make_db(tmp_path / "db", {b"existing": b"kept"})
    work = tmp_path / "work"
    work.mkdir()
    proc = _start_import("--mode", "sst", "--tmp-dir", work, db)
    assert proc.stdin is not None
    proc.stdin.write(to_jsonl(GOOD, "auto", "auto"))
    proc.stdin.flush()
    _wait_until(lambda: any(work.iterdir()), "the sort work directory")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert b"interrupted by SIGTERM; nothing was imported" in err
    assert read_all(db) == [(b"existing", b"kept")]
    assert not any(work.iterdir())


@pytest.mark.parametrize("mode", ["batch", "sst"])
def test_no_handle_left_open_on_success_or_bad_input(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "db"
    good = to_jsonl(GOOD, "auto", "auto")
    for data, code in ((good, 0), (good + b"bad\n", 65)):
        result = run_kvtool(
            "--trace-handles", "import", "--create", "--mode", mode, "--tmp-dir", tmp_path, db,
            input=data,
        )  # fmt: skip
        assert result.returncode == code, result.stderr
        assert b"left open" not in result.stderr
        assert b"kvtool: handle release db#" in result.stderr


def test_many_sort_runs_are_merged_in_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from kvtool.ops import import_sst, importer

    monkeypatch.setattr(import_sst, "_MERGE_FANIN", 3)  # 20+ runs: two merge passes
    rng = random.Random(11)
    lines = [(b"k%04d" % rng.randrange(1500), b"v%d" % i) for i in range(3000)]
    options = importer.ImportOptions(
        mode=importer.ImportMode.SST, sort_memory=20_000, create=True, tmp_dir=tmp_path
    )
    stats = importer.import_records(
        tmp_path / "db", io.BytesIO(to_jsonl(lines, "auto", "auto")), options
    )
    assert stats.sorted_runs > 9
    assert stats.records == 3000
    assert read_all(tmp_path / "db") == sorted(dict(lines).items())
    assert not list(tmp_path.glob("kvtool-import-*"))


@pytest.mark.parametrize(
    "command",
    [
        ["import", "--wait-lock", "300ms"],
        ["delete-range", "--start", "a", "--end", "z", "--wait-lock", "300ms"],
    ],
)
def test_wait_lock_gives_up_with_75(
    tmp_path: Path,
    writer_process: Callable[[Path], subprocess.Popen[str]],
    command: list[str],
) -> None:
    db = make_db(tmp_path / "db", {b"a": b"1"})
    writer_process(db)
    result = run_kvtool(*command, db, input=b'{"key":"b","value":"2"}\n')
    assert result.returncode == 75, result.stderr
    assert b"gave up after waiting 0.3s" in result.stderr
