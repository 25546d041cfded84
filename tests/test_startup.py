"""Start-up (bench/startup.py measures it): `kvtool count` loads only what counting needs, and
Typer builds only the command that runs, while the root's help and typo suggestions still know
every command."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from kvtool.cli import one_command
from kvtool.cli.one_command import COMMANDS, module_app

from .conftest import run_kvtool
from .oracles import ldb_load, ldb_scan, require_rocksdb614, rocksdb614, rocksdict_script

ROOT = Path(__file__).resolve().parent.parent

# Loaded by other commands, never by `kvtool count` (each was on its path once, or could be).
NOT_FOR_COUNT = {
    "rich",  # Typer's pretty help: only for help on a terminal
    "tqdm",  # progress bars: export and import
    "pydantic",  # Typer 0.29's coercion (kvtool.cli.typer_compat)
    "socket",  # a work dir's host name comes from os.uname
    "hashlib",  # cursors only
    "ctypes",  # the CLI's malloc tuning: streaming commands only
    "kvtool.ondisk",  # du, sst, wal, manifest
    "kvtool.ops.export",
    "kvtool.ops.importer",
    "kvtool.ops.du",
    "kvtool.api",
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ldb_load(tmp_path_factory.mktemp("startup") / "db", [(b"a", b"1"), (b"b", b"2")])


def test_count_imports_nothing_it_does_not_need(db: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kvtool", "count", str(db), "--limit", "10"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "2\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "kvtool.ops.count" in imported  # the list is what it seems
    loaded = {
        name
        for name in imported
        for unwanted in NOT_FOR_COUNT
        if name == unwanted or name.startswith(unwanted + ".")
    }
    assert not loaded


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["count", "{db}"], "count"),
        (["get", "{db}", "a"], "kv"),
        (["cf", "list", "{db}"], "cf"),
    ],
)
def test_a_command_imports_no_other_command_module(
    db: Path, tmp_path: Path, argv: list[str], module: str
) -> None:
    """The root group imports a command's module only when it runs (kvtool.cli.one_command):
    the modules loaded after a whole run hold that command and no other."""
    script = (
        "import sys\n"
        "from kvtool.cli.app import run\n"
        f"code = run({[arg.format(db=db) for arg in argv]!r})\n"
        "print('\\nloaded', code, *sorted(m for m in sys.modules if m.startswith('kvtool.cli.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    code, *loaded = result.stdout.rsplit("\nloaded ", 1)[-1].split()
    assert code == "0", result.stderr[-2000:]
    command_modules = {f"kvtool.cli.{name}" for name in COMMANDS.values()}
    assert command_modules & set(loaded) == {f"kvtool.cli.{module}"}


def _imports(cwd: Path, *argv: str) -> set[str]:
    """The modules a `kvtool ARGV` run imports (python -X importtime), after it exited 0."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kvtool", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}


def test_version_reads_no_metadata_and_no_streams(tmp_path: Path) -> None:
    """`--version` names the engine's versions from its table and the dist-info, and imports
    only the stream modules every run sets up (kvtool.stream is a lazy package)."""
    imported = _imports(tmp_path, "--version")
    assert "kvtool.engine.versions" in imported  # the list is what it seems
    assert "importlib.metadata" not in imported
    streams = {name for name in imported if name.startswith("kvtool.stream.")}
    assert streams == {"kvtool.stream.memory", "kvtool.stream.pacing"}


def test_export_tunes_malloc_without_find_library(db: Path, tmp_path: Path) -> None:
    """mallopt comes from the process's own symbols: ctypes.util.find_library would run
    `ldconfig -p` on every streaming run."""
    imported = _imports(tmp_path, "export", str(db), "-q", "-o", str(tmp_path / "out.jsonl"))
    assert "ctypes" in imported  # keep_freed_memory ran
    assert "ctypes.util" not in imported
    assert (tmp_path / "out.jsonl").read_bytes().count(b"\n") == 2


def test_command_table_names_what_each_module_registers() -> None:
    """COMMANDS (the names --help lists before anything is imported) is what the modules
    register; its order is the help's (tests/test_docs.py compares the man page)."""
    registered = {}
    for module in dict.fromkeys(COMMANDS.values()):
        sub = typer.Typer()
        importlib.import_module(f"kvtool.cli.{module}").register(sub)
        names = [c.name for c in sub.registered_commands] + [g.name for g in sub.registered_groups]
        registered.update(dict.fromkeys(names, module))
    assert registered == COMMANDS
    groups = [name for name in COMMANDS if module_app(name).registered_groups]
    assert list(COMMANDS)[-len(groups) :] == groups  # Typer lists groups after the commands


def test_one_command_built_and_the_rest_still_known(db: Path) -> None:
    assert run_kvtool("--engine", "rocksdict", "count", db).stdout == b"2\n"
    assert run_kvtool("cf", "list", db).stdout == b"default\n"
    typo = run_kvtool("cuont", db)
    assert typo.returncode == 2 and b"Did you mean 'count'?" in typo.stderr
    listed = run_kvtool("--help").stdout.decode()
    for name in COMMANDS:
        assert f"  {name} " in listed


@pytest.mark.parametrize("stats", [False, True])
def test_a_run_builds_only_its_command(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stats: bool
) -> None:
    """Typer builds the Click command of the run only, for the run and for its stats (count
    records its figures on every run), not the other commands' options."""
    from kvtool.cli.app import run

    built: list[str] = []
    original = typer.main.get_command_from_info

    def counting(command_info: typer.models.CommandInfo, **kwargs: object) -> object:
        built.append(command_info.name or "")
        return original(command_info, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(typer.main, "get_command_from_info", counting)
    monkeypatch.setattr(one_command, "_BUILT", {})  # built afresh in this test
    extra = ["--stats-file", str(tmp_path / "s.json")] if stats else []
    assert run(["count", str(db), *extra]) == 0
    assert built and set(built) == {"count"}


def test_parquet_export_and_import_load_pyarrow_without_numpy(db: Path, tmp_path: Path) -> None:
    """pyarrow works without NumPy, which was half of its import: the kvtool process leaves it
    out (kvtool.formats.arrow._without_numpy), and the dataset and the import are still right."""
    import pyarrow.parquet as pq  # the test extra has it (as tests/test_parquet.py needs)

    def imports(*argv: str) -> set[str]:
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "kvtool", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}

    out = tmp_path / "ds"
    exported = imports("export", str(db), "--format", "parquet", "-o", str(out), "-q")
    assert "pyarrow.parquet" in exported  # the list is what it seems
    assert "numpy" not in exported
    table = pq.read_table(out)
    assert table.column("key").to_pylist() == [b"a", b"b"]
    assert table.column("value").to_pylist() == [b"1", b"2"]
    copy = tmp_path / "copy"
    imported = imports("import", "--create", str(copy), str(out), "-q")
    assert "pyarrow.parquet" in imported and "numpy" not in imported
    assert ldb_scan(copy) == [(b"a", b"1"), (b"b", b"2")]


@pytest.mark.parametrize(
    ("text", "optional"),
    [
        ("__version__ = version = '26.0.1'\n", True),
        ("__version__ = version = '18.0.0'\n", True),
        ("version = '17.0.0'\n", False),  # NumPy still a dependency: imported as ever
        ("version = '15.0.2'\n", False),
        ("nothing to read\n", False),
        (None, False),  # no version file
    ],
)
def test_numpy_is_left_out_only_where_pyarrow_runs_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | None, optional: bool
) -> None:
    import importlib.machinery
    import importlib.util

    from kvtool.formats import arrow

    package = tmp_path / "pyarrow"
    package.mkdir()
    (package / "__init__.py").write_text("")
    if text is not None:
        (package / "_generated_version.py").write_text(text)
    spec = importlib.machinery.ModuleSpec("pyarrow", None, origin=str(package / "__init__.py"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    assert arrow._numpy_optional() is optional


def _written_rocksdb_version(db: Path) -> str:
    """The `rocksdb_version` a writer recorded in its newest OPTIONS file (plain text)."""
    newest = max(db.glob("OPTIONS-*"), key=lambda p: int(p.name.split("-")[1]))
    for line in newest.read_text().splitlines():
        name, _, value = line.strip().partition("=")
        if name == "rocksdb_version":
            return value
    raise AssertionError(f"no rocksdb_version in {newest}")


def test_known_rocksdb_of_rocksdict_is_what_rocksdict_writes(tmp_path: Path) -> None:
    """ROCKSDB_OF_ROCKSDICT against rocksdict itself; an unlisted release is probed."""
    from importlib.metadata import version

    from kvtool.engine.rdict import RdictEngine
    from kvtool.engine.versions import ROCKSDB_OF_ROCKSDICT

    rocksdict_script("rd.Rdict(sys.argv[1]).close()", tmp_path / "db")
    written = _written_rocksdb_version(tmp_path / "db")
    installed = version("rocksdict")
    assert ROCKSDB_OF_ROCKSDICT.get(installed, written) == written
    assert RdictEngine().versions() == {"rocksdict": installed, "rocksdb": written}


def test_known_rocksdb_of_faust_rocksdb_is_what_it_writes(tmp_path: Path) -> None:
    from importlib.metadata import version

    require_rocksdb614()
    from kvtool.engine.pyrocksdb.engine import PyRocksdbEngine
    from kvtool.engine.versions import ROCKSDB_OF_FAUST_ROCKSDB

    rocksdb614(
        "rocksdb.DB(sys.argv[1], rocksdb.Options(create_if_missing=True)).close()",
        tmp_path / "db",
    )
    written = _written_rocksdb_version(tmp_path / "db")
    installed = version("faust-streaming-rocksdb")
    assert ROCKSDB_OF_FAUST_ROCKSDB.get(installed, written) == written
    versions = PyRocksdbEngine().versions()
    assert versions["python-rocksdb"] == installed and versions["rocksdb"] == written
    assert versions["rocksdict"] == version("rocksdict")


def test_a_listed_binding_is_not_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    """--version, info, stats and Parquet manifests create no database to learn the version
    of a listed binding; an unlisted one is probed."""
    from importlib.metadata import version

    from kvtool.engine import versions
    from kvtool.engine.rdict import engine

    def probe() -> str:
        raise AssertionError("probed")

    monkeypatch.setattr(engine, "bundled_rocksdb_version", probe)
    monkeypatch.setattr(versions, "ROCKSDB_OF_ROCKSDICT", {version("rocksdict"): "1.2.3"})
    assert engine.RdictEngine().versions()["rocksdb"] == "1.2.3"
    monkeypatch.setattr(engine, "bundled_rocksdb_version", lambda: "4.5.6")
    monkeypatch.setattr(versions, "ROCKSDB_OF_ROCKSDICT", {})
    assert engine.RdictEngine().versions()["rocksdb"] == "4.5.6"


def test_version_lookup_without_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dist-info beside a package names its version, as importlib.metadata does; a package
    with none beside it (an editable install) is looked up by importlib.metadata."""
    from importlib.metadata import PackageNotFoundError, version

    from kvtool.engine.versions import _version_beside, distribution_version

    for distribution, module in [
        ("rocksdict", "rocksdict"),
        ("typer", "typer"),
        ("orjson", "orjson"),
    ]:
        assert _version_beside(distribution, module) == version(distribution)
    site = tmp_path / "site"
    (site / "fake_pkg").mkdir(parents=True)
    (site / "fake_pkg" / "__init__.py").write_text("")
    (site / "Other-9.9.dist-info").mkdir()
    (site / "Other-9.9.dist-info" / "METADATA").write_text("Name: Other\nVersion: 9.9\n")
    (site / "Fake.Pkg-1.2.3.dist-info").mkdir()
    (site / "Fake.Pkg-1.2.3.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: Fake.Pkg\nVersion: 1.2.3\n\nVersion: 0\n"
    )
    monkeypatch.syspath_prepend(str(site))
    assert distribution_version("fake-pkg", "fake_pkg") == "1.2.3"
    (site / "lonely").mkdir()  # no dist-info beside it: importlib.metadata is asked
    (site / "lonely" / "__init__.py").write_text("")
    with pytest.raises(PackageNotFoundError):
        distribution_version("lonely", "lonely")


def test_collector_paused_for_start_up_only(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The entry point imports kvtool's command line, and the run builds its command, with the
    cyclic garbage collector paused; the command's own work runs with it on, and so does the
    process after a pause that found it on (kvtool.cli.launch)."""
    import gc

    from kvtool.cli import launch
    from kvtool.ops import count

    seen: dict[str, bool] = {}
    original_build = typer.main.get_command_from_info
    original_count = count.count_records

    def building(*args: Any, **kwargs: Any) -> Any:
        seen["build"] = gc.isenabled()
        return original_build(*args, **kwargs)

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen["work"] = gc.isenabled()
        return original_count(*args, **kwargs)

    monkeypatch.setattr(typer.main, "get_command_from_info", building)
    monkeypatch.setattr(count, "count_records", counting)
    monkeypatch.setattr(one_command, "_BUILT", {})
    monkeypatch.setattr(sys, "argv", ["kvtool", "count", str(db)])
    assert gc.isenabled()
    with pytest.raises(SystemExit) as stop:
        launch.main()
    assert stop.value.code == 0 and capsys.readouterr().out == "2\n"
    assert seen == {"build": False, "work": True}
    assert gc.isenabled()
    gc.disable()
    try:
        with launch.paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # an application's own pause is kept
    finally:
        gc.enable()
