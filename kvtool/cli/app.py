"""The root `kvtool` application: global options, command registration, and the one place that
turns exceptions into an error line and an exit code."""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import traceback
from types import FrameType
from typing import Annotated, Any

import typer

# Typer (0.28 and later) runs on its own copy of Click: its exceptions, not the `click` package's.
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer._click.utils import PacifyFlushWrapper

from kvtool import __version__
from kvtool.cli import (
    cf,
    checkpoint,
    compact,
    count,
    delete_range,
    diff,
    du,
    export,
    generate,
    importing,
    info,
    kv,
    manifest,
    repair,
    scan,
    sst,
    verify,
    wal,
)
from kvtool.cli import property as property_command  # not to shadow the builtin
from kvtool.cli.completion import install_zsh_template
from kvtool.cli.pipes import silence_stdout
from kvtool.cli.state import STATE
from kvtool.cli.typer_compat import install as install_typer_compat
from kvtool.cli.typer_compat import plain_required_arguments
from kvtool.engine import EngineName
from kvtool.errors import STOP_SIGNALS, ExitCode, Interrupted, KvtoolError

app = typer.Typer(
    name="kvtool",
    help="A command-line toolkit for RocksDB databases: look inside, page through, stream out "
    "as JSON Lines, load back in, and keep healthy from cron.",
    epilog="Exit codes: 0 done, 1 not found or differences, 2 usage, 65 bad input data, "
    "66 no such database, 69 unavailable, 70 bug, 74 corruption or I/O error, 75 database busy, "
    "77 permission denied, 124 timeout, 129/130/143 interrupted.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if not value:
        return
    from kvtool.engine import get_engine

    typer.echo(f"kvtool {__version__} ({get_engine().describe()})")
    raise typer.Exit()


def _choose_engine(name: EngineName | None) -> EngineName | None:
    # Eager, so that `--engine NAME --version` names that engine's versions.
    from kvtool.engine import ENGINE_CHOICE

    ENGINE_CHOICE.name = name.value if name is not None else None
    return name


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print kvtool's version, the engine's and its RocksDB's, and exit.",
        ),
    ] = False,
    engine: Annotated[
        EngineName | None,
        typer.Option(
            "--engine",
            envvar="KVTOOL_ENGINE",
            callback=_choose_engine,
            is_eager=True,
            help="The engine that opens databases: rocksdict (RocksDB 9.8, the default) or "
            "python-rocksdb (RocksDB 6.14, when the rocksdb module is installed).",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="On an error, print the traceback too.", envvar="KVTOOL_DEBUG"
        ),
    ] = False,
    trace_handles: Annotated[
        bool,
        typer.Option(
            "--trace-handles",
            help="Log each native handle's open and release on stderr; fail if any is left open.",
        ),
    ] = False,
    allow_data_loss: Annotated[
        bool,
        typer.Option(
            "--allow-data-loss",
            help="Use a database whose metadata lost data (SST files its MANIFEST does not "
            "reference, a WAL damaged before its end) as RocksDB recovers it: reads leave that "
            "data out, and a write deletes it for good. Without it such a database is refused "
            "with exit 74. Copy the directory first.",
        ),
    ] = False,
) -> None:
    STATE.debug = debug
    STATE.trace_handles = trace_handles
    from kvtool.engine import DAMAGE_POLICY

    DAMAGE_POLICY.allow_data_loss = allow_data_loss
    if trace_handles:
        from kvtool.engine import TRACER

        TRACER.enable(sys.stderr)


# One module per command (or group); each has `register(app)`. The order is the order of
# `kvtool --help`: looking, reading, writing, maintenance.
for _module in (
    info,
    du,
    property_command,
    sst,
    wal,
    manifest,
    scan,
    export,
    count,
    diff,
    kv,
    importing,
    delete_range,
    cf,
    compact,
    checkpoint,
    verify,
    repair,
    generate,
):
    _module.register(app)


def _whole_summaries(typer_app: typer.Typer) -> None:
    import inspect

    # Click cuts a listed command's summary to fit 80 columns minus the longest name ("Show
    # what a database is: versions, column families, sizes,..."); a short_help of the whole
    # first paragraph is listed in full (wrapped) and given to zsh and fish as the description.
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
        _whole_summaries(group.typer_instance)


def _first_paragraph(text: str) -> str:
    import inspect

    return " ".join(inspect.cleandoc(text).split("\n\n", 1)[0].split())


_whole_summaries(app)
install_zsh_template()
install_typer_compat()
plain_required_arguments()


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _log_to_stderr() -> None:
    """Library warnings (e.g. waiting for a lock) go to stderr as `kvtool: ...` lines."""
    logger = logging.getLogger("kvtool")
    if not any(getattr(h, "kvtool_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("kvtool: %(message)s"))
        handler.kvtool_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO)  # -q lowers it for one run


def _error(message: str) -> None:
    print(f"kvtool: error: {message}", file=sys.stderr, flush=True)


def run(argv: list[str] | None = None) -> int:
    """Run kvtool with `argv` and return its exit code (never raises, never prints a traceback)."""
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in STOP_SIGNALS}
    STATE.reset()
    from kvtool.engine import ENGINE_CHOICE

    ENGINE_CHOICE.name = None  # `--engine` (or KVTOOL_ENGINE) chooses again for this run
    _log_to_stderr()
    code: int
    try:
        # Rich's colours and boxes only on a terminal that wants them; elsewhere (pipes, files,
        # NO_COLOR, TERM=dumb) help is Click's plain text. Sub-groups inherit the root's mode.
        app.rich_markup_mode = None if _plain_output() else "rich"
        result: Any = app(args=argv, prog_name="kvtool", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except KvtoolError as exc:
        _report(exc)
        code = int(exc.exit_code)
    except Interrupted as exc:
        _error(exc.reason)
        code = int(exc.exit_code)
    except BrokenPipeError:
        silence_stdout()
        code = int(ExitCode.OK)
    except SystemExit as exc:
        if _undo_click_pipe_handling():
            silence_stdout()
            code = int(ExitCode.OK)
        else:
            code = exc.code if isinstance(exc.code, int) else int(ExitCode.SOFTWARE)
    except NoArgsIsHelpError as exc:
        # `kvtool` or `kvtool cf` alone: the help is the answer. Rich has printed it already;
        # plain mode hands it back as the message.
        if text := exc.format_message():
            typer.echo(text)
        code = int(ExitCode.USAGE)
    except ClickException as exc:
        text = exc.format_message()
        hint = " (see kvtool --help)" if "--help" not in text else ""
        _error(f"{text}{hint}")
        code = exc.exit_code
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in _IO_ERRNOS:
            # A full disk, a quota or a failing device under stdout or a file: never a bug.
            _report(exc)
            code = int(ExitCode.IO_ERROR)
        elif isinstance(exc, PermissionError):
            _report(exc)
            code = int(ExitCode.NO_PERMISSION)
        else:
            _report(exc)
            code = int(ExitCode.SOFTWARE)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        ENGINE_CHOICE.name = None  # a library caller in the same process chooses for itself
    return _check_handles(code)


# OSError numbers that are the storage's, not kvtool's: exit 74 with one line.
_IO_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS})


def _plain_output() -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return True
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return True


def _report(exc: BaseException) -> None:
    if STATE.debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    if isinstance(exc, KvtoolError):
        _error(str(exc))
    elif isinstance(exc, OSError) and exc.errno in _IO_ERRNOS:
        where = f" {exc.filename}" if exc.filename else " output"
        _error(f"writing{where}: {exc.strerror or exc}")
    elif isinstance(exc, PermissionError):
        _error(f"{exc.filename or 'a path'}: permission denied")
    else:
        _error(
            f"unexpected {type(exc).__name__}: {exc} (this is a bug in kvtool: please report it; "
            "--debug shows the traceback)"
        )


def _check_handles(code: int) -> int:
    if not STATE.trace_handles:
        return code
    from kvtool.engine import TRACER

    TRACER.disable()
    leaked = TRACER.open_handles()
    if not leaked:
        return code
    names = ", ".join(f"{h.kind}#{h.id}" for h in leaked)
    _error(f"native handles left open at exit: {names} (a bug in kvtool: please report it)")
    return code or int(ExitCode.SOFTWARE)


def _undo_click_pipe_handling() -> bool:
    """Whether Click met EPIPE on stdout (it wraps both streams and exits 1); undo the wrapping.

    A closed pipe (`kvtool ... | head`) is a normal end for kvtool: exit 0, as `cat` would.
    """

    def unwrap(stream: Any) -> Any:
        return stream.wrapped if isinstance(stream, PacifyFlushWrapper) else stream

    if not isinstance(sys.stdout, PacifyFlushWrapper):
        return False
    sys.stdout, sys.stderr = unwrap(sys.stdout), unwrap(sys.stderr)
    return True


def main() -> None:
    """Console-script entry point."""
    code = run(sys.argv[1:])
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    except OSError as exc:  # what was still buffered met a full disk
        silence_stdout()
        _report(exc)
        code = code or int(ExitCode.IO_ERROR if exc.errno in _IO_ERRNOS else ExitCode.SOFTWARE)
    sys.exit(code)
