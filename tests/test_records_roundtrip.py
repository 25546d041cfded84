"""Records survive export | import exactly: wide-column entities with every column, every value
format (json included) byte for byte, and `0x` hex wherever hex is read.

Inputs are written by rocksdict itself (put_entity, in SST files, in the WAL, in a column family
with its own options) or by `ldb` 7.8, and the writer reads the result back as the oracle.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import require_tool, run_kvtool
from .oracles import ldb_load, ldb_scan, rocksdict_script

Columns = list[tuple[bytes, bytes]]

# What the writer stores. A record is a plain value (bytes) or an entity (its columns); the
# default column is named b"".
ENTITIES_SST: dict[bytes, bytes | Columns] = {
    b"e:plain": b"just a value",
    b"e:both": [(b"", b"default value"), (b"colour", b"blue"), (b"size", b"XL")],
    b"e:named": [(b"a", b"1"), (b"b", b"2")],
    b"e:binary": [(b"\x00\xff", b"\xfe\n\x00"), (b"name\twith tab", b"")],
    b"e:empty": [],
    b"e:json": [(b"doc", b'{"a":1}'), (b"text", b"not json")],
}
ENTITIES_WAL: dict[bytes, bytes | Columns] = {
    b"w:plain": b"in the WAL",
    b"w:entity": [(b"", b"d"), (b"only-in-wal", b"yes")],
    b"e:named": [(b"a", b"1"), (b"b", b"changed in the WAL"), (b"c", b"3")],
}
ENTITIES_CF: dict[bytes, bytes | Columns] = {
    b"c:entity": [(b"x", b"1"), (b"y", b"\x80\x81")],
    b"c:plain": b"cf value",
}

WRITE_ENTITIES = r"""
import os
path, spec = sys.argv[1], json.loads(sys.argv[2])
opts = rd.Options(raw_mode=True)
opts.create_if_missing(True)
opts.create_missing_column_families(True)
wide = rd.Options(raw_mode=True)
wide.set_compression_type(rd.DBCompressionType.zstd())  # a column family with its own options
table = rd.BlockBasedOptions()
table.set_format_version(5)
opts.set_block_based_table_factory(table)
db = rd.Rdict(path, opts, column_families={"wide": wide})
cf = db.get_column_family("wide")
def write(target, records):
    for key, value in records:
        key = bytes.fromhex(key)
        if isinstance(value, str):
            target.put(key, bytes.fromhex(value))
        else:
            target.put_entity(
                key, [bytes.fromhex(n) for n, _ in value], [bytes.fromhex(v) for _, v in value]
            )
write(db, spec["sst"])
write(cf, spec["cf"])
db.flush()
cf.flush()
write(db, spec["wal"])
# Never flushed: rocksdict's close() flushes the memtable, so the writer ends the way a crashed
# application does, with these records only in the WAL.
db.flush_wal(True)
os._exit(0)
"""

# The writer's own reading: every record of a column family as rocksdict's entities() gives it.
READ_ENTITIES = r"""
path, cf = sys.argv[1], sys.argv[2]
opts, cfs = rd.Options.load_latest(path)
db = rd.Rdict(path, opts, column_families=cfs, access_type=rd.AccessType.read_only(False))
view = db if cf == "default" else db.get_column_family(cf)
out = [[k.hex(), [[n.hex(), v.hex()] for n, v in cols]] for k, cols in view.entities()]
keys = [k for k, _ in view.items()]
got = [view.get_entity(k) for k in keys]
assert [[[n.hex(), v.hex()] for n, v in cols] for cols in got] == [c for _, c in out]
print(json.dumps(out))
del view
db.close()
"""


def _spec(records: dict[bytes, bytes | Columns]) -> list[object]:
    return [
        [k.hex(), v.hex() if isinstance(v, bytes) else [[n.hex(), x.hex()] for n, x in v]]
        for k, v in records.items()
    ]


def write_entities(path: Path) -> Path:
    spec = {"sst": _spec(ENTITIES_SST), "wal": _spec(ENTITIES_WAL), "cf": _spec(ENTITIES_CF)}
    rocksdict_script(WRITE_ENTITIES, path, json.dumps(spec))
    return path


def writer_reads(path: Path, cf: str = "default") -> list[tuple[bytes, Columns]]:
    """Every record of `cf` as rocksdict reads it: (key, columns); a plain value is one
    default column."""
    raw = json.loads(rocksdict_script(READ_ENTITIES, path, cf))
    return [
        (bytes.fromhex(k), [(bytes.fromhex(n), bytes.fromhex(v)) for n, v in cols])
        for k, cols in raw
    ]


def expected(cf: str = "default") -> list[tuple[bytes, Columns]]:
    """What the writer wrote, as (key, columns) in key order."""
    merged = {**ENTITIES_SST, **ENTITIES_WAL} if cf == "default" else dict(ENTITIES_CF)
    return sorted((k, [(b"", v)] if isinstance(v, bytes) else sorted(v)) for k, v in merged.items())


def from_export(output: bytes) -> list[tuple[bytes, Columns]]:
    """An export in hex/hex as (key, columns): `value` is the default column, `columns` all."""
    out = []
    for line in output.splitlines():
        record = json.loads(line)
        if "columns" in record:
            assert "value" not in record
            cols = [
                (bytes.fromhex(c["name"]), bytes.fromhex(c["value"])) for c in record["columns"]
            ]
        else:
            cols = [(b"", bytes.fromhex(record["value"]))]
        out.append((bytes.fromhex(record["key"]), cols))
    return out


def ok(*args: str | Path, input: bytes | None = None) -> bytes:
    result = run_kvtool(*args, input=input)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@pytest.fixture(scope="module")
def entity_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_entities(tmp_path_factory.mktemp("entities") / "db")
    wal = [p for p in path.iterdir() if p.suffix == ".log" and p.stat().st_size > 0]
    assert wal, "the writer left nothing in the WAL: the WAL case would not be tested"
    return path


# -- wide-column entities -------------------------------------------------------------------------
def test_writer_reads_what_it_wrote(entity_db: Path) -> None:
    # The oracle itself: rocksdict gives back every column it was given (SST, WAL, CF).
    assert writer_reads(entity_db) == expected()
    assert writer_reads(entity_db, "wide") == expected("wide")


@pytest.mark.parametrize("cf", ["default", "wide"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_export_carries_every_column(entity_db: Path, cf: str, workers: str) -> None:
    out = ok(
        "export", entity_db, "-q", "--cf", cf, "--workers", workers,
        "--key-format", "hex", "--value-format", "hex",
    )  # fmt: skip
    assert from_export(out) == writer_reads(entity_db, cf)


def test_entity_record_shape(entity_db: Path) -> None:
    out = ok("export", entity_db, "-q", "--prefix", "e:")
    records = {json.loads(line)["key"]: json.loads(line) for line in out.splitlines()}
    # Plain records keep their shape; an entity holding more than a default column lists them.
    assert records["e:plain"] == {"key": "e:plain", "value": "just a value"}
    assert records["e:both"] == {
        "key": "e:both",
        "columns": [
            {"name": "", "value": "default value"},
            {"name": "colour", "value": "blue"},
            {"name": "size", "value": "XL"},
        ],
    }
    assert records["e:empty"] == {"key": "e:empty", "columns": []}
    assert records["e:binary"]["columns"][0] == {
        "name": {"base64": "AP8="},
        "value": {"base64": "/goA"},
    }


def test_jq_reads_the_entity_shape(entity_db: Path) -> None:
    jq = require_tool("jq")
    out = ok("export", entity_db, "-q", "--prefix", "e:")
    result = subprocess.run(
        [jq, "-c", "select(.columns) | {key, c: (.columns | from_entries)}"],
        input=out,
        capture_output=True,
        check=True,
    )
    rows = {r["key"]: r["c"] for r in map(json.loads, result.stdout.splitlines())}
    assert rows["e:both"] == {"": "default value", "colour": "blue", "size": "XL"}
    assert rows["e:named"] == {"a": "1", "b": "changed in the WAL", "c": "3"}
    assert rows["e:empty"] == {}


@pytest.mark.parametrize("fmt", ["auto", "hex", "base64", "json"])
@pytest.mark.parametrize("cf", ["default", "wide"])
def test_export_import_export_is_byte_identical(
    entity_db: Path, tmp_path: Path, fmt: str, cf: str
) -> None:
    key_format = "hex" if fmt == "json" else fmt
    formats = ["--cf", cf, "--key-format", key_format, "--value-format", fmt]
    first = ok("export", entity_db, "-q", *formats)
    copy = tmp_path / "copy"
    ok("import", "--create", "-q", copy, *formats, input=first)
    assert ok("export", copy, "-q", *formats) == first
    # The writer's own get_entity/entities read every column back.
    assert writer_reads(copy, cf) == writer_reads(entity_db, cf)


def test_import_writes_entities_from_hand_written_records(tmp_path: Path) -> None:
    lines = (
        b'{"key":"k1","columns":[{"name":"b","value":"2"},{"name":"a","value":"1"}]}\n'
        b'{"key":"k2","columns":[]}\n'
        b'{"key":"k3","value":"plain"}\n'
    )
    ok("import", "--create", "-q", tmp_path / "db", input=lines)
    assert writer_reads(tmp_path / "db") == [
        (b"k1", [(b"a", b"1"), (b"b", b"2")]),
        (b"k2", []),
        (b"k3", [(b"", b"plain")]),
    ]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b'{"key":"k","value":"v","columns":[]}', 'a record has "value" or "columns", not both'),
        (
            b'{"key":"k","columns":[{"name":"a","value":"1"},{"name":"a","value":"2"}]}',
            "column name b'a' appears twice",
        ),
        (b'{"key":"k","columns":{"a":"1"}}', '"columns" must be a list'),
        (b'{"key":"k","columns":[{"name":"a"}]}', 'each of "columns" must be an object'),
    ],
)
def test_bad_entity_records_exit_65(tmp_path: Path, line: bytes, why: str) -> None:
    result = run_kvtool("import", "--create", tmp_path / "db", input=line + b"\n")
    assert result.returncode == 65, result.stderr
    assert why in result.stderr.decode()
    assert b"Traceback" not in result.stderr


def test_sst_mode_refuses_entities_and_writes_nothing(entity_db: Path, tmp_path: Path) -> None:
    data = ok("export", entity_db, "-q")
    target = tmp_path / "db"
    ok("import", "--create", "-q", target, input=b'{"key":"before","value":"1"}\n')
    result = run_kvtool("import", "--mode", "sst", target, input=data)
    assert result.returncode == 69, result.stderr
    stderr = result.stderr.decode()
    assert stderr.startswith("kvtool: error: line 1: a wide-column entity")  # e:binary
    assert "--mode batch" in stderr and stderr.count("\n") == 1
    assert writer_reads(target) == [(b"before", [(b"", b"1")])]


def _copy_with(src: Path, dest: Path, body: str) -> Path:
    shutil.copytree(src, dest)
    rocksdict_script(
        "opts, cfs = rd.Options.load_latest(sys.argv[1])\n"
        "db = rd.Rdict(sys.argv[1], opts, column_families=cfs)\n" + body + "\ndb.close()\n",
        dest,
    )
    return dest


def test_diff_and_digest_see_a_changed_column(entity_db: Path, tmp_path: Path) -> None:
    # Only a non-default column differs: the default column (what a plain read sees) is equal.
    changed = _copy_with(
        entity_db,
        tmp_path / "changed",
        "db.put_entity(b'e:both', [b'', b'colour', b'size'], [b'default value', b'red', b'XL'])",
    )
    result = run_kvtool("diff", entity_db, changed, "-q")
    assert result.returncode == 1, result.stderr  # they differ, as diff(1) says
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {
            "op": "changed",
            "key": "e:both",
            "old_columns": [
                {"name": "", "value": "default value"},
                {"name": "colour", "value": "blue"},
                {"name": "size", "value": "XL"},
            ],
            "new_columns": [
                {"name": "", "value": "default value"},
                {"name": "colour", "value": "red"},
                {"name": "size", "value": "XL"},
            ],
        }
    ]
    assert _digest(entity_db) != _digest(changed)


def _digest(db: Path) -> str:
    result = run_kvtool("verify", "--digest", "-q", db)
    assert result.returncode == 0, result.stderr
    digest = result.stdout.decode().strip()
    assert len(digest) == 64, digest
    return digest


def test_digest_tells_an_entity_from_its_default_column(tmp_path: Path) -> None:
    entity = tmp_path / "entity"
    plain = tmp_path / "plain"
    rocksdict_script(
        "db = rd.Rdict(sys.argv[1], rd.Options(raw_mode=True))\n"
        "db.put_entity(b'k', [b'', b'x'], [b'v', b'1'])\ndb.close()\n",
        entity,
    )
    rocksdict_script(
        "db = rd.Rdict(sys.argv[1], rd.Options(raw_mode=True))\ndb.put(b'k', b'v')\ndb.close()\n",
        plain,
    )
    assert _digest(entity) != _digest(plain)
    # An entity holding only its default column reads exactly like that plain value.
    only_default = tmp_path / "only-default"
    rocksdict_script(
        "db = rd.Rdict(sys.argv[1], rd.Options(raw_mode=True))\n"
        "db.put_entity(b'k', [b''], [b'v'])\ndb.close()\n",
        only_default,
    )
    assert _digest(only_default) == _digest(plain)
    result = run_kvtool("diff", plain, entity, "-q")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["new_columns"] == [
        {"name": "", "value": "v"},
        {"name": "x", "value": "1"},
    ]


def test_scan_shows_columns_in_table_and_tsv(entity_db: Path) -> None:
    table = ok("scan", entity_db, "--prefix", "e:b", "-q").decode()
    assert '{"":"default value","colour":"blue","size":"XL"}' in table
    tsv = ok("scan", entity_db, "--prefix", "e:n", "--format", "tsv", "-q").decode()
    assert tsv.splitlines()[0] == 'e:named\t{"a":"1","b":"changed in the WAL","c":"3"}'
    jsonl = ok("scan", entity_db, "--prefix", "e:e", "--format", "jsonl", "-q")
    assert json.loads(jsonl.splitlines()[0]) == {"key": "e:empty", "columns": []}


# -- every value format ---------------------------------------------------------------------------
# Values that break naive codecs, written by ldb 7.8 (the oracle reads them back with ldb scan).
TRICKY: dict[bytes, bytes] = {
    b"v:01-compact-json": b'{"a":1,"b":[true,null]}',
    b"v:02-spaced-json": b'{"a": 1}',
    b"v:03-text": b"hello",
    b"v:04-looks-like-binary": b'{"base64":"aGk="}',
    b"v:05-looks-like-text-wrapper": b'{"text":"hi"}',
    b"v:06-json-string": b'"quoted"',
    b"v:07-number-spelling": b"1e3",
    b"v:08-float": b"1.5",
    b"v:09-escaped-unicode": b'"\\u00e9"',
    b"v:10-binary": b"\xff\x00\xfe",
    b"v:11-empty": b"",
    b"v:12-huge-int": b"123456789012345678901234567890",
    b"v:13-newline": b"line\nbreak",
    b"v:14-number": b"42",
    b"v:15-nested-wrapper": b'{"text":{"a":1}}',
    b"v:16-utf8": "välue".encode(),
}
# json embeds these (bytes exactly as orjson writes the parsed value, not a wrapper's shape).
EMBEDDED = {
    b"v:01-compact-json",
    b"v:06-json-string",
    b"v:08-float",
    b"v:14-number",
    b"v:15-nested-wrapper",
}


@pytest.fixture(scope="module")
def tricky_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ldb_load(tmp_path_factory.mktemp("tricky") / "db", sorted(TRICKY.items()))


@pytest.mark.parametrize("value_format", ["auto", "hex", "base64", "json"])
def test_every_value_format_round_trips_byte_exact(
    tricky_db: Path, tmp_path: Path, value_format: str
) -> None:
    formats = ["--key-format", "hex", "--value-format", value_format]
    out = ok("export", tricky_db, "-q", *formats)
    copy = tmp_path / "copy"
    ok("import", "--create", "-q", copy, *formats, input=out)
    assert ldb_scan(copy) == sorted(TRICKY.items())
    assert ok("export", copy, "-q", *formats) == out


def test_utf8_format_round_trips_text_and_refuses_binary(tricky_db: Path, tmp_path: Path) -> None:
    text_only = {k: v for k, v in TRICKY.items() if k != b"v:10-binary"}
    formats = ["--value-format", "utf8"]
    out = ok("export", tricky_db, "-q", "--end", "v:10", *formats)
    out += ok("export", tricky_db, "-q", "--start", "v:11", *formats)
    ok("import", "--create", "-q", tmp_path / "copy", *formats, input=out)
    assert ldb_scan(tmp_path / "copy") == sorted(text_only.items())
    refused = run_kvtool("export", tricky_db, "-q", *formats)
    assert refused.returncode == 2 and b"not valid UTF-8" in refused.stderr


def test_json_embeds_only_exact_json_and_counts_the_rest(tricky_db: Path) -> None:
    result = run_kvtool("export", tricky_db, "--value-format", "json", "--stats", "json")
    assert result.returncode == 0, result.stderr
    values = {
        json.loads(line)["key"]: json.loads(line)["value"] for line in result.stdout.splitlines()
    }
    for key, stored in TRICKY.items():
        value = values[key.decode()]
        if key in EMBEDDED:
            assert value == json.loads(stored), key
        elif stored == b"\xff\x00\xfe":
            assert value == {"base64": "/wD+"}
        else:
            assert value == {"text": stored.decode()}, key
    stats = json.loads(result.stderr.splitlines()[-1])
    assert stats["values_not_json"] == len(TRICKY) - len(EMBEDDED)


def test_auto_never_mistakes_text_for_binary(tricky_db: Path) -> None:
    out = ok("export", tricky_db, "-q", "--prefix", "v:04")
    assert json.loads(out) == {"key": "v:04-looks-like-binary", "value": '{"base64":"aGk="}'}


# -- 0x hex ---------------------------------------------------------------------------------------
def test_import_reads_0x_hex_keys_values_and_column_names(tmp_path: Path) -> None:
    lines = (
        b'{"key":"0x6135","value":"0X6869"}\n'
        b'{"key":"6136","value":"6869"}\n'
        b'{"key":"0x6137","columns":[{"name":"0x78","value":"0x31"}]}\n'
    )
    ok(
        "import",
        "--create",
        "-q",
        "--key-format",
        "hex",
        "--value-format",
        "hex",
        tmp_path / "db",
        input=lines,
    )
    assert writer_reads(tmp_path / "db") == [
        (b"a5", [(b"", b"hi")]),
        (b"a6", [(b"", b"hi")]),
        (b"a7", [(b"x", b"1")]),
    ]
    # put, get and --start accept the same spelling.
    assert ok("get", "--key-format", "hex", tmp_path / "db", "0x6135").strip() == b"hi"


def test_reverse_export_and_scan_pages_carry_every_column(entity_db: Path) -> None:
    hexes = ["--key-format", "hex", "--value-format", "hex"]
    forward = ok("export", entity_db, "-q", *hexes).splitlines()
    backward = ok("export", entity_db, "-q", "--reverse", *hexes).splitlines()
    assert backward == forward[::-1]
    # Pages of two, resumed by cursor, give the same records as one export.
    pages: list[bytes] = []
    after: list[str] = []
    while True:
        result = run_kvtool(
            "scan", entity_db, "--format", "jsonl", "--page-size", "2", *hexes, *after
        )
        assert result.returncode == 0, result.stderr
        pages += result.stdout.splitlines()
        cursor = re.search(r"--after (\S+)", result.stderr.decode())
        if cursor is None:
            break
        after = ["--after", cursor.group(1)]
    assert pages == forward


def test_stepping_reads_carry_every_column(entity_db: Path, tmp_path: Path) -> None:
    # A read-write open steps the native iterator (no bulk stream): the same records.
    from kvtool.engine import OpenMode, open_db

    copy = tmp_path / "copy"
    shutil.copytree(entity_db, copy)
    with open_db(copy, OpenMode.READ_WRITE) as db, db.iterator() as it:
        it.seek_to_first()
        stepped = it.read_entries(3) + it.read_entries(100)
        it.seek_to_last()
        backward = it.read_entries(100, reverse=True)
    with open_db(entity_db, OpenMode.READ_ONLY) as db, db.iterator() as it:
        it.seek_to_first()
        bulk = it.read_entries(100)
    assert stepped == bulk == backward[::-1]
    as_columns = [(k, list(v.columns) if not isinstance(v, bytes) else [(b"", v)]) for k, v in bulk]
    assert as_columns == writer_reads(entity_db)
