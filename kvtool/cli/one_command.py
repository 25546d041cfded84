"""Building only the command that runs: the root group knows every command by name (for help,
completion and typo suggestions) and imports a command's module and builds its Click command
only when that command is asked for. kvtool.cli.app makes its root a `LazyGroup`."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
import typer.core
import typer.main
from typer._click import Command, Context

from kvtool.cli.launch import paused_gc

# Every command (or group) and the module under kvtool.cli whose `register(app)` adds it, in
# the order of `kvtool --help`: looking, reading, writing, maintenance, then the groups (Typer
# lists a group after the commands). tests/test_startup.py checks it against the modules.
COMMANDS: dict[str, str] = {
    "info": "info",
    "du": "du",
    "property": "property",
    "sst": "sst",
    "wal": "wal",
    "manifest": "manifest",
    "scan": "scan",
    "export": "export",
    "count": "count",
    "diff": "diff",
    "get": "kv",
    "put": "kv",
    "delete": "kv",
    "import": "importing",
    "delete-range": "delete_range",
    "compact": "compact",
    "checkpoint": "checkpoint",
    "verify": "verify",
    "repair": "repair",
    "generate": "generate",
    "cf": "cf",
}

# Typer's default; kvtool turns pretty exceptions off, so it only names a local in Typer's
# callback wrapper.
_PRETTY_EXCEPTIONS_SHORT = True

# Built commands, by name and help mode: Click commands are reusable, and a run that reports
# stats looks its command up again (kvtool.cli.report.find_invocation).
_BUILT: dict[tuple[str, str | None], Command] = {}


def module_app(name: str) -> typer.Typer:
    """A Typer app holding what the module of command `name` registers (with whole summaries)."""
    module: Any = importlib.import_module(f"kvtool.cli.{COMMANDS[name]}")
    sub = typer.Typer()
    module.register(sub)
    whole_summaries(sub)
    return sub


def build(name: str, rich_markup_mode: Any, suggest_commands: bool) -> Command:
    """The Click command (or group) `name`, as Typer builds it for a root holding it."""
    key = (name, rich_markup_mode)
    built = _BUILT.get(key)
    if built is not None:
        return built
    with paused_gc():  # imports and builds: see kvtool.cli.launch
        built = _build(name, rich_markup_mode, suggest_commands)
    _BUILT[key] = built
    return built


def _build(name: str, rich_markup_mode: Any, suggest_commands: bool) -> Command:
    built: Command | None = None
    sub = module_app(name)
    for info in sub.registered_commands:
        if _command_name(info) == name:
            built = typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=_PRETTY_EXCEPTIONS_SHORT,
                rich_markup_mode=rich_markup_mode,
            )
    for group in sub.registered_groups:
        if group.name == name:
            built = typer.main.get_group_from_info(
                group,
                pretty_exceptions_short=_PRETTY_EXCEPTIONS_SHORT,
                rich_markup_mode=rich_markup_mode,
                suggest_commands=suggest_commands,
            )
    if built is None:
        raise LookupError(f"kvtool.cli.{COMMANDS[name]} does not register {name!r}")
    return built


class LazyCommands(MutableMapping[str, Command]):
    """A group's commands: every name from COMMANDS, each built on first lookup."""

    def __init__(self, group: LazyGroup) -> None:
        self._group = group
        self._added: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name in self._added:
            return self._added[name]
        if name not in COMMANDS:
            raise KeyError(name)
        group = self._group
        return build(name, group.rich_markup_mode, group.suggest_commands)

    def __setitem__(self, name: str, command: Command) -> None:
        self._added[name] = command

    def __delitem__(self, name: str) -> None:
        del self._added[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._added if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS.keys() | self._added.keys())

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self._added


class LazyGroup(typer.core.TyperGroup):
    """kvtool's root: its commands are COMMANDS, imported and built when looked up."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = LazyCommands(self)

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)  # the names only: nothing is imported


def whole_summaries(typer_app: typer.Typer) -> None:
    """Click cuts a listed command's summary to fit 80 columns minus the longest name ("Show
    what a database is: versions, column families, sizes,..."); a short_help of the whole
    first paragraph is listed in full (wrapped) and given to zsh and fish as the description."""
    for command in typer_app.registered_commands:
        text = command.help or inspect.getdoc(command.callback) or ""
        if command.short_help is None and text:
            command.short_help = _first_paragraph(text)
    for group in typer_app.registered_groups:
        if group.typer_instance is None:
            continue
        group_help: object = group.typer_instance.info.help  # a placeholder when not given
        if not isinstance(group.short_help, str) and isinstance(group_help, str) and group_help:
            group.short_help = _first_paragraph(group_help)
        whole_summaries(group.typer_instance)


def _first_paragraph(text: str) -> str:
    return " ".join(inspect.cleandoc(text).split("\n\n", 1)[0].split())


def _command_name(command: typer.models.CommandInfo) -> str:
    if command.name:
        return command.name
    callback = command.callback.__name__ if command.callback else ""
    return typer.main.get_command_name(callback)
