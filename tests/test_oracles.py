"""The oracle writers themselves: each writes what it is asked and reads it back in its order."""

from __future__ import annotations

import struct
from pathlib import Path

from .oracles import (
    Spec,
    as_sorted,
    ldb_load,
    ldb_scan,
    merge,
    put,
    rocksdb614_read,
    rocksdb614_write,
    rocksdict_script,
)


def test_ldb_writes_one_sst_file_per_load_and_scans_back(tmp_path: Path) -> None:
    db = tmp_path / "ldb.db"
    first = {b"a%02d" % i: b"\x00v%d" % i for i in range(10)}
    second = {b"c%02d" % i: b"" for i in range(10)}
    ldb_load(db, first.items())
    ldb_load(db, second.items(), "--fix_prefix_len=1", "--bloom_bits=10")
    assert len(list(db.glob("*.sst"))) == 2
    assert ldb_scan(db) == as_sorted({**first, **second})


def test_rocksdb614_orders_by_its_comparator_and_merges(tmp_path: Path) -> None:
    db = tmp_path / "614.db"
    spec = Spec(comparator="reverse", merge="uint64add")
    one = struct.pack("Q", 1)
    rocksdb614_write(
        db,
        [[put(b"k%d" % i, one) for i in range(5)], [merge(b"k1", one)]],
        wal=[merge(b"k1", one), put(b"z", b"wal")],
        spec=spec,
    )
    assert len(list(db.glob("*.sst"))) == 2
    got = rocksdb614_read(db, spec=spec)
    assert [k for k, _ in got] == [b"z", b"k4", b"k3", b"k2", b"k1", b"k0"]
    assert dict(got)[b"k1"] == struct.pack("Q", 3)


def test_rocksdb614_column_families_and_custom_operator(tmp_path: Path) -> None:
    db = tmp_path / "cf.db"
    spec = Spec(merge="concat", column_families=("events",))
    rocksdb614_write(
        db,
        [[put(b"a", b"c0", "events"), merge(b"a", b"c1", "events")]],
        wal=[merge(b"a", b"c2", "events")],
        spec=spec,
    )
    assert rocksdb614_read(db, spec=spec, cf="events") == [(b"a", b"c0|c1|c2")]
    assert rocksdb614_read(db, spec=spec) == []


def test_rocksdict_script_runs_with_its_own_options(tmp_path: Path) -> None:
    db = tmp_path / "rd.db"
    out = rocksdict_script(
        """
        opts = rd.Options(raw_mode=True)
        opts.create_if_missing(True)
        opts.set_prefix_extractor(rd.SliceTransform.create_fixed_prefix(2))
        db = rd.Rdict(sys.argv[1], opts)
        db.put_entity(b"e1", [b"", b"color"], [b"v", b"red"])
        db[b"k1"] = b"v1"
        print(json.dumps([k.hex() for k in db.keys()]))
        db.close()
        """,
        db,
    )
    assert out.strip() == '["6531", "6b31"]'
