"""The stats envelope: one schema (docs/stats.schema.json) for every command's `--stats json`
line and `--stats-file`, on success and on failure, and the Prometheus text of a `.prom` file
as prometheus_client's own parser reads it. Databases come from `ldb` 7.8, the oracle."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import kvtool
from kvtool.cli.app import app

from .conftest import IN_CI, dir_state, kvtool_executable, run_kvtool
from .oracles import ldb_load, ldb_scan

SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "stats.schema.json"
RECORDS = [(b"key:%04d" % i, b"value-%d" % i) for i in range(300)]


def require_module(name: str) -> ModuleType:
    """A test-only library (the `test` extra); skip without it, but fail under CI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"{name} is not installed (pip install -e '.[test]')"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def check() -> Callable[[dict[str, Any]], None]:
    jsonschema = require_module("jsonschema")
    validator_class = jsonschema.Draft202012Validator
    schema = json.loads(SCHEMA.read_text())
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)

    def validate(stats: dict[str, Any]) -> None:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(stats)]
        assert not errors, (errors, stats)

    return validate


def prom_families(path: Path) -> dict[str, Any]:
    parser = require_module("prometheus_client.parser")
    return {f.name: f for f in parser.text_string_to_metric_families(path.read_text())}


def json_line(stderr: bytes) -> dict[str, Any]:
    """The `--stats json` object on stderr (the one line that is a JSON object)."""
    (line,) = [ln for ln in stderr.decode().splitlines() if ln.startswith("{")]
    stats: dict[str, Any] = json.loads(line)
    return stats


@dataclass
class Dbs:
    root: Path
    a: Path  # RECORDS, written by ldb
    b: Path  # A with changes, written by ldb
    jsonl: Path  # RECORDS as export writes them


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> Dbs:
    root = tmp_path_factory.mktemp("stats")
    a = ldb_load(root / "a.db", RECORDS)
    b = ldb_load(root / "b.db", [*RECORDS[:250], (b"key:0001", b"changed"), (b"new", b"x")])
    jsonl = root / "records.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"key": k.decode(), "value": v.decode()}) + "\n" for k, v in RECORDS)
    )
    return Dbs(root, a, b, jsonl)


def fresh(dbs: Dbs, name: str) -> Path:
    """A path in the module's directory that no earlier test used."""
    path = dbs.root / name
    assert not path.exists()
    return path


# Each command's success run: (argv after the command, given a fresh directory), and a check of
# its figures against ldb reading what the command read or wrote.
def _export(dbs: Dbs, where: Path) -> list[str]:
    return [str(dbs.a), "-o", str(where / "out.jsonl")]


def _check_export(dbs: Dbs, where: Path, stats: dict[str, Any]) -> None:
    assert stats["records"] == len(ldb_scan(dbs.a)) == 300
    assert stats["cursor"] is None
    assert len((where / "out.jsonl").read_text().splitlines()) == 300


def _check_diff(dbs: Dbs, where: Path, stats: dict[str, Any]) -> None:
    a, b = dict(ldb_scan(dbs.a)), dict(ldb_scan(dbs.b))
    assert stats["database_b"] == str(dbs.b)
    assert stats["added"] == len(b.keys() - a.keys()) == 1
    assert stats["removed"] == len(a.keys() - b.keys()) == 50
    assert stats["changed"] == sum(1 for k in a.keys() & b.keys() if a[k] != b[k]) == 1


def _check_import(dbs: Dbs, where: Path, stats: dict[str, Any]) -> None:
    assert stats["records"] == 300
    assert ldb_scan(where / "new.db") == RECORDS  # ldb reads back every record kvtool wrote


def _check_delete_range(dbs: Dbs, where: Path, stats: dict[str, Any]) -> None:
    in_range = [k for k, _ in ldb_scan(dbs.a) if b"key:0100" <= k < b"key:0200"]
    assert stats["records_in_range"] == len(in_range) == 100
    assert stats["deleted"] == 0 and stats["dry_run"] is True


def _compact(dbs: Dbs, where: Path) -> list[str]:
    shutil.copytree(dbs.a, where / "c.db")
    return [str(where / "c.db")]


def _check_compact(dbs: Dbs, where: Path, stats: dict[str, Any]) -> None:
    assert stats["completed"] == ["default"]
    assert ldb_scan(where / "c.db") == RECORDS


def _checkpoint(dbs: Dbs, where: Path) -> list[str]:
    shutil.copytree(dbs.a, where / "src.db")  # a read-write open: not the shared A
    return [str(where / "src.db"), str(where / "copy.db")]


def _check_checkpoint(dbs: Dbs, where: Path, stats: dict[str, Any]) -> None:
    assert stats["dest"] == str(where / "copy.db")
    assert ldb_scan(where / "copy.db") == RECORDS


def _check_verify(dbs: Dbs, where: Path, stats: dict[str, Any]) -> None:
    assert stats["records"] == len(ldb_scan(dbs.a))
    assert [cf["name"] for cf in stats["column_families"]] == ["default"]


def _check_count(dbs: Dbs, where: Path, stats: dict[str, Any]) -> None:
    assert stats["count"] == len(ldb_scan(dbs.a)) == 300
    assert stats["estimated"] is False and stats["cursor"] is None


Args = Callable[[Dbs, Path], list[str]]
Check = Callable[[Dbs, Path, dict[str, Any]], None]
SUCCESS: dict[str, tuple[Args, Check]] = {
    "export": (_export, _check_export),
    "diff": (lambda d, w: [str(d.a), str(d.b)], _check_diff),
    "import": (lambda d, w: ["--create", str(w / "new.db"), str(d.jsonl)], _check_import),
    "delete-range": (
        lambda d, w: ["--dry-run", "--start", "key:0100", "--end", "key:0200", str(d.a)],
        _check_delete_range,
    ),
    "compact": (_compact, _check_compact),
    "checkpoint": (_checkpoint, _check_checkpoint),
    "verify": (lambda d, w: [str(d.a)], _check_verify),
    "count": (lambda d, w: [str(d.a)], _check_count),
}


def test_every_command_with_stats_is_covered_by_the_schema_and_these_tests() -> None:
    import typer

    root: Any = typer.main.get_command(app)
    with_stats = {
        name
        for name, command in root.commands.items()
        if any(p.name == "stats_file" for p in command.params)
    }
    schema = json.loads(SCHEMA.read_text())
    assert with_stats == set(schema["properties"]["command"]["enum"]) == set(SUCCESS)


@pytest.mark.parametrize("command", sorted(SUCCESS))
def test_success_json_line_and_stats_file_match_the_schema(
    command: str, dbs: Dbs, check: Callable[[dict[str, Any]], None]
) -> None:
    make_args, check_figures = SUCCESS[command]
    where = fresh(dbs, f"ok-{command}")
    where.mkdir()
    before = dir_state(dbs.a)

    # count's answer is stdout; it has no --stats and writes its figures to the file only.
    shown = ["--stats", "json"] if command != "count" else []
    result = run_kvtool(command, *shown, "--stats-file", where / "s.json", *make_args(dbs, where))

    assert result.returncode in ((0, 1) if command == "diff" else (0,)), result.stderr
    written = json.loads((where / "s.json").read_text())
    line = json_line(result.stderr) if shown else written
    check(line)
    assert written == line
    if not shown:
        assert result.stderr == b"" and result.stdout == b"300\n"
    assert list(line)[:10] == [
        "command",
        "status",
        "exit_code",
        "error",
        "database",
        "engine",
        "kvtool_version",
        "started_at",
        "ended_at",
        "elapsed_seconds",
    ]
    assert line["command"] == command and line["status"] == "ok" and line["error"] is None
    assert line["exit_code"] == result.returncode
    assert os.path.isabs(line["database"]) and line["kvtool_version"] == kvtool.__version__
    assert line["engine"]["name"] == "rocksdict" and line["engine"]["rocksdb_version"]
    started, ended = (datetime.fromisoformat(line[k][:-1]) for k in ("started_at", "ended_at"))
    assert started <= ended
    check_figures(dbs, where, line)
    if command in ("export", "diff", "delete-range", "verify"):
        assert dir_state(dbs.a) == before  # read-only for A


# Each command on a database that does not exist: exit 66, and the envelope says so.
MISSING: dict[str, Callable[[Path, Path], list[str]]] = {
    "export": lambda db, w: [str(db)],
    "diff": lambda db, w: [str(db), str(w)],
    "import": lambda db, w: [str(db), os.devnull],
    "delete-range": lambda db, w: ["--start", "a", "--end", "b", str(db)],
    "compact": lambda db, w: [str(db)],
    "checkpoint": lambda db, w: [str(db), str(w / "copy")],
    "verify": lambda db, w: [str(db)],
}


@pytest.mark.parametrize("command", sorted(MISSING))
def test_a_missing_database_gets_its_envelope_too(
    command: str, dbs: Dbs, check: Callable[[dict[str, Any]], None]
) -> None:
    where = fresh(dbs, f"missing-{command}")
    where.mkdir()
    missing = where / "no.db"
    stats_file = where / "s.json"

    result = run_kvtool(
        command, "--stats", "json", "--stats-file", stats_file, *MISSING[command](missing, where)
    )

    assert result.returncode == 66, result.stderr
    lines = result.stderr.decode().splitlines()
    line, written = json_line(result.stderr), json.loads(stats_file.read_text())
    check(line)
    assert written == line
    assert line["status"] == "failed" and line["exit_code"] == 66
    assert line["database"] == str(missing)
    assert lines[-1] == f"kvtool: error: {line['error']}"  # the error line stays the last
    assert not missing.exists()


def test_text_stats_on_a_failure_print_only_the_error_line(
    dbs: Dbs, check: Callable[[dict[str, Any]], None]
) -> None:
    where = fresh(dbs, "text-failure")
    where.mkdir()

    result = run_kvtool("verify", "--stats-file", where / "s.json", where / "no.db")

    assert result.returncode == 66
    assert result.stderr.decode().count("\n") == 1
    assert result.stderr.startswith(b"kvtool: error: no database at ")
    check(json.loads((where / "s.json").read_text()))


@pytest.mark.parametrize(
    "args",
    [["verify", "{db}", "--bogus"], ["export", "{db}", "--workers", "0"]],
    ids=["unknown-option", "bad-value"],
)
def test_bad_usage_after_the_database_is_named_writes_the_stats_file(
    args: list[str], dbs: Dbs, check: Callable[[dict[str, Any]], None]
) -> None:
    stats_file = fresh(dbs, f"usage-{args[0]}.json")

    result = run_kvtool(
        *[a.format(db=dbs.a) for a in args], "--stats-file", stats_file, "--stats", "json"
    )

    assert result.returncode == 2
    stats = json.loads(stats_file.read_text())
    check(stats)
    assert stats == json_line(result.stderr)
    assert stats["status"] == "failed" and stats["exit_code"] == 2
    assert stats["command"] == args[0] and stats["database"] == str(dbs.a)


def test_a_busy_database(
    dbs: Dbs,
    check: Callable[[dict[str, Any]], None],
    writer_process: Callable[[Path], subprocess.Popen[str]],
) -> None:
    db = fresh(dbs, "busy.db")
    shutil.copytree(dbs.a, db)
    writer_process(db)
    stats_file = dbs.root / "busy.prom"

    result = run_kvtool("compact", "-q", "--stats-file", stats_file, db)

    assert result.returncode == 75
    assert result.stderr.decode().count("\n") == 1  # -q: the error line alone
    families = prom_families(stats_file)
    (sample,) = families["kvtool_last_run_exit_code"].samples
    assert sample.labels == {"command": "compact", "database": str(db)} and sample.value == 75
    assert families["kvtool_last_run_success"].samples[0].value == 0
    assert "kvtool_last_success_timestamp_seconds" not in families  # it never succeeded


def flip_middle(path: Path) -> None:
    """Invert 16 bytes in the middle of an SST file: a data block whose checksum fails."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size // 2)
        chunk = f.read(16)
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))


def test_verify_prom_file_success_then_damage(
    dbs: Dbs, check: Callable[[dict[str, Any]], None]
) -> None:
    db = ldb_load(fresh(dbs, "damaged.db"), [(b"k%06d" % i, b"v" * 100) for i in range(5000)])
    prom = dbs.root / "v.prom"

    ok = run_kvtool("verify", "--stats-file", prom, db)

    assert ok.returncode == 0, ok.stderr
    families = prom_families(prom)
    labels = {"command": "verify", "database": str(db)}
    for name, value in [
        ("kvtool_last_run_exit_code", 0),
        ("kvtool_last_run_success", 1),
        ("kvtool_last_run_records", 5000),
        ("kvtool_last_run_value_bytes", 500_000),
    ]:
        family = families[name]
        assert family.type == "gauge" and family.documentation, name
        assert [(s.labels, s.value) for s in family.samples] == [(labels, value)], name
    (cf,) = families["kvtool_last_run_cf_records"].samples
    assert cf.labels == {**labels, "column_family": "default"} and cf.value == 5000
    (info,) = families["kvtool_last_run_info"].samples
    assert info.labels["status"] == "ok" and info.labels["kvtool_version"] == kvtool.__version__
    ended = families["kvtool_last_run_timestamp_seconds"].samples[0].value
    assert families["kvtool_last_success_timestamp_seconds"].samples[0].value == ended
    assert families["kvtool_last_run_duration_seconds"].samples[0].value > 0
    (sst,) = db.glob("*.sst")
    flip_middle(sst)

    damaged = run_kvtool("verify", "-q", "--stats-file", prom, db)

    assert damaged.returncode == 74
    families = prom_families(prom)
    assert families["kvtool_last_run_exit_code"].samples[0].value == 74
    assert families["kvtool_last_run_success"].samples[0].value == 0
    assert families["kvtool_last_run_info"].samples[0].labels["status"] == "failed"
    # The last success is still known: "no good verify for N days" stays answerable.
    assert families["kvtool_last_success_timestamp_seconds"].samples[0].value == ended
    assert 0 < families["kvtool_last_run_records"].samples[0].value < 5000
    assert not list(dbs.root.glob(".v.prom*")) and not list(dbs.root.glob("v.prom.*"))


def test_label_values_are_escaped(dbs: Dbs) -> None:
    db = fresh(dbs, 'we"ird\\na\nme.db')
    shutil.copytree(dbs.a, db)
    prom = dbs.root / "weird.prom"

    result = run_kvtool("verify", "--stats-file", prom, db)

    assert result.returncode == 0, result.stderr
    assert '\\"ird\\\\na\\nme.db"' in prom.read_text()
    (sample,) = prom_families(prom)["kvtool_last_run_exit_code"].samples
    assert sample.labels["database"] == str(db)


@pytest.mark.slow  # paced to last 1 s at least
def test_a_timeout_stops_with_a_cursor_that_resumes(
    dbs: Dbs, check: Callable[[dict[str, Any]], None]
) -> None:
    where = fresh(dbs, "timeout")
    where.mkdir()
    # 300 records at 100/s take 3 s: a 1 s --timeout lands mid-run.
    first = run_kvtool(
        "export", "-q", "--rate", "100", "--timeout", "1s", "--stats-file", where / "s.json", dbs.a
    )

    assert first.returncode == 124
    stats = json.loads((where / "s.json").read_text())
    check(stats)
    assert stats["status"] == "stopped" and stats["exit_code"] == 124 and stats["cursor"]
    assert 0 < stats["records"] < 300
    rest = run_kvtool("export", "--after", f"@{where / 's.json'}", dbs.a)
    assert rest.returncode == 0
    keys = [json.loads(line)["key"] for line in (first.stdout + rest.stdout).splitlines()]
    assert keys == [k.decode() for k, _ in ldb_scan(dbs.a)]


@pytest.mark.slow  # two paced exports
def test_sigterm_and_a_closed_pipe_are_stops(
    dbs: Dbs, check: Callable[[dict[str, Any]], None]
) -> None:
    where = fresh(dbs, "stops")
    where.mkdir()
    ends = {}
    for how in ("sigterm", "closed"):
        # Paced to 300 records in 6 s, so the stop lands mid-run once the first line is out.
        proc = subprocess.Popen(
            [
                kvtool_executable(),
                *("export", "--rate", "50", "--stats", "json"),
                *("--stats-file", str(where / f"{how}.json"), str(dbs.a)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            assert proc.stdout.readline().startswith(b'{"key":')
            if how == "sigterm":
                proc.send_signal(signal.SIGTERM)
            else:
                proc.stdout.close()
            stderr = proc.stderr.read()
            ends[how] = (proc.wait(timeout=60), stderr)
        finally:
            proc.kill()
            proc.wait()
    code, stderr = ends["sigterm"]
    assert code == 143
    stats = json.loads((where / "sigterm.json").read_text())
    check(stats)
    assert stats == json_line(stderr)
    assert stats["status"] == "stopped" and stats["exit_code"] == 143 and stats["cursor"]
    assert stderr.decode().splitlines()[-1] == f"kvtool: error: {stats['error']}"
    code, stderr = ends["closed"]
    assert code == 0 and stderr == b""  # a closed pipe is a quiet end, stats file aside
    stats = json.loads((where / "closed.json").read_text())
    check(stats)
    assert stats["status"] == "stopped" and stats["exit_code"] == 0 and stats["cursor"]


def test_a_stats_file_that_cannot_be_written_leaves_the_runs_own_error_last(dbs: Dbs) -> None:
    from .test_adversarial_outputs import full_device

    where = fresh(dbs, "full")
    where.mkdir()
    full = full_device(where)  # every write fails with ENOSPC

    result = run_kvtool("verify", "--stats-file", full, where / "no.db")

    assert result.returncode == 66  # the run's own code, not the stats file's
    note, error = result.stderr.decode().splitlines()
    assert note.startswith(f"kvtool: --stats-file {full}: ") and note.endswith("(not written)")
    assert error.startswith("kvtool: error: no database at ")
