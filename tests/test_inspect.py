"""`sst`, `wal`, `manifest` and `property` against the tools of the programs that wrote the files:
Debian's `sst_dump` and `ldb` 7.8 (and RocksDB 6.14 as a writer), field by field."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from kvtool.ondisk.coding import VALUE_TYPES

from .conftest import dir_state, require_tool, run_kvtool
from .oracles import (
    Spec,
    delete,
    ldb_load,
    ldb_ok,
    merge,
    put,
    rocksdb614,
    rocksdb614_write,
    rocksdict_script,
)

TYPE_NUMBER = {name: number for number, name in VALUE_TYPES.items()}


def kv_json(*args: str | Path) -> list[dict[str, Any]]:
    result = run_kvtool(*args)
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def sst_dump(*args: str | Path) -> str:
    result = __import__("subprocess").run(
        [require_tool("sst_dump"), *map(str, args)], capture_output=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return str(result.stdout.decode())


def sst_dump_scan(path: Path) -> list[tuple[str, int, int, str]]:
    out = sst_dump(f"--file={path}", "--command=scan", "--output_hex")
    rows = []
    for line in out.splitlines():
        m = re.match(r"^'([0-9A-F]*)' seq:(\d+), type:(\d+) => ([0-9A-F]*)$", line.strip())
        if m:
            rows.append((m[1].lower(), int(m[2]), int(m[3]), m[4].lower()))
    return rows


def sst_dump_raw(path: Path, scratch: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Every entry of the data blocks (deletions too, which scan leaves out) and the range
    deletions, from `sst_dump --command=raw` on a copy (it writes NAME_dump.txt beside it)."""
    scratch.mkdir(exist_ok=True)
    copy = scratch / path.name
    shutil.copyfile(path, copy)
    sst_dump(f"--file={copy}", "--command=raw")
    text = (scratch / f"{path.stem}_dump.txt").read_text(errors="replace")
    points: list[tuple[str, str]] = []
    ranges: list[tuple[str, str]] = []
    section = None
    for line in text.splitlines():
        if line.startswith("Data Block #"):
            section = points
        elif line.startswith("Range deletions:"):
            section = ranges
        elif line and not line.startswith((" ", "-")):
            section = None
        elif section is not None and line.strip().startswith("HEX "):
            key, _, value = line.strip()[4:].strip().partition(":")
            section.append((key.strip().lower(), value.strip().lower()))
    return points, ranges


def sst_dump_properties(path: Path) -> dict[str, str]:
    out = sst_dump(f"--file={path}", "--show_properties")
    props = {}
    for line in out.splitlines():
        label, sep, value = line.strip().partition(": ")
        if sep:
            props[label] = value.strip()
    return props


@pytest.fixture
def ldb_db(tmp_path: Path) -> Path:
    """An ldb 7.8 database: 300 records in 512-byte blocks, a range deletion and a point
    deletion each in an SST file of their own, and a put left in the WAL."""
    db = tmp_path / "ldb.db"
    flags = ("--auto_compaction=false", "--block_size=512")
    records = [(b"key%05d" % i, b"value-%d-" % i * 5) for i in range(300)]
    ldb_load(db, records, *flags)
    ldb_ok(f"--db={db}", *flags, "deleterange", "key00010", "key00020")
    ldb_ok(f"--db={db}", *flags, "delete", "key00005")
    ldb_ok(f"--db={db}", *flags, "put", "--hex", "0x00ff", "0x0102")
    ldb_ok(f"--db={db}", *flags, "put", "wal-key", "wal-value")
    return db


def test_sst_records_equal_sst_dump_scan(ldb_db: Path, tmp_path: Path) -> None:
    files = sorted(ldb_db.glob("*.sst"))
    assert len(files) >= 3
    seen_types = set()
    for path in files:
        ours = kv_json("sst", "--records", "--key-format", "hex", "--value-format", "hex", path)
        points = [r for r in ours if r["type"] != "delete_range"]
        # scan shows what a read sees (no tombstones), with sequence numbers and types ...
        assert [
            (r["key"], r["sequence"], TYPE_NUMBER[r["type"]], r.get("value", ""))
            for r in points
            if r["type"] in ("put", "merge")
        ] == sst_dump_scan(path)
        # ... and raw shows every entry and the range deletions, without them.
        raw_points, raw_ranges = sst_dump_raw(path, tmp_path / "raw")
        assert [(r["key"], r.get("value", "")) for r in points] == raw_points
        assert [(r["key"], r["end"]) for r in ours if r["type"] == "delete_range"] == raw_ranges
        seen_types |= {r["type"] for r in ours}
    assert {"put", "delete", "delete_range"} <= seen_types


@pytest.mark.parametrize("compression", ["snappy", "zlib", "bzip2", "lz4", "lz4hc", "no"])
def test_sst_reads_each_codec_like_sst_dump(tmp_path: Path, compression: str) -> None:
    db = ldb_load(
        tmp_path / "c.db",
        [(b"key%05d" % i, b"value-%d-" % i * 7) for i in range(300)],
        f"--compression_type={compression}",
        "--block_size=512",
    )
    (path,) = db.glob("*.sst")
    ours = kv_json("sst", "--records", "--key-format", "hex", "--value-format", "hex", path)
    assert [
        (r["key"], r["sequence"], TYPE_NUMBER[r["type"]], r["value"]) for r in ours
    ] == sst_dump_scan(path)
    (summary,) = kv_json("sst", "--json", path)
    assert summary["data_blocks"] > 10
    assert summary["compression"] == sst_dump_properties(path)["SST file compression algo"]


def test_sst_zstd_blocks_are_unavailable_not_corrupt(tmp_path: Path) -> None:
    db = ldb_load(
        tmp_path / "z.db", [(b"k%d" % i, b"v" * 50) for i in range(100)], "--compression_type=zstd"
    )
    (path,) = db.glob("*.sst")
    result = run_kvtool("sst", "--records", path)
    assert result.returncode == 69, result.stderr
    assert b"ZSTD" in result.stderr
    (summary,) = kv_json("sst", "--json", path)  # the properties are still shown
    assert summary["entries"] == 100


def test_sst_properties_equal_sst_dump(ldb_db: Path) -> None:
    for path in sorted(ldb_db.glob("*.sst")):
        assert_properties_equal_sst_dump(path)


def assert_properties_equal_sst_dump(path: Path, ours: dict[str, Any] | None = None) -> None:
    """`kvtool sst --json FILE` (or its line `ours`) against `sst_dump --show_properties`,
    field by field."""
    if ours is None:
        (ours,) = kv_json("sst", "--json", path)
    theirs = sst_dump_properties(path)
    assert ours["entries"] == int(theirs["# entries"])
    assert ours["deletions"] == int(theirs["# deletions"])
    assert ours["merge_operands"] == int(theirs["# merge operands"])
    assert ours["range_deletions"] == int(theirs["# range deletions"])
    assert ours["data_blocks"] == int(theirs["# data blocks"])
    assert ours["raw_key_size"] == int(theirs["raw key size"])
    assert ours["raw_value_size"] == int(theirs["raw value size"])
    assert ours["data_size"] == int(theirs["data block size"])
    assert ours["filter_size"] == int(theirs["filter block size"])
    index_label = next(k for k in theirs if k.startswith("index block size"))
    assert ours["index_size"] == int(theirs[index_label])
    assert str(ours["column_family_id"]) == theirs["column family ID"]
    assert ours["column_family"] == theirs["column family name"]
    assert ours["comparator"] == theirs["comparator name"]
    assert ours["merge_operator"] == theirs["merge operator name"]
    assert ours["prefix_extractor"] == theirs["prefix extractor name"]
    assert ours["compression"] == theirs["SST file compression algo"]
    assert ours["creation_time"] == int(theirs["creation time"])
    assert ours["file_size"] == path.stat().st_size


def test_sst_of_rocksdb614_with_merges_and_format_version(tmp_path: Path) -> None:
    spec = Spec(merge="stringappend", format_version=4, bloom_bits=10, prefix_len=3)
    db = rocksdb614_write(
        tmp_path / "614.db",
        [
            [put(b"abc%03d" % i, b"v%d" % i) for i in range(50)],
            [merge(b"abc001", b"m1"), merge(b"abc002", b"m2"), delete(b"abc003")],
        ],
        spec=spec,
    )
    files = sorted(db.glob("*.sst"))
    merges = 0
    for path in files:
        (ours,) = kv_json("sst", "--json", path)
        theirs = sst_dump_properties(path)
        assert ours["format_version"] == 4
        assert ours["checksum"] == "CRC32c"
        assert ours["merge_operands"] == int(theirs["# merge operands"])
        assert (
            ours["prefix_extractor"] == theirs["prefix extractor name"] == "rocksdb.FixedPrefix.3"
        )
        assert ours["filter_policy"] == theirs["filter policy name"]
        assert ours["filter_size"] == int(theirs["filter block size"]) > 0
        merges += ours["merge_operands"]
        records = kv_json("sst", "--records", "--key-format", "hex", "--value-format", "hex", path)
        assert [
            (r["key"], r["sequence"], TYPE_NUMBER[r["type"]], r.get("value", ""))
            for r in records
            if r["type"] != "delete"
        ] == sst_dump_scan(path)
    assert merges == 2


def parse_dump_wal(output: str) -> list[tuple[int, int, int, str]]:
    rows = []
    for line in output.splitlines()[1:]:
        seq, count, _size, offset, ops = line.split(",", 4)
        rows.append((int(seq), int(count), int(offset), " ".join(ops.split())))
    return rows


def our_wal_batches(rows: list[dict[str, Any]]) -> list[tuple[int, int, int, str]]:
    batches: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        batches.setdefault(row["offset"], []).append(row)
    out = []
    for offset, ops in batches.items():
        text = []
        for op in ops:
            part = f"{op['op'].upper()}({op['cf_id']}) : 0x{op['key'].upper()}"
            if "end" in op:
                part += f" 0x{op['end'].upper()}"
            if "value" in op:
                part += f" : 0x{op['value'].upper()}"
            text.append(part)
        out.append((ops[0]["batch_sequence"], len(ops), offset, " ".join(text)))
    return out


def test_wal_equals_ldb_dump_wal(tmp_path: Path) -> None:
    spec = Spec(column_families=("users",), merge="stringappend")
    db = rocksdb614_write(
        tmp_path / "w.db",
        [[put(b"base", b"1")]],
        wal=[
            put(b"a", b"1"),
            put(b"\x00\xff", b"\x01\x02", cf="users"),
            delete(b"base"),
            merge(b"m", b"x"),
        ],
        spec=spec,
    )
    (log,) = db.glob("*.log")
    theirs = parse_dump_wal(
        ldb_ok("dump_wal", f"--walfile={log}", "--print_value", "--header").decode()
    )
    rows = kv_json("wal", "--key-format", "hex", "--value-format", "hex", db)
    assert our_wal_batches(rows) == theirs
    assert {r["cf"] for r in rows} == {"default", "users"}
    assert [r["sequence"] for r in rows] == list(
        range(rows[0]["sequence"], rows[0]["sequence"] + 4)
    )


def test_wal_torn_tail_is_reported_and_exits_0(ldb_db: Path, tmp_path: Path) -> None:
    (log,) = ldb_db.glob("*.log")
    copy = tmp_path / "000099.log"
    data = log.read_bytes()
    copy.write_bytes(data + data[:10])  # a second record cut inside its payload
    result = run_kvtool("wal", copy)
    assert result.returncode == 0, result.stderr
    assert b"torn last record" in result.stderr
    assert [json.loads(x)["key"] for x in result.stdout.splitlines()] == ["wal-key"]


def test_wal_damage_before_the_end_is_exit_74_with_the_offset(ldb_db: Path, tmp_path: Path) -> None:
    (log,) = ldb_db.glob("*.log")
    data = bytearray(log.read_bytes())
    data[10] ^= 0xFF  # inside the first record's payload
    copy = tmp_path / "000098.log"
    copy.write_bytes(bytes(data) + b"\0" * (32768 - len(data)) + log.read_bytes())
    result = run_kvtool("wal", copy)
    assert result.returncode == 74, result.stderr
    assert b"damaged at byte 0: checksum mismatch" in result.stderr
    assert result.stderr.count(b"kvtool: error:") == 1
    assert len(result.stdout.splitlines()) == 1  # the intact second copy is still printed


def test_manifest_equals_ldb_manifest_dump(ldb_db: Path) -> None:
    out = assert_manifest_equals_ldb(ldb_db)
    (summary,) = kv_json("manifest", "--summary", ldb_db)
    live = {f["file_number"] for lv in summary["column_families"][0]["levels"] for f in lv["files"]}
    assert live == {int(p.stem) for p in ldb_db.glob("*.sst")}
    theirs_live = {int(n) for n in re.findall(r"^ (\d+):\d+\[", out, re.MULTILINE)}
    assert live == theirs_live


def assert_manifest_equals_ldb(db: Path) -> str:
    """`kvtool manifest DB` against `ldb manifest_dump --verbose --hex`: each edit's added and
    deleted files, last sequences, next file numbers and log numbers. Returns ldb's output."""
    manifest = db / (db / "CURRENT").read_text().strip()
    out = ldb_ok("manifest_dump", f"--path={manifest}", "--verbose", "--hex").decode()
    theirs_added = re.findall(
        r"AddFile: (\d+) (\d+) (\d+) '([0-9A-F]*)' seq:(\d+), type:(\d+) "
        r"\.\. '([0-9A-F]*)' seq:(\d+), type:(\d+)",
        out,
    )
    theirs_deleted = re.findall(r"DeleteFile: (\d+) (\d+)", out)
    theirs_last_seq = [int(x) for x in re.findall(r"LastSeq: (\d+)", out)]
    theirs_next_file = [int(x) for x in re.findall(r"NextFileNumber: (\d+)", out)]
    theirs_log = [int(x) for x in re.findall(r"  LogNumber: (\d+)", out)]
    edits = kv_json("manifest", "--key-format", "hex", db)
    ours_added = [
        (
            str(f["level"]),
            str(f["file_number"]),
            str(f["file_size"]),
            f["smallest"]["key"].upper(),
            str(f["smallest"]["sequence"]),
            str(TYPE_NUMBER[f["smallest"]["type"]]),
            f["largest"]["key"].upper(),
            str(f["largest"]["sequence"]),
            str(TYPE_NUMBER[f["largest"]["type"]]),
        )
        for e in edits
        for f in e.get("added", [])
    ]
    assert ours_added == theirs_added
    assert len(ours_added) >= 4
    ours_deleted = [
        (str(d["level"]), str(d["file_number"])) for e in edits for d in e.get("deleted", [])
    ]
    assert ours_deleted == theirs_deleted
    assert [e["last_sequence"] for e in edits if "last_sequence" in e] == theirs_last_seq
    assert [e["next_file_number"] for e in edits if "next_file_number" in e] == theirs_next_file
    assert [e["log_number"] for e in edits if "log_number" in e] == theirs_log
    return out


def test_manifest_names_column_families(tmp_path: Path) -> None:
    db = rocksdb614_write(
        tmp_path / "cf.db",
        [[put(b"a", b"1"), put(b"b", b"2", cf="users")]],
        spec=Spec(column_families=("users",)),
    )
    (summary,) = kv_json("manifest", "--summary", db)
    by_name = {cf["name"]: cf for cf in summary["column_families"]}
    assert set(by_name) == {"default", "users"}
    assert by_name["users"]["levels"][0]["files"][0]["smallest"]["key"] == "b"


def test_torn_manifest_tail_is_exit_0(ldb_db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    shutil.copytree(ldb_db, copy)
    (manifest,) = copy.glob("MANIFEST-*")
    data = manifest.read_bytes()
    manifest.write_bytes(data[:-3])
    result = run_kvtool("manifest", copy)
    assert result.returncode == 0, result.stderr
    assert b"torn last record" in result.stderr
    assert len(result.stdout.splitlines()) == len(kv_json("manifest", ldb_db)) - 1


def test_reading_commands_leave_the_directory_as_it_was(ldb_db: Path) -> None:
    before = dir_state(ldb_db)
    sst = sorted(ldb_db.glob("*.sst"))
    for args in (
        ("sst", *sst),
        ("sst", "--records", *sst),
        ("wal", ldb_db),
        ("manifest", ldb_db),
        ("manifest", "--summary", ldb_db),
        ("property", ldb_db, "rocksdb.stats"),
    ):
        result = run_kvtool(*args)
        assert result.returncode == 0, (args, result.stderr)
    assert dir_state(ldb_db) == before


def test_property(ldb_db: Path) -> None:
    stats = run_kvtool("property", ldb_db, "rocksdb.stats")
    assert stats.returncode == 0 and b"Compaction Stats" in stats.stdout
    keys = run_kvtool("property", ldb_db, "rocksdb.num-entries-active-mem-table")
    assert keys.returncode == 0 and keys.stdout.strip().isdigit()
    tables = kv_json("property", ldb_db, "--tables")
    assert sorted(Path(t["file"]).name for t in tables) == sorted(
        p.name for p in ldb_db.glob("*.sst")
    )
    for table in tables:
        theirs = sst_dump_properties(Path(table["file"]))
        assert table["entries"] == int(theirs["# entries"])
        assert table["deletions"] == int(theirs["# deletions"])
    neither = run_kvtool("property", ldb_db)
    assert neither.returncode == 2
    unknown = run_kvtool("property", ldb_db, "rocksdb.no-such-property")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith(b"kvtool: error:")


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sst"
    junk.write_bytes(b"x" * 100)
    for args, code in (
        (("sst", junk), 74),
        (("sst", tmp_path / "missing.sst"), 66),
        (("wal", tmp_path / "missing"), 66),
        (("manifest", tmp_path), 66),
    ):
        result = run_kvtool(*args)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith(b"kvtool: error:")
        assert b"Traceback" not in result.stderr


def test_wal_fragments_across_blocks_and_tail(tmp_path: Path) -> None:
    big = bytes(range(256)) * 400  # 100 KiB: FIRST, MIDDLE and LAST fragments
    db = tmp_path / "big.db"
    rocksdb614(  # the values are made in the writer: too long for its command line
        """
        db = open_db(sys.argv[1], {})
        big = bytes(range(256)) * 400
        db.put(b"big", big)
        db.put(b"after", b"small")
        db.put(b"big2", big[::-1])
        db.close()
        """,
        db,
    )
    (log,) = db.glob("*.log")
    theirs = parse_dump_wal(
        ldb_ok("dump_wal", f"--walfile={log}", "--print_value", "--header").decode()
    )
    rows = kv_json("wal", "--key-format", "hex", "--value-format", "hex", log)
    assert our_wal_batches(rows) == theirs
    assert bytes.fromhex(rows[0]["value"]) == big
    tail = kv_json("wal", "--tail", "1", "--value-format", "hex", db)
    assert [(r["key"], bytes.fromhex(r["value"])) for r in tail] == [("big2", big[::-1])]


def test_sst_format_version_6_properties_equal_rocksdb_aggregate(tmp_path: Path) -> None:
    """rocksdict (RocksDB 9.8) writes format_version 6, which Debian's sst_dump cannot read:
    the oracle is RocksDB's own rocksdb.aggregated-table-properties, read by the writer."""
    db = tmp_path / "v6.db"
    out = rocksdict_script(
        """
        path = sys.argv[1]
        db = rd.Rdict(path, rd.Options(raw_mode=True))
        for i in range(500):
            db.put(b"k%04d" % i, b"v" * (i % 40))
        db.flush()
        db.delete(b"k0001")
        db.delete_range(b"k0100", b"k0200")
        db.flush()
        print(db.property_value("rocksdb.aggregated-table-properties"))
        db.close()
        """,
        db,
    )
    theirs = {}
    for part in out.split(";"):
        name, _, value = part.strip().partition("=")
        theirs[name.strip()] = value.strip()
    summaries = [kv_json("sst", "--json", p)[0] for p in sorted(db.glob("*.sst"))]
    assert {s["format_version"] for s in summaries} == {6}
    assert sum(s["entries"] for s in summaries) == int(theirs["# entries"])
    assert sum(s["deletions"] for s in summaries) == int(theirs["# deletions"])
    assert sum(s["range_deletions"] for s in summaries) == int(theirs["# range deletions"])
    assert sum(s["raw_key_size"] for s in summaries) == int(theirs["raw key size"])
    assert sum(s["raw_value_size"] for s in summaries) == int(theirs["raw value size"])
    assert sum(s["data_size"] for s in summaries) == int(theirs["data block size"])
    assert sum(s["data_blocks"] for s in summaries) == int(theirs["# data blocks"])
    records = [r for p in sorted(db.glob("*.sst")) for r in kv_json("sst", "--records", p)]
    assert sum(r["type"] == "put" for r in records) == 500
    assert [(r["key"], r["end"]) for r in records if r["type"] == "delete_range"] == [
        ("k0100", "k0200")
    ]


def test_wal_range_deletions_and_entities(tmp_path: Path) -> None:
    """rocksdict writes a range deletion (ldb 7.8 dumps it) and a wide-column entity (ldb 7.8
    cannot: "PutEntityCF not implemented"; the writer's own input is the oracle)."""
    db = tmp_path / "e.db"
    rocksdict_script(
        """
        import os
        db = rd.Rdict(sys.argv[1], rd.Options(raw_mode=True))
        wb = rd.WriteBatch(raw_mode=True)
        wb.delete_range(b"a", b"c")
        wb.put(b"x", b"y")
        db.write(wb)
        db.put_entity(b"e1", [b"", b"a", b"b"], [b"dflt", b"1", b"22"])
        os._exit(0)  # no close: everything stays in the WAL
        """,
        db,
    )
    (log,) = db.glob("*.log")
    first_batch = log.read_bytes()[: 7 + 22]  # one physical record: the first batch only
    only_first = tmp_path / "000001.log"
    only_first.write_bytes(first_batch)
    theirs = parse_dump_wal(
        ldb_ok("dump_wal", f"--walfile={only_first}", "--print_value", "--header").decode()
    )
    rows = kv_json("wal", "--key-format", "hex", "--value-format", "hex", only_first)
    assert our_wal_batches(rows) == theirs
    rows = kv_json("wal", db)
    assert rows[-1]["op"] == "put_entity" and rows[-1]["key"] == "e1"
    assert rows[-1]["columns"] == [
        {"name": "", "value": "dflt"},
        {"name": "a", "value": "1"},
        {"name": "b", "value": "22"},
    ]
    assert [r["sequence"] for r in rows] == [1, 2, 3]


def test_sst_verify_checksums_names_a_damaged_block(tmp_path: Path) -> None:
    db = rocksdb614_write(  # the oracles' RocksDB 6.14 tables use CRC32c block checksums
        tmp_path / "crc.db",
        [[put(b"key%04d" % i, b"value-%04d" % i) for i in range(500)]],
        spec=Spec(compression="no_compression"),
    )
    (path,) = db.glob("*.sst")
    good = kv_json("sst", "--records", "--verify-checksums", path)
    assert len(good) == 500
    data = bytearray(path.read_bytes())
    where = data.index(b"value-0250")
    data[where + 6] ^= 0x01  # a value's byte: nothing but the checksum can tell
    damaged = tmp_path / path.name
    damaged.write_bytes(bytes(data))
    unchecked = kv_json("sst", "--records", damaged)
    assert len(unchecked) == 500  # what is stored, damage included
    result = run_kvtool("sst", "--records", "--verify-checksums", damaged)
    assert result.returncode == 74, result.stderr
    assert b"checksum mismatch" in result.stderr and b"at byte" in result.stderr
    xxh3 = ldb_load(tmp_path / "x.db", [(b"k", b"v")])  # ldb 7.8's default checksum
    (other,) = xxh3.glob("*.sst")
    refused = run_kvtool("sst", "--records", "--verify-checksums", other)
    assert refused.returncode == 69, refused.stderr


@pytest.mark.parametrize(
    "table",
    [
        "t.set_index_type(rd.BlockBasedIndexType.two_level_index_search())",
        "t.set_index_block_restart_interval(4)",
        "t.set_data_block_index_type(rd.DataBlockIndexType.binary_and_hash())",
        "t.set_block_restart_interval(3)",
    ],
)
def test_sst_index_and_block_layouts_rocksdict_writes(tmp_path: Path, table: str) -> None:
    """Two-level indexes, delta-encoded index values between restart points, data blocks with a
    hash index: kvtool reads every record the writer reads back, in order."""
    db = tmp_path / "layout.db"
    out = rocksdict_script(
        f"""
        path = sys.argv[1]
        t = rd.BlockBasedOptions()
        t.set_block_size(256)
        {table}
        opts = rd.Options(raw_mode=True)
        opts.set_block_based_table_factory(t)
        db = rd.Rdict(path, opts)
        for i in range(3000):
            db.put(b"key%06d" % i, b"v" * (i % 97))
        db.flush()
        for k, v in db.items():
            print(k.hex(), v.hex())
        db.close()
        """,
        db,
    )
    theirs = [tuple(line.split(" ")) for line in out.splitlines()]
    (path,) = db.glob("*.sst")
    ours = kv_json("sst", "--records", "--key-format", "hex", "--value-format", "hex", path)
    assert [(r["key"], r["value"]) for r in ours] == theirs
    (summary,) = kv_json("sst", "--json", path)
    assert summary["data_blocks"] > 50
    (sample,) = kv_json("du", "--json", "--sample", "0.5", "--seed", "3", db)
    assert sample["sampled_blocks"] == math.ceil(0.5 * summary["data_blocks"])


def test_wal_recyclable_records_equal_ldb_dump_wal(tmp_path: Path) -> None:
    """With recycle_log_file_num, RocksDB writes the recyclable record types (their header
    carries the log number); 40 KB values span blocks as FIRST and LAST fragments."""
    db = tmp_path / "recycle.db"
    rocksdict_script(
        """
        import os
        opts = rd.Options(raw_mode=True)
        opts.set_recycle_log_file_num(2)
        db = rd.Rdict(sys.argv[1], opts)
        for i in range(3):
            db[b"k%d" % i] = bytes([i]) * 40000
        db.delete(b"k1")
        os._exit(0)
        """,
        db,
    )
    (log,) = db.glob("*.log")
    assert log.read_bytes()[6] in (5, 6, 7, 8)  # a recyclable type
    theirs = parse_dump_wal(
        ldb_ok("dump_wal", f"--walfile={log}", "--print_value", "--header").decode()
    )
    rows = kv_json("wal", "--key-format", "hex", "--value-format", "hex", db)
    assert our_wal_batches(rows) == theirs
    assert len(rows) == 4


def test_wal_of_a_reused_log_file_ends_at_its_own_records(tmp_path: Path) -> None:
    """A recycled WAL file keeps an older log's records after the new ones: they are not
    damage, and the log ends where its own records end (ldb dump_wal agrees)."""
    db = tmp_path / "reuse.db"
    rocksdict_script(
        """
        import os
        opts = rd.Options(raw_mode=True)
        opts.set_recycle_log_file_num(4)
        db = rd.Rdict(sys.argv[1], opts)
        for round in (b"o", b"p"):
            for i in range(50):
                db[b"old%02d" % i] = round * 1000
            db.flush()
        db[b"new"] = b"fresh"
        os._exit(0)
        """,
        db,
    )
    newest = max(db.glob("*.log"))
    assert newest.stat().st_size > 1000  # a reused file: the older log's records follow
    theirs = parse_dump_wal(
        ldb_ok("dump_wal", f"--walfile={newest}", "--print_value", "--header").decode()
    )
    result = run_kvtool("wal", "--key-format", "hex", "--value-format", "hex", newest)
    assert result.returncode == 0 and result.stderr == b"", result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert our_wal_batches(rows) == theirs
    assert [r["key"] for r in rows] == [b"new".hex()]


def test_manifest_blob_files_and_column_families_equal_ldb(tmp_path: Path) -> None:
    db = tmp_path / "blob.db"
    rocksdict_script(
        """
        opts = rd.Options(raw_mode=True)
        opts.create_missing_column_families(True)
        blob = rd.Options(raw_mode=True)
        blob.set_enable_blob_files(True)
        blob.set_min_blob_size(16)
        db = rd.Rdict(sys.argv[1], opts, column_families={"blobs": blob})
        blobs = db.get_column_family("blobs")
        for i in range(100):
            blobs.put(b"img%03d" % i, b"B" * 300)
        blobs.flush()
        db.create_column_family("tmp", rd.Options(raw_mode=True))
        db.drop_column_family("tmp")
        db.close()
        """,
        db,
    )
    (manifest,) = db.glob("MANIFEST-*")
    out = ldb_ok("manifest_dump", f"--path={manifest}", "--verbose").decode()
    edits = kv_json("manifest", db)
    assert [e["column_family_add"] for e in edits if "column_family_add" in e] == re.findall(
        r"ColumnFamilyAdd: (\S+)", out
    )
    assert sum(1 for e in edits if e.get("column_family_drop")) == out.count("ColumnFamilyDrop")
    theirs_blobs = re.findall(
        r"BlobFileAddition: blob_file_number: (\d+) total_blob_count: (\d+) "
        r"total_blob_bytes: (\d+)",
        out,
    )
    ours_blobs = [
        (str(b["blob_file_number"]), str(b["total_blob_count"]), str(b["total_blob_bytes"]))
        for e in edits
        for b in e.get("blob_files_added", [])
    ]
    assert ours_blobs == theirs_blobs and ours_blobs
    assert [
        str(f["oldest_blob_file_number"])
        for e in edits
        for f in e.get("added", [])
        if "oldest_blob_file_number" in f
    ] == re.findall(r"blob_file:(\d+)", out.split("---------------")[0])
    (summary,) = kv_json("manifest", "--summary", db)
    assert [cf["name"] for cf in summary["column_families"]] == ["default", "blobs"]
    assert [b["blob_file_number"] for b in summary["blob_files"]] == [
        int(p.stem) for p in db.glob("*.blob")
    ]
