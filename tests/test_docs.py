"""The generated man page and completion scripts: current, complete, valid, and working."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kvtool import docgen
from kvtool.errors import ExitCode

from .conftest import kvtool_executable, require_tool, run_kvtool

ROOT = Path(__file__).resolve().parent.parent
MAN = ROOT / docgen.MAN_FILE
BASH = ROOT / docgen.COMPLETION_FILES["bash"]
ZSH = ROOT / docgen.COMPLETION_FILES["zsh"]
FISH = ROOT / docgen.COMPLETION_FILES["fish"]


@pytest.fixture(scope="module")
def commands() -> list[docgen.CommandInfo]:
    return list(docgen.walk())


@pytest.fixture(scope="module")
def man_text() -> str:
    return MAN.read_text(encoding="utf-8")


def unescape(roff: str) -> str:
    """Roff source back to plain words, enough to search it."""
    return roff.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


# --- staleness -------------------------------------------------------------------------------


def test_committed_files_are_what_the_app_generates() -> None:
    stale = docgen.stale_files(ROOT)
    assert not stale, (
        f"generated files are stale: {', '.join(map(str, stale))}; "
        f"run `{docgen.REGENERATE}` and commit the result"
    )


def test_stale_check_notices_a_changed_file(tmp_path: Path) -> None:
    assert docgen.main(["--root", str(tmp_path)]) == 0
    assert docgen.stale_files(tmp_path) == []
    man = tmp_path / docgen.MAN_FILE
    man.write_text(man.read_text(encoding="utf-8").replace(".SS kvtool info", ".SS kvtool"))
    assert docgen.stale_files(tmp_path) == [docgen.MAN_FILE]
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 1


# --- the man page covers every command -------------------------------------------------------


def test_walk_finds_nested_commands(commands: list[docgen.CommandInfo]) -> None:
    names = {info.name for info in commands}
    assert {"kvtool", "kvtool info", "kvtool get", "kvtool cf", "kvtool cf list"} <= names


def test_every_command_and_option_is_in_the_man_page(
    commands: list[docgen.CommandInfo], man_text: str
) -> None:
    sections = re.split(r"^\.SS ", man_text, flags=re.M)
    by_title = {unescape(s.split("\n", 1)[0]): unescape(s) for s in sections[1:]}
    for info in commands[1:]:
        assert info.name in by_title, f"{info.name} has no section in {docgen.MAN_FILE}"
        section = by_title[info.name]
        assert docgen.summary(info) in " ".join(section.split()), info.name
        for option in docgen.options(info):
            spelling = option.names.split(" ")[-1 if option.is_argument else 0].rstrip(",")
            assert spelling in section, f"{info.name}: {spelling} missing from the man page"
    for option in docgen.options(commands[0], with_help_option=True):
        assert option.names.split(" ")[0].rstrip(",") in unescape(man_text)


def test_man_page_has_the_sections_a_reader_expects(man_text: str) -> None:
    headings = re.findall(r"^\.SH (.+)$", man_text, flags=re.M)
    for heading in (
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
        "SEE ALSO",
    ):
        assert heading in headings
    plain = unescape(man_text)
    environment = plain.split(".SH ENVIRONMENT", 1)[1].split(".SH", 1)[0]
    for name in ("KVTOOL_DEBUG", "NO_COLOR", "_KVTOOL_COMPLETE"):
        assert f"\\fB{name}\\fR" in environment
    # The user's environment only: the test suite's CI switch is CONTRIBUTING.md's business.
    assert "\\fBCI\\fR" not in environment
    examples = plain.split(".SH EXAMPLES", 1)[1].split(".SH", 1)[0]
    assert "| jq " in examples
    assert re.search(r"^[\d*/,-]+ [\d*/,-]+ [\d*/,-]+ [\d*/,-]+ [\d*/,-]+ kvtool ", examples, re.M)
    see_also = plain.split(".SH SEE ALSO", 1)[1]
    for page in ("ldb (1)", "sst_dump (1)", "jq (1)"):
        assert f".BR {page}" in see_also


def test_exit_status_table_lists_every_exit_code(man_text: str) -> None:
    assert set(docgen.EXIT_STATUS) == set(ExitCode), "add the new exit code to docgen.EXIT_STATUS"
    table = man_text.split(".SH EXIT STATUS", 1)[1].split(".TE", 1)[0]
    rows = [int(code) for code in re.findall(r"^(\d+)\|", table, flags=re.M)]
    assert rows == [int(code) for code in ExitCode]


def test_every_example_of_a_registered_command_is_shown(
    commands: list[docgen.CommandInfo], man_text: str
) -> None:
    by_name = {info.name: info for info in commands}
    registered = {info.path[0] for info in commands[1:]}
    shown = 0
    for example in docgen.EXAMPLES:
        if example.command not in registered:
            continue
        name, unknown = docgen.unknown_options(example.line, by_name)
        assert name == f"kvtool {example.command}", example.line
        assert not unknown, f"man EXAMPLES: {example.line!r} uses {unknown}, which {name} lacks"
        assert docgen.roff_escape(example.line) in man_text
        shown += 1
    assert shown >= 3


def test_roff_escaping_keeps_text_literal() -> None:
    assert docgen.roff_escape(".hidden\n'quote\nC:\\path --opt") == (
        "\\&.hidden\n\\&'quote\nC:\\epath \\-\\-opt"
    )


def test_man_page_is_well_formed_roff(man_text: str) -> None:
    allowed = {"TH", "SH", "SS", "PP", "TP", "RS", "RE", "nf", "fi", "br", "B", "I", "BR"}
    allowed |= {"TS", "TE", "nh", "ad", '\\"'}
    in_table = False
    for number, line in enumerate(man_text.splitlines(), 1):
        if line.startswith(".TS"):
            in_table = True
        if line.startswith(".TE"):
            in_table = False
        if line.startswith(".") and not in_table:
            macro = line[1:].split(" ", 1)[0]
            assert macro in allowed, f"line {number}: unexpected request {line!r}"
        if line.startswith("'"):
            assert number == 1 and line == "'\\\" t", f"line {number}: {line!r}"
        fonts = re.findall(r"\\f([BIR])", line)
        assert fonts.count("R") == len(fonts) - fonts.count("R"), f"line {number}: {line!r}"
        assert line == line.rstrip(), f"line {number}: trailing whitespace"
    requests = [line.split(" ", 1)[0] for line in man_text.splitlines()]
    assert requests.count(".RS") == requests.count(".RE")
    assert requests.count(".nf") == requests.count(".fi")


def test_man_page_renders_without_warnings() -> None:
    # Optional: formatters are not a test requirement; the structural test above always runs.
    if shutil.which("mandoc"):
        result = subprocess.run(
            ["mandoc", "-T", "lint", "-W", "warning", str(MAN)],
            capture_output=True,
            text=True,
            check=False,
        )
        # An empty date keeps the file reproducible; mandoc mentions it.
        problems = [line for line in result.stdout.splitlines() if "missing date" not in line]
        assert not problems, "\n".join(problems)
    elif shutil.which("groff"):
        result = subprocess.run(
            ["groff", "-t", "-man", "-Tutf8", "-ww", "-z", str(MAN)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0 and not result.stderr, result.stderr
    else:
        require_tool("mandoc")  # skips here, fails under CI=true


# --- completion scripts ----------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_what_kvtool_itself_emits(shell: str) -> None:
    # The committed file is the program's own completion source (plus one header comment).
    result = run_kvtool(env={"_KVTOOL_COMPLETE": f"source_{shell}"})
    assert result.returncode == 0, result.stderr
    committed = (ROOT / docgen.COMPLETION_FILES[shell]).read_text(encoding="utf-8")
    without_header = "".join(
        line for line in committed.splitlines(keepends=True) if not line.startswith("# Generated")
    )
    assert without_header.strip() == result.stdout.decode().strip()
    assert "_KVTOOL_COMPLETE=complete_" in committed


def test_bash_completion_parses() -> None:
    result = subprocess.run(["bash", "-n", str(BASH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_zsh_completion_parses() -> None:
    zsh = require_tool("zsh")
    result = subprocess.run([zsh, "-n", str(ZSH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert ZSH.read_text(encoding="utf-8").startswith("#compdef kvtool\n")


def test_fish_completion_parses() -> None:
    fish = require_tool("fish")
    result = subprocess.run([fish, "-n", str(FISH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def shell_env(tmp_path: Path) -> dict[str, str]:
    """The installed kvtool first on PATH, as a user's shell would find it; a clean HOME."""
    bin_dir = str(Path(kvtool_executable()).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
    }


def bash_complete(words: list[str], tmp_path: Path) -> list[str]:
    """Source completions/kvtool.bash, complete `words` (the last one is the partial word)."""
    quoted = " ".join("'" + word.replace("'", "'\\''") + "'" for word in words)
    script = (
        f"source '{BASH}'\n"
        f"COMP_WORDS=({quoted})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_kvtool_completion kvtool\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        env=shell_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completes_in_to_info(tmp_path: Path) -> None:
    assert bash_complete(["kvtool", "in"], tmp_path) == ["info"]


def test_bash_completes_g_to_generate_and_get(tmp_path: Path) -> None:
    assert sorted(bash_complete(["kvtool", "g"], tmp_path)) == ["generate", "get"]


def test_bash_completes_ex_to_export(tmp_path: Path) -> None:
    assert "export" in bash_complete(["kvtool", "ex"], tmp_path)


def test_bash_completes_sub_commands_and_choices(tmp_path: Path) -> None:
    assert bash_complete(["kvtool", "cf", ""], tmp_path) == ["list", "create", "drop"]
    offered = bash_complete(["kvtool", "get", "--value-format", ""], tmp_path)
    assert offered == ["raw", "utf8", "hex", "base64"]


def test_bash_completes_every_registered_command(
    commands: list[docgen.CommandInfo], tmp_path: Path
) -> None:
    top = [info.path[0] for info in commands[1:] if len(info.path) == 1]
    assert set(bash_complete(["kvtool", ""], tmp_path)) == set(top)


def test_fish_completes_from_the_script(tmp_path: Path) -> None:
    fish = require_tool("fish")
    result = subprocess.run(
        [
            fish,
            "--no-config",
            "-c",
            f"source '{FISH}'; complete -C'kvtool in'; complete -C'kvtool g'",
        ],
        capture_output=True,
        text=True,
        env=shell_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    words = sorted(line.split("\t", 1)[0] for line in result.stdout.splitlines())
    assert words == ["generate", "get", "info"]


def test_zsh_protocol_offers_commands_with_their_summaries(tmp_path: Path) -> None:
    # What the zsh script evals: an _arguments spec with each word and its summary.
    result = run_kvtool(
        env={"_KVTOOL_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "kvtool g"}
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.startswith("_arguments ")
    assert '"get":"Print the value of one key."' in out
    assert '"generate":' in out


def test_install_completion_keeps_working(tmp_path: Path) -> None:
    # Shell detection off so the shell can be named; HOME is a scratch directory.
    env = {"HOME": str(tmp_path), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    result = run_kvtool("--install-completion", "bash", env=env)
    assert result.returncode == 0, result.stderr
    installed = (tmp_path / ".bash_completions" / "kvtool.sh").read_text()
    committed = BASH.read_text(encoding="utf-8")
    assert committed.split("\n", 1)[1].strip() == installed.strip()
    assert "source" in (tmp_path / ".bashrc").read_text()


# --- completion of values: every choice's, and column family names ----------------------------


def test_bash_completes_each_choice_with_its_values(tmp_path: Path) -> None:
    # Each choice is an enum option type: TAB lists its values, never directories.
    offered = bash_complete(["kvtool", "export", "--format", ""], tmp_path)
    assert offered == ["jsonl", "csv", "tsv", "parquet"]
    assert bash_complete(["kvtool", "scan", "-f", ""], tmp_path) == ["jsonl", "csv", "tsv", "table"]
    offered = bash_complete(["kvtool", "import", "--key-format", ""], tmp_path)
    assert offered == ["auto", "utf8", "hex", "base64"]  # no json: keys must be byte-exact
    assert bash_complete(["kvtool", "--engine", ""], tmp_path) == ["rocksdict", "python-rocksdb"]
    assert "json" in bash_complete(["kvtool", "export", "--value-format", ""], tmp_path)
    assert bash_complete(["kvtool", "import", "--mode", ""], tmp_path) == ["batch", "sst"]
    assert bash_complete(["kvtool", "compact", "--bottommost", "if"], tmp_path) == ["if-needed"]


def test_a_choice_is_refused_where_it_is_not_offered() -> None:
    result = run_kvtool("import", "--key-format", "json", "nowhere.db", input=b"")
    assert result.returncode == ExitCode.USAGE
    assert result.stderr.decode().startswith("kvtool: error: ")
    assert run_kvtool("export", "nowhere.db", "--format", "table").returncode == ExitCode.USAGE


@pytest.fixture
def cf_db(tmp_path: Path) -> Path:
    """A database ldb 7.8 wrote, with two more column families (one name with a space)."""
    from .oracles import ldb_ok

    db = tmp_path / "cf.db"
    ldb_ok(f"--db={db}", "--create_if_missing", "put", "k", "v")
    ldb_ok(f"--db={db}", "create_column_family", "users")
    ldb_ok(f"--db={db}", "create_column_family", "usage log")
    return db


def test_bash_completes_column_family_names(cf_db: Path, tmp_path: Path) -> None:
    before = sorted((p.name, p.stat().st_mtime_ns) for p in cf_db.iterdir())
    home = tmp_path / "home"
    home.mkdir()
    assert bash_complete(["kvtool", "export", str(cf_db), "--cf", "u"], home) == [
        "users",
        "usage log",
    ]
    assert bash_complete(["kvtool", "compact", str(cf_db), "--cf", ""], home) == [
        "default",
        "users",
        "usage log",
    ]
    assert bash_complete(["kvtool", "cf", "drop", str(cf_db), "us"], home) == [
        "users",
        "usage log",
    ]
    # Read without an open: the database directory is as it was.
    assert sorted((p.name, p.stat().st_mtime_ns) for p in cf_db.iterdir()) == before


def test_column_family_completion_is_silent_without_a_database(tmp_path: Path) -> None:
    assert bash_complete(["kvtool", "export", str(tmp_path / "none"), "--cf", ""], tmp_path) == []
    assert bash_complete(["kvtool", "export", "--cf", ""], tmp_path) == []
    assert not (tmp_path / "none").exists()


def test_fish_completes_choices_and_column_families(cf_db: Path, tmp_path: Path) -> None:
    fish = require_tool("fish")
    result = subprocess.run(
        [
            fish,
            "--no-config",
            "-c",
            f"source '{FISH}'; complete -C'kvtool export --format '; "
            f"complete -C'kvtool export {cf_db} --cf us'",
        ],
        capture_output=True,
        text=True,
        env=shell_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    words = [line.split("\t", 1)[0] for line in result.stdout.splitlines()]
    assert sorted(words) == ["csv", "jsonl", "parquet", "tsv", "usage log", "users"]


# zsh's completion runs only in an interactive shell's line editor: drive one in a pseudo-terminal
# (zsh/zpty), type the line and a TAB, and block until the listing shows (or the timeout fails it).
_ZPTY = """
zmodload zsh/zpty
zpty z "HOME=$KVT_HOME ZDOTDIR=$KVT_HOME zsh -i $KVT_FLAGS"
zpty -w z "PS1='READY> '"
zpty -r z out '*READY> '
zpty -w -n z $'kvtool export --format \\t'
zpty -r z out '*tsv*'
print -r -- "$out"
zpty -d z
"""


def zsh_first_tab(home: Path, *flags: str) -> str:
    zsh = require_tool("zsh")
    env = {**shell_env(home), "KVT_HOME": str(home), "KVT_FLAGS": " ".join(flags)}
    result = subprocess.run(
        [zsh, "-f", "-c", _ZPTY], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_zsh_first_tab_completes_when_autoloaded_from_fpath(tmp_path: Path) -> None:
    functions = tmp_path / "functions"
    functions.mkdir()
    shutil.copy(ZSH, functions / "_kvtool")
    (tmp_path / ".zshrc").write_text(
        f"fpath=({functions} $fpath); autoload -Uz compinit; compinit -u -D\n"
    )
    out = zsh_first_tab(tmp_path)
    assert "jsonl" in out and "csv" in out


def test_zsh_first_tab_completes_after_install_completion(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    result = run_kvtool("--install-completion", "zsh", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".zfunc" / "_kvtool").read_text().startswith("#compdef kvtool\n")
    out = zsh_first_tab(tmp_path)
    assert "jsonl" in out and "csv" in out
