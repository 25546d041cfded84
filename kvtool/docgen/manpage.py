"""man/kvtool.1: the commands' help and options and the hand-written sections, as roff."""

from __future__ import annotations

import inspect
import re
import textwrap

from kvtool import __version__
from kvtool.docgen.commands import (
    PROG,
    REGENERATE,
    ROOT,
    CommandInfo,
    OptionDoc,
    help_text,
    options,
    param_opts,
    summary,
    unknown_options,
    usage,
    walk,
)
from kvtool.docgen.sections import ENVIRONMENT, EXAMPLES, EXIT_STATUS, FILES
from kvtool.errors import ExitCode


def roff_escape(text: str) -> str:
    """Text as roff prints it literally: backslashes, ASCII hyphens, no leading control dot."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        ("\\&" + line) if line.startswith((".", "'")) else line for line in text.split("\n")
    )


def roff_text(text: str) -> str:
    """Prose as roff source: words re-filled to short lines (as roff style asks), escaped."""
    filled = textwrap.fill(
        " ".join(text.split()), width=72, break_long_words=False, break_on_hyphens=False
    )
    return roff_escape(filled)


def _tidy(lines: list[str]) -> list[str]:
    """Drop the paragraph breaks roff would skip anyway (mandoc -T lint flags them)."""
    out: list[str] = []
    for line in lines:
        if line == ".PP" and out and out[-1].startswith(".SH"):
            continue
        if line.startswith((".SH", ".SS")) and out and out[-1] == ".br":
            out.pop()
        out.append(line)
    return out


def _roff_option_names(names: str, *, argument: bool) -> str:
    if argument:
        return f"\\fI{roff_escape(names)}\\fR"
    # "-q, --quiet" or "--keys <int range>": option spellings bold, the value's name italic.
    words = names.split(" ")
    spellings = [word for word in words if word.startswith("-")]
    value = " ".join(words[len(spellings) :])
    parts = [f"\\fB{roff_escape(word)}\\fR" for word in spellings]
    if value:
        parts.append(f"\\fI{roff_escape(value)}\\fR")
    return " ".join(parts)


def _roff_help(text: str) -> list[str]:
    """A docstring as roff: paragraphs filled, indented blocks (examples) kept line by line."""
    out: list[str] = []
    last_literal = False
    for block in re.split(r"\n\s*\n", inspect.cleandoc(text)):
        lines = [line for line in block.split("\n") if line.strip() != "\b"]
        if not lines:
            continue
        literal = all(line.startswith((" ", "\t")) for line in lines)
        if literal:
            escaped = [roff_escape(line.strip()) for line in lines]
            if last_literal:  # consecutive example lines form one block
                del out[-2:]
                out.extend([*escaped, ".fi", ".RE"])
            else:
                out.extend([".RS 4", ".nf", *escaped, ".fi", ".RE"])
        else:
            out.extend([".PP", roff_text(" ".join(lines))])
        last_literal = literal
    return out


def _roff_options(docs: list[OptionDoc], *, titles: bool = True) -> list[str]:
    out: list[str] = []
    panels: dict[str, list[OptionDoc]] = {}
    for doc in docs:
        panels.setdefault(doc.panel, []).append(doc)
    for panel, members in panels.items():
        if titles:
            out.extend([".PP", f".I {roff_escape(panel)}"])
        for doc in members:
            out.extend(
                [
                    ".TP",
                    _roff_option_names(doc.names, argument=doc.is_argument),
                    roff_text(doc.help or "(no help)"),
                ]
            )
    return out


def _roff_synopsis(info: CommandInfo) -> list[str]:
    words = [f"\\fB{roff_escape(info.name)}\\fR"]
    for piece in usage(info):
        if piece.startswith("["):
            words.append(f"[\\fI{roff_escape(piece.strip('[]'))}\\fR]")
        else:
            words.append(f"\\fI{roff_escape(piece)}\\fR")
    return [" ".join(words), ".br"]


def page_date() -> str:
    """The man page's date (YYYY-MM-DD), reproducible: SOURCE_DATE_EPOCH when set (as package
    builds set it), else the date of the source tree's last commit, else today (UTC)."""
    import datetime
    import os
    import subprocess

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        when = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)
        return when.strftime("%Y-%m-%d")
    try:
        last = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%d"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, "TZ": "UTC"},
        ).stdout.strip()
    except OSError:  # no git
        last = ""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", last):
        return last
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


# The .TH line's date: the staleness check compares pages without it, since the next commit
# changes it and nothing else of the page.
_TH_DATE = re.compile(r'^(\.TH KVTOOL 1 )"[^"]*"', re.MULTILINE)


def man_page(infos: list[CommandInfo] | None = None) -> str:
    """man/kvtool.1: every command, its options and help, from the app's definitions."""
    infos = infos if infos is not None else list(walk())
    root, commands = infos[0], infos[1:]
    registered = {info.path[0] for info in commands}
    by_name = {info.name: info for info in infos}
    out = [
        "'\\\" t",  # tells man(1) to run tbl(1) for the EXIT STATUS table
        f".\\\" Generated by `{REGENERATE}` from kvtool's Typer app: do not edit by hand.",
        f'.TH KVTOOL 1 "{page_date()}" "kvtool {__version__}" "User Commands"',
        # Ragged right and no hyphenation: option names and commands stay whole.
        ".nh",
        ".ad l",
        ".SH NAME",
        f"{PROG} \\- {roff_escape(_name_line(summary(root)))}",
        ".SH SYNOPSIS",
        f"\\fB{PROG}\\fR [\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] "
        "[\\fIARGUMENTS\\fR]",
        ".br",
        *[line for info in commands if not info.is_group for line in _roff_synopsis(info)],
        ".SH DESCRIPTION",
        *_roff_help(help_text(root)),
        ".PP",
        roff_text(
            "Standard output carries data only; progress, statistics and errors go to "
            'standard error. An error is one line, "kvtool: error: ...", saying what to do '
            "next, and the exit status says what kind of error it was (see EXIT STATUS). "
            "Reading commands leave the database directory byte-for-byte as they found it and "
            "work next to a live writer."
        ),
        ".PP",
        roff_text(
            f'Every command takes the database directory first. Run "{PROG} COMMAND --help" '
            "for a command's help."
        ),
        ".SH GLOBAL OPTIONS",
        roff_escape(f"Given before the command: {PROG} --debug info demo.db."),
        *_roff_options(options(root, with_help_option=True), titles=False),
        ".SH COMMANDS",
    ]
    for info in commands:
        out.extend([f".SS {roff_escape(info.name)}", *_roff_synopsis(info)])
        out.extend(_roff_help(help_text(info)))
        if info.is_group:
            out.extend([".PP", "Commands:"])
            for name in info.subcommands:
                sub = by_name.get(f"{info.name} {name}")
                if sub is not None:
                    out.extend([".TP", f"\\fB{roff_escape(name)}\\fR", roff_text(summary(sub))])
        out.extend(_roff_options(options(info)))
    out.extend([".SH EXIT STATUS", ".TS", "tab(|);", "r lx."])
    for code in ExitCode:
        out.append(f"{int(code)}|T{{\n{roff_text(EXIT_STATUS[code])}\nT}}")
    out.extend([".TE", ".SH ENVIRONMENT"])
    for name, text in _environment(infos).items():
        out.extend([".TP", f"\\fB{roff_escape(name)}\\fR", roff_text(text)])
    out.append(".SH FILES")
    for name, text in FILES:
        out.extend([".TP", f"\\fI{roff_escape(name)}\\fR", roff_text(text)])
    out.append(".SH EXAMPLES")
    for example in EXAMPLES:
        if example.command not in registered:
            continue
        _, unknown = unknown_options(example.line, by_name)
        if unknown:
            continue  # tests/test_docs.py reports it; never document an option that is not there
        out.extend([".PP", roff_text(example.text), ".RS 4", ".nf"])
        out.extend([roff_escape(example.line), ".fi", ".RE"])
    out.extend(
        [
            ".SH SEE ALSO",
            ".BR ldb (1),",
            ".BR sst_dump (1),",
            ".BR jq (1),",
            ".BR crontab (5)",
            ".PP",
            roff_escape("RocksDB: https://rocksdb.org/"),
            ".br",
            roff_escape("rocksdict: https://github.com/rocksdict/RocksDict"),
        ]
    )
    return "\n".join(_tidy(out)) + "\n"


def _name_line(text: str) -> str:
    """The root summary's first clause, lower-cased as NAME lines are: "a command-line ..."."""
    first = text.split(":")[0].rstrip(".")
    return first[:1].lower() + first[1:]


def _environment(infos: list[CommandInfo]) -> dict[str, str]:
    found: dict[str, str] = {}
    for info in infos:
        for param in info.command.get_params(info.context):
            envvars = param.envvar
            if not envvars:
                continue
            for name in [envvars] if isinstance(envvars, str) else list(envvars):
                opts = ", ".join(param_opts(param)) or param.name or ""
                flag = getattr(param, "is_flag", False)
                what = f"Set to 1 for {opts}" if flag else f"The default of {opts}"
                where = f" of {info.name}" if info.path else ""
                text = getattr(param, "help", None) or ""
                found.setdefault(name, f"{what}{where}: {text[:1].lower()}{text[1:]}")
    return {**found, **ENVIRONMENT}


def undated(text: str) -> str:
    """A page without its .TH date, for comparing pages."""
    return _TH_DATE.sub(r'\1""', text)
