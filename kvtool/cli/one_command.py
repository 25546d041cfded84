"""Building only the command that runs: Typer turns every registered command's signature into
Click options on each run, which for kvtool's 20 commands was most of a short command's time
beyond its imports. kvtool.cli.app runs each command through `only_command`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import typer
import typer.main
import typer.models

# The root options that take a value (`--engine NAME`): the command's name is the first argument
# that is neither an option nor such a value. tests/test_startup.py checks the list is complete.
ROOT_OPTIONS_WITH_VALUE = frozenset({"--engine"})


def command_named(argv: list[str]) -> str | None:
    """The command (or group) name in `argv`, if any: what `kvtool ... NAME ...` runs."""
    args = iter(argv)
    for arg in args:
        if arg == "--":
            return next(args, None)
        if arg.startswith("-"):
            if arg in ROOT_OPTIONS_WITH_VALUE:
                next(args, None)
            continue
        return arg
    return None


@contextlib.contextmanager
def only_command(app: typer.Typer, argv: list[str]) -> Iterator[None]:
    """Let Typer build only the command that runs. Typer turns every registered command's
    signature into Click parameters on each run: for kvtool's 20 commands the first
    `run(["count", DB])` took 36 ms of CPU on Typer 0.28 and 47 ms on 0.29, against 15 and 12 ms
    building count alone (time.process_time, cwd /tmp). The root's help, completion and a
    mistyped name (whose suggestions list every command) still get them all."""
    name = command_named(argv)
    if name is None or any(key.startswith("_KVTOOL_COMPLETE") for key in os.environ):
        yield
        return
    commands = [c for c in app.registered_commands if _command_name(c) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if len(commands) + len(groups) != 1:
        yield
        return
    saved = app.registered_commands, app.registered_groups
    app.registered_commands, app.registered_groups = commands, groups
    try:
        yield
    finally:
        app.registered_commands, app.registered_groups = saved


def click_command(app: typer.Typer, args: list[str]) -> Any:
    """The Click command of this run, for its stats: only the command that runs is built (see
    `only_command`; `count` records its figures on every run)."""
    with only_command(app, args):
        return typer.main.get_command(app)


def _command_name(command: typer.models.CommandInfo) -> str:
    if command.name:
        return command.name
    callback = command.callback.__name__ if command.callback else ""
    return typer.main.get_command_name(callback)
