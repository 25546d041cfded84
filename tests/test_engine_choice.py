"""Choosing the engine: `--engine NAME` and KVTOOL_ENGINE reach every open; the version lines name
the engine that reads; an unknown name is a usage error listing the engines, which help, the man
page and completion list too.

Databases are written by `ldb` 7.8, and `ldb scan` is the oracle for what the chosen engine reads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from kvtool import docgen
from kvtool.cli.app import run
from kvtool.engine import ENGINES, Database, EngineName, OpenMode
from kvtool.engine.rdict import RdictEngine, bundled_rocksdb_version
from tests.conftest import dir_state, require_tool, run_kvtool
from tests.oracles import ldb_load, ldb_scan

OPENED: list[tuple[Path, OpenMode]] = []


class ProbeEngine(RdictEngine):
    """rocksdict under another name, noting each open: proof that an op used the chosen engine."""

    name = "probe"

    def open(self, path: Path, mode: OpenMode, **kwargs: Any) -> Database:
        OPENED.append((path, mode))
        return super().open(path, mode, **kwargs)

    def versions(self) -> dict[str, str]:
        return {"probe": "1.2.3", "rocksdb": "9.8.4"}


@pytest.fixture
def ldb_db(tmp_path: Path) -> Path:
    require_tool("ldb")
    records = [(b"k%03d" % i, b"v%d" % i) for i in range(50)]
    return ldb_load(tmp_path / "db", records)


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, OpenMode]]:
    # What `--engine python-rocksdb` loads comes from its line of ENGINES: here the probe.
    monkeypatch.setitem(ENGINES, EngineName.PYTHON_ROCKSDB, f"{__name__}:ProbeEngine")
    monkeypatch.delenv("KVTOOL_ENGINE", raising=False)
    OPENED.clear()
    return OPENED


def test_an_unknown_engine_is_a_usage_error_listing_the_engines(ldb_db: Path) -> None:
    before = dir_state(ldb_db)
    for args, env in (
        (["--engine", "nope", "count", ldb_db], {}),
        (["count", ldb_db], {"KVTOOL_ENGINE": "nope"}),
        (["--engine", "nope", "--version"], {}),
    ):
        result = run_kvtool(*args, env=env)
        assert result.returncode == 2, result.stderr
        assert result.stdout == b""
        assert result.stderr.decode().splitlines() == [
            "kvtool: error: Invalid value for '--engine' (env var: 'KVTOOL_ENGINE'): 'nope' is "
            "not one of 'rocksdict', 'python-rocksdb'. (see kvtool --help)"
        ]
    assert dir_state(ldb_db) == before


def test_the_engine_names_are_listed_by_help_and_the_man_page() -> None:
    result = run_kvtool("--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "--engine <rocksdict|python-rocksdb>" in result.stdout.decode()
    (root,) = (info for info in docgen.walk() if not info.path)
    (engine,) = (doc for doc in docgen.options(root) if doc.names.startswith("--engine"))
    assert engine.names == "--engine <rocksdict|python-rocksdb>"
    man = (docgen.ROOT / docgen.MAN_FILE).read_text(encoding="utf-8")
    assert "\\fB\\-\\-engine\\fR \\fI<rocksdict|python\\-rocksdb>\\fR" in man


def test_version_and_info_name_the_engine_and_its_rocksdb(ldb_db: Path) -> None:
    from importlib.metadata import version

    own = f"rocksdict {version('rocksdict')}, RocksDB {bundled_rocksdb_version()}"
    for args, env in ((["--version"], {}), (["--engine", "rocksdict", "--version"], {})):
        result = run_kvtool(*args, env={"KVTOOL_ENGINE": "rocksdict", **env})
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(rf"kvtool \S+ \({re.escape(own)}\)\n", result.stdout.decode())
    result = run_kvtool("--engine", "rocksdict", "info", ldb_db)
    assert result.returncode == 0, result.stderr
    assert f"read with:       {own}\n" in result.stdout.decode()


def test_the_chosen_engine_opens_for_every_command(
    ldb_db: Path, probe: list[tuple[Path, OpenMode]], capsys: pytest.CaptureFixture[str]
) -> None:
    expected = ldb_scan(ldb_db)
    assert run(["--engine", "python-rocksdb", "count", str(ldb_db)]) == 0
    assert capsys.readouterr().out == f"{len(expected)}\n"
    assert probe == [(ldb_db, OpenMode.READ_ONLY)]
    probe.clear()
    assert run(["--engine", "python-rocksdb", "put", str(ldb_db), "k999", "v"]) == 0
    assert probe[0] == (ldb_db, OpenMode.READ_WRITE)  # (then its own look, read-only)
    assert ldb_scan(ldb_db) == [*expected, (b"k999", b"v")]
    probe.clear()
    assert run(["--engine", "python-rocksdb", "--version"]) == 0
    assert "(probe 1.2.3, RocksDB 9.8.4)" in capsys.readouterr().out
    # The choice lasts one run: the next one without --engine uses the default.
    assert run(["count", str(ldb_db)]) == 0
    assert probe == []


def test_kvtool_engine_chooses_when_no_option_does(
    ldb_db: Path,
    probe: list[tuple[Path, OpenMode]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KVTOOL_ENGINE", "python-rocksdb")
    assert run(["info", str(ldb_db)]) == 0
    assert "read with:       probe 1.2.3, RocksDB 9.8.4\n" in capsys.readouterr().out
    assert probe == [(ldb_db, OpenMode.READ_ONLY)]
    probe.clear()
    assert run(["--engine", "rocksdict", "count", str(ldb_db)]) == 0
    assert probe == []


def test_native_errors_cross_the_engine_boundary_with_fields(tmp_path: Path) -> None:
    from kvtool.errors import CorruptionError, from_native

    shadowless = RuntimeError(f"Corruption: block checksum mismatch in {tmp_path}/000012.sst")
    error = from_native(shadowless, context="reading")
    assert isinstance(error, CorruptionError)
    assert error.message == f"reading: {shadowless}"
    assert (error.detail, error.file, error.blob) == (str(shadowless), "000012.sst", False)
    blob = from_native(RuntimeError("Corruption: Blob file 000015.blob checksum"))
    assert (blob.file, blob.blob) == ("000015.blob", True)
