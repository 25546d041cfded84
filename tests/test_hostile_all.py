"""A hostile operator's runs across commands: outputs aimed at the database itself, on databases
other programs wrote (`ldb` 7.8), checked against what that writer reads back."""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import dir_state, kvtool_executable, run_kvtool, run_stopped_by_deadline
from .oracles import ldb_load, ldb_scan, rocksdict_script

RECORDS = [(b"k:%04d" % i, b"v\x00\xff%d" % i) for i in range(300)]


def _db(tmp_path: Path) -> Path:
    return ldb_load(tmp_path / "ldb.db", RECORDS)


def _named(db: Path, prefix: str) -> str:
    return next(p.name for p in db.iterdir() if p.name.startswith(prefix))


# Each case: the arguments after `kvtool`, with {db} the database, {other} a second database,
# {manifest} and {options} the database's own file names. Every one writes into the database
# directory: replacing CURRENT, MANIFEST or OPTIONS made the database unopenable (exit 0).
INSIDE = [
    ("export", "{db}", "-q", "-o", "{db}/CURRENT"),
    ("export", "{db}", "-q", "-o", "{db}/{manifest}"),
    ("export", "{db}", "-q", "--format", "csv", "-o", "{db}/new.csv"),
    ("export", "{db}", "-q", "-o", "{link}"),
    ("export", "{db}", "-q", "--format", "parquet", "-o", "{db}/dataset"),
    ("count", "{db}", "--stats-file", "{db}/{options}"),
    ("count", "--stats-file", "{db}/{options}", "{db}"),
    ("diff", "{other}", "{db}", "-q", "--stats-file", "{db}/CURRENT"),
]


@pytest.mark.parametrize("args", INSIDE, ids=lambda a: " ".join(a[:1] + a[-2:]))
def test_an_output_inside_the_database_directory_is_refused(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    db = _db(tmp_path)
    other = ldb_load(tmp_path / "other.db", RECORDS[:10])
    link = tmp_path / "link.jsonl"
    link.symlink_to(db / "CURRENT")
    names = {
        "db": str(db),
        "other": str(other),
        "manifest": _named(db, "MANIFEST-"),
        "options": _named(db, "OPTIONS-"),
        "link": str(link),
    }
    before = dir_state(db)
    result = run_kvtool(*(arg.format(**names) for arg in args))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(b"kvtool: error: "), result.stderr
    assert b"inside the database directory" in result.stderr, result.stderr
    assert dir_state(db) == before
    assert ldb_scan(db) == RECORDS


def test_an_output_beside_the_database_is_written(tmp_path: Path) -> None:
    """The refusal is for the database's own directory only: a name that merely starts like it
    (ldb.db.jsonl) or its parent directory is a normal output."""
    db = _db(tmp_path)
    out = tmp_path / "ldb.db.jsonl"
    result = run_kvtool("export", db, "-q", "-o", out, "--stats-file", os.fspath(db) + ".json")
    assert result.returncode == 0, result.stderr
    assert len(out.read_bytes().splitlines()) == len(RECORDS)
    assert Path(os.fspath(db) + ".json").exists()


def test_a_resume_whose_partial_file_is_gone_is_refused(tmp_path: Path) -> None:
    """A stopped `export -o FILE` keeps FILE.partial and FILE.partial.cursor. With the .partial
    gone (cleaned up, moved), the resume wrote only the records after the cursor as FILE, exit
    0: a file missing its first records, presented as complete."""
    db = _db(tmp_path)
    out = tmp_path / "all.jsonl"
    stopped = run_stopped_by_deadline(
        "export", db, "-q", "-j", "1", "-o", out, rate=200, timeout=0.5
    )
    assert stopped.returncode == 124, stopped.stderr
    cursor_file = tmp_path / "all.jsonl.partial.cursor"
    (tmp_path / "all.jsonl.partial").unlink()

    result = run_kvtool("export", db, "-q", "-j", "1", "-o", out, "--after", f"@{cursor_file}")

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(b"kvtool: error: ") and b"all.jsonl.partial" in result.stderr
    assert not out.exists()
    assert cursor_file.exists()  # kept: it still names where the lost part ended


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A (written by ldb, with an IDENTITY file) and B, a checkpoint of another ldb database with
    the same keys and other values: a RocksDB 9.8 checkpoint has no IDENTITY file (measured)."""
    where = tmp_path_factory.mktemp("sources")
    a = _db(where)
    other = ldb_load(where / "other.db", [(k, b"other" + v) for k, v in RECORDS])
    b = where / "b.db"
    made = run_kvtool("checkpoint", "-q", other, b)
    assert made.returncode == 0, made.stderr
    assert (a / "IDENTITY").exists() and not (b / "IDENTITY").exists()
    return a, b


@pytest.mark.parametrize(
    ("order", "parquet"),
    [("a-then-b", False), ("b-then-a", True)],
    ids=["identity-then-none-jsonl", "none-then-identity-parquet"],
)
def test_a_resume_on_a_database_without_identity_is_refused(
    tmp_path: Path, two_sources: tuple[Path, Path], order: str, parquet: bool
) -> None:
    """The resume check compared IDENTITY files only when both databases had one, so a stop on
    one database resumed on a checkpoint of another (no IDENTITY) joined two databases' records
    into one file, exit 0."""
    first, second = two_sources if order == "a-then-b" else two_sources[::-1]
    out = tmp_path / ("ds" if parquet else "all.jsonl")
    fmt = ["--format", "parquet"] if parquet else []
    stopped = run_stopped_by_deadline(
        "export", first, "-q", "-j", "1", *fmt, "-o", out, rate=200, timeout=0.5
    )
    assert stopped.returncode == 124, stopped.stderr
    cursor = stopped.stderr.decode().split("--after ")[1].split()[0]

    result = run_kvtool("export", second, "-q", "-j", "1", *fmt, "-o", out, "--after", cursor)

    assert result.returncode == 2, result.stderr
    assert b"IDENTITY" in result.stderr, result.stderr
    if parquet:
        assert not (out / "_SUCCESS").exists()
    else:
        assert not out.exists()


def _limited(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_under_the_options_check_is_an_io_error(tmp_path: Path) -> None:
    """A write first checks the owner's options in a scratch database in TMPDIR. A full disk
    there (here a file size limit, `ulimit -f`) was exit 2, "its OPTIONS file cannot be loaded
    ... pass --force to write anyway": a usage error, and advice to override a format check
    for what is an I/O error (74)."""
    db = _db(tmp_path)
    result = subprocess.run(
        [kvtool_executable(), "put", db, "new", "value"],
        capture_output=True,
        preexec_fn=_limited(2048),
        timeout=60,
        check=False,
    )
    assert result.returncode == 74, result.stderr
    assert result.stderr.startswith(b"kvtool: error: ") and result.stderr.count(b"\n") == 1
    assert b"--force" not in result.stderr, result.stderr
    assert ldb_scan(db) == RECORDS


def test_the_temp_file_of_a_killed_export_is_removed_by_the_next_run(tmp_path: Path) -> None:
    """`export -o FILE` writes `.FILE.*.tmp` and renames it when done. A kill -9 (the OOM
    killer) runs no clean-up: the temp file stayed, hidden, and every later run left its
    file there too, however large. The next run now removes the ones whose process is gone."""
    db = _db(tmp_path)
    out = tmp_path / "out.jsonl"
    slow = subprocess.Popen(
        [kvtool_executable(), "export", db, "-q", "-j", "1", "-o", out, "--rate", "5"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):  # the temp file appears before the first record (bounded: 60 s)
            if list(tmp_path.glob(".out.jsonl.*.tmp")) or slow.poll() is not None:
                break
            time.sleep(0.1)
        left = list(tmp_path.glob(".out.jsonl.*.tmp"))
        assert len(left) == 1 and slow.poll() is None, left
    finally:
        slow.kill()
        slow.wait()
    # A stranger's file of the same shape (another host's, or not kvtool's) is left alone.
    other_host = tmp_path / ".out.jsonl.1@elsewhere.0badcafe.tmp"
    other_host.write_bytes(b"")

    result = run_kvtool("export", db, "-q", "-j", "1", "-o", out)

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob(".out.jsonl.*")) == [other_host.name]
    assert len(out.read_bytes().splitlines()) == len(RECORDS)


WRITE_ENTITIES = r"""
opts = rd.Options(raw_mode=True)
opts.create_if_missing(True)
db = rd.Rdict(sys.argv[1], opts)
db.put(b"plain", b"v\x00")
db.put_entity(b"only-default", [b""], [b"dflt"])
db.put_entity(b"user:1", [b"", b"city"], [b"Ann", b"Oslo"])
db.put_entity(b"no-default", [b"city"], [b"Rome"])
db.close()
"""


@pytest.fixture(scope="module")
def entities_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("entities") / "db"
    rocksdict_script(WRITE_ENTITIES, db)
    return db


@pytest.mark.parametrize("key", ["user:1", "no-default"])
def test_get_of_an_entity_with_more_columns_than_a_value_is_refused(
    entities_db: Path, key: str
) -> None:
    """`get` printed the default column of a wide-column entity (empty when it has none) and
    dropped the others, exit 0: `user:1` printed "Ann", its city lost without a word."""
    result = run_kvtool("get", entities_db, key)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == b""
    assert result.stderr.startswith(b"kvtool: error: ") and result.stderr.count(b"\n") == 1
    assert b"columns" in result.stderr and b"export" in result.stderr


@pytest.mark.parametrize(
    ("key", "value"), [("plain", b"v\x00"), ("only-default", b"dflt")], ids=["plain", "default"]
)
def test_get_of_a_value_or_a_default_column_entity_prints_it(
    entities_db: Path, key: str, value: bytes
) -> None:
    result = run_kvtool("get", entities_db, key)
    assert result.returncode == 0, result.stderr
    assert result.stdout == value


def test_a_stats_file_that_is_the_output_or_the_input_is_refused(tmp_path: Path) -> None:
    """`--stats-file` naming the export's own -o file replaced the export with the stats (exit
    0, the records gone); naming the import's source replaced the input file with them."""
    db = _db(tmp_path)
    out = tmp_path / "out.json"
    out.write_bytes(b"yesterday's export\n")
    result = run_kvtool("export", db, "-q", "-o", out, "--stats-file", out)
    assert result.returncode == 2, result.stderr
    assert b"--stats-file" in result.stderr and out.read_bytes() == b"yesterday's export\n"

    dataset = tmp_path / "ds"
    result = run_kvtool(
        "export", db, "-q", "--format", "parquet", "-o", dataset, "--stats-file", dataset / "s.json"
    )
    assert result.returncode == 2, result.stderr
    assert not (dataset / "s.json").exists()

    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"key":"a","value":"1"}\n')
    copy = tmp_path / "copy.db"
    link = tmp_path / "stats-link.json"
    link.symlink_to(source)
    for stats in (source, link):
        result = run_kvtool("import", "--create", copy, source, "-q", "--stats-file", stats)
        assert result.returncode == 2, result.stderr
        assert source.read_bytes() == b'{"key":"a","value":"1"}\n'
    assert not copy.exists()


def test_an_export_to_a_fifo_nobody_reads_stops_at_its_timeout(tmp_path: Path) -> None:
    """`-o FIFO` is written in place; with no reader, opening it blocked in the kernel, and the
    stop signals only take note there: --timeout never fired and a SIGTERM was swallowed (it took
    three signals). No reader ever opens this FIFO, so the stop is deterministic."""
    db = _db(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = run_kvtool("export", db, "-q", "-j", "1", "-o", fifo, "--timeout", "0.3s", timeout=60)
    assert result.returncode == 124, result.stderr
    assert result.stderr.startswith(b"kvtool: error: ") and result.stderr.count(b"\n") == 1
    assert b"no reader" in result.stderr, result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_an_import_stopped_by_a_full_disk_says_what_it_committed(tmp_path: Path) -> None:
    """A batch import whose WAL write fails (here `ulimit -f`) said only "closing the database:
    IO error ...": the failed close replaced the write's own error, which tells how many records
    the database holds and which line to resume from."""
    db = ldb_load(tmp_path / "ldb.db", RECORDS[:10])
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(f'{{"key":"r:{i:05d}","value":"{"v" * 100}"}}\n' for i in range(3000))
    )
    result = subprocess.run(
        [kvtool_executable(), "import", db, source, "--batch-records", "100", "-q"],
        capture_output=True,
        preexec_fn=_limited(128 * 1024),
        timeout=60,
        check=False,
    )
    assert result.returncode == 74, result.stderr
    line = result.stderr.decode()
    assert line.startswith("kvtool: error: ") and line.count("\n") == 1, line
    committed = int(line.split("committed ")[1].split()[0])
    resume = int(line.split("resume from line ")[1].split(":")[0])
    assert 0 < committed < 3000 and resume == committed + 1, line
    imported = [r for r in ldb_scan(db) if r[0].startswith(b"r:")]
    assert imported == [(b"r:%05d" % i, b"v" * 100) for i in range(committed)]


@pytest.mark.parametrize("mode", ["batch", "sst"])
def test_import_create_refuses_a_database_that_lost_its_current_file(
    tmp_path: Path, mode: str
) -> None:
    """A database whose CURRENT file is lost (ldb's SST files, MANIFEST, OPTIONS still there)
    is what `repair` recovers. `import --create` made a new, empty database in that directory,
    and RocksDB deleted the old SST files as obsolete: exit 0, every record gone."""
    db = _db(tmp_path)
    (db / "CURRENT").unlink()
    before = dir_state(db)
    result = run_kvtool(
        "import", "--create", "--mode", mode, db, "-", "-q", input=b'{"key":"a","value":"1"}\n'
    )
    assert result.returncode == 74, result.stderr
    assert result.stderr.startswith(b"kvtool: error: ") and b"repair" in result.stderr
    assert dir_state(db) == before


def test_import_create_refuses_a_directory_of_other_files(tmp_path: Path) -> None:
    """`--create` in a directory that holds files but no database wrote RocksDB's files among
    them (replacing any of the same name)."""
    where = tmp_path / "project"
    where.mkdir()
    (where / "notes.txt").write_text("the application's own notes\n")
    result = run_kvtool("import", "--create", where, "-", "-q", input=b'{"key":"a","value":"1"}\n')
    assert result.returncode == 2, result.stderr
    assert sorted(p.name for p in where.iterdir()) == ["notes.txt"]
    assert (where / "notes.txt").read_text() == "the application's own notes\n"


def test_a_database_that_lost_its_current_file_is_damage_not_missing(tmp_path: Path) -> None:
    """Reading such a directory said "not a RocksDB database ... give the directory that holds
    CURRENT, MANIFEST-* and *.sst" (66), in a directory holding its MANIFEST and SST files."""
    db = _db(tmp_path)
    (db / "CURRENT").unlink()
    result = run_kvtool("count", db)
    assert result.returncode == 74, result.stderr
    assert b"no CURRENT" in result.stderr and b"kvtool repair" in result.stderr
