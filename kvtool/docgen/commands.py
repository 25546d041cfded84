"""The registered commands as the generated docs read them: walking kvtool's Typer app, and
each command's help, options, usage and example lines."""

from __future__ import annotations

import inspect
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from typer._click import Command, Parameter

PROG = "kvtool"
# The variable Typer's completion scripts set when they re-run the program on TAB.
COMPLETE_VAR = f"_{PROG.upper()}_COMPLETE"
REGENERATE = "python -m kvtool.docgen"
ROOT = Path(__file__).resolve().parent.parent.parent  # the source tree the files are written to


@dataclass(frozen=True)
class CommandInfo:
    """One registered command (or group), with the context its help is rendered in."""

    path: tuple[str, ...]  # ("cf", "list"); () for the root
    command: Command
    context: typer.Context

    @property
    def name(self) -> str:
        return " ".join((PROG, *self.path))

    @property
    def subcommands(self) -> dict[str, Command]:
        found: dict[str, Command] = getattr(self.command, "commands", {})
        return found

    @property
    def is_group(self) -> bool:
        return bool(self.subcommands)


def root_command() -> Command:
    """The Click command Typer builds from kvtool's app, as `kvtool` itself runs it."""
    from kvtool.cli.app import app

    return typer.main.get_command(app)


def walk(command: Command | None = None) -> Iterator[CommandInfo]:
    """The root, then every visible command and sub-command, depth first, in help order."""
    command = command or root_command()
    root = CommandInfo((), command, _context(command, PROG, None))
    yield root
    yield from _walk_children(root)


def _walk_children(parent: CommandInfo) -> Iterator[CommandInfo]:
    for name, child in parent.subcommands.items():
        if getattr(child, "hidden", False):
            continue
        info = CommandInfo((*parent.path, name), child, _context(child, name, parent.context))
        yield info
        yield from _walk_children(info)


def _context(command: Command, name: str, parent: typer.Context | None) -> typer.Context:
    # What make_context() does before parsing: the command's own settings (e.g. -h) apply.
    return typer.Context(command, info_name=name, parent=parent, **command.context_settings)


def help_text(info: CommandInfo) -> str:
    return inspect.cleandoc(info.command.help or "")


def summary(info: CommandInfo) -> str:
    """The first paragraph of a command's help, on one line."""
    first = help_text(info).split("\n\n", 1)[0]
    return " ".join(first.split())


@dataclass(frozen=True)
class OptionDoc:
    names: str  # "-q, --quiet" or "--cf NAME"
    help: str
    panel: str
    is_argument: bool


def options(info: CommandInfo, *, with_help_option: bool = False) -> list[OptionDoc]:
    """Every visible parameter as --help shows it (defaults, ranges and env vars included)."""
    docs = []
    for param in info.command.get_params(info.context):
        if param.name == "help" and not with_help_option:
            continue
        record = param.get_help_record(info.context)
        if record is None:
            continue
        names, text = record
        is_argument = param.param_type_name == "argument"
        if is_argument:
            names = names.split(" ", 1)[0]
        panel = getattr(param, "rich_help_panel", None) or (
            "Arguments" if is_argument else "Options"
        )
        docs.append(OptionDoc(names, " ".join(text.split()), panel, is_argument))
    return docs


def option_names(info: CommandInfo) -> set[str]:
    names: set[str] = set()
    for param in info.command.get_params(info.context):
        names.update(param_opts(param))
    return names


def param_opts(param: Parameter) -> list[str]:
    if param.param_type_name != "option":
        return []
    return [*param.opts, *param.secondary_opts]


def usage(info: CommandInfo) -> list[str]:
    """The usage line's pieces after the command name; Typer's {REQUIRED} braces dropped."""
    pieces = info.command.collect_usage_pieces(info.context)
    return [re.sub(r"^\{(.*)\}$", r"\1", piece) for piece in pieces]


# --- examples in help texts ------------------------------------------------------------------


def example_lines(text: str) -> list[str]:
    """The indented `kvtool ...` lines of a help text (its Examples)."""
    return [
        line.strip()
        for line in text.splitlines()
        if line.startswith((" ", "\t")) and PROG in line.split()
    ]


def unknown_options(line: str, infos: dict[str, CommandInfo]) -> tuple[str | None, list[str]]:
    """Which command an example line runs, and the options it uses that the command lacks."""
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    if PROG not in words:
        return None, []
    words = words[words.index(PROG) + 1 :]
    for stop in ("|", "||", "&&", ";", ">", "2>"):
        if stop in words:
            words = words[: words.index(stop)]
    path: list[str] = []
    known = option_names(infos[PROG])
    used: list[str] = []
    positional = False  # once an argument is seen, words are no longer command names
    for word in words:
        if word == "--":
            break
        if word.startswith("-") and len(word) > 1 and not re.fullmatch(r"-[\d.]+", word):
            used.append(word.split("=", 1)[0])
            continue
        candidate = " ".join((PROG, *path, word))
        if not positional and candidate in infos:
            path.append(word)
            known |= option_names(infos[candidate])
        else:
            positional = True
    name = " ".join((PROG, *path))
    return name, [option for option in used if option not in known]
