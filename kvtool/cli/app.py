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
from kvtool.cli.completion import install_zsh_template
from kvtool.cli.one_command import LazyGroup
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
    # The commands (kvtool.cli.one_command.COMMANDS) are imported and built when a run or the
    # help asks for them: `kvtool count` loads no other command's module.
    cls=LazyGroup,
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
    from kvtool.engine import ENGINE_CHOICE
    from kvtool.stream.memory import allow_process_tuning
    from kvtool.stream.pacing import handle_stop_signals

    # This process is kvtool: it takes stop signals and tunes malloc (a library caller does not).
    allow_process_tuning()
    handle_stop_signals(True)
    STATE.reset()
    ENGINE_CHOICE.name = None  # `--engine` (or KVTOOL_ENGINE) chooses again for this run
    _log_to_stderr()
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code, failure, closed = _run_app(args)
        code, failure = _check_handles(code, failure)
        code, failure = _finish_stats(args, code, failure, closed=closed)
        if failure is not None:
            failure.report()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        ENGINE_CHOICE.name = None  # a library caller in the same process chooses for itself
        handle_stop_signals(False)
    return code


class _Failure:
    """How a run failed: the message of its error line (the stats' `error` too), and the
    exception whose traceback --debug prints."""

    def __init__(self, message: str, exc: BaseException | None = None) -> None:
        self.message = message
        self.exc = exc

    def report(self) -> None:
        if STATE.debug and self.exc is not None:
            traceback.print_exception(
                type(self.exc), self.exc, self.exc.__traceback__, file=sys.stderr
            )
        _error(self.message)


def _run_app(args: list[str]) -> tuple[int, _Failure | None, bool]:
    """Run the application: (exit code, the failure to report, whether the reader closed the
    output). Every exception becomes an exit code here; nothing is printed but help."""
    try:
        # Rich's colours and boxes only on a terminal that wants them; elsewhere (pipes, files,
        # NO_COLOR, TERM=dumb) help is Click's plain text. Sub-groups inherit the root's mode.
        app.rich_markup_mode = None if _plain_output() else "rich"
        result: Any = app(args=args, prog_name="kvtool", standalone_mode=False)
        return (result if isinstance(result, int) else 0), None, False
    except KvtoolError as exc:
        return int(exc.exit_code), _failure(exc), False
    except Interrupted as exc:
        return int(exc.exit_code), _Failure(exc.reason), False
    except BrokenPipeError:
        silence_stdout()
        return int(ExitCode.OK), None, True
    except SystemExit as exc:
        if _undo_click_pipe_handling():
            silence_stdout()
            return int(ExitCode.OK), None, True
        return (exc.code if isinstance(exc.code, int) else int(ExitCode.SOFTWARE)), None, False
    except NoArgsIsHelpError as exc:
        # `kvtool` or `kvtool cf` alone: the help is the answer. Rich has printed it already;
        # plain mode hands it back as the message.
        if text := exc.format_message():
            typer.echo(text)
        return int(ExitCode.USAGE), None, False
    except ClickException as exc:
        text = exc.format_message()
        hint = " (see kvtool --help)" if "--help" not in text else ""
        return exc.exit_code, _Failure(f"{text}{hint}", exc), False
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in _IO_ERRNOS:
            # A full disk, a quota or a failing device under stdout or a file: never a bug.
            return int(ExitCode.IO_ERROR), _failure(exc), False
        if isinstance(exc, PermissionError):
            return int(ExitCode.NO_PERMISSION), _failure(exc), False
        if isinstance(exc, OSError) and exc.errno in _PATH_ERRNOS:
            return int(ExitCode.USAGE), _failure(exc), False
        return int(ExitCode.SOFTWARE), _failure(exc), False


def _finish_stats(
    args: list[str], code: int, failure: _Failure | None, *, closed: bool
) -> tuple[int, _Failure | None]:
    """Print and write the run's stats (kvtool.cli.report) before its error line, on every exit."""
    from kvtool.cli.report import finish_stats

    try:
        new_code, message = finish_stats(
            lambda: typer.main.get_command(app),  # built only when there are stats to report
            args,
            code=code,
            error=failure.message if failure is not None else None,
            ended_early=failure is not None or closed or code != 0,
            output_closed=closed,
        )
    except Interrupted as exc:  # a second signal while the stats were written: stop there
        return (code or int(exc.exit_code)), failure or _Failure(exc.reason)
    if message is not None and (failure is None or message != failure.message):
        return new_code, _Failure(message)  # the stats file could not be written
    return new_code, failure


# OSError numbers that are the storage's, not kvtool's: exit 74 with one line.
_IO_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS})
# OSError numbers that say a path given can never name a file: exit 2, not a bug.
_PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ELOOP})


def _plain_output() -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return True
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return True


def _failure(exc: BaseException) -> _Failure:
    """The error line of an exception that ended the run."""
    if isinstance(exc, KvtoolError):
        return _Failure(str(exc), exc)
    if isinstance(exc, OSError) and exc.errno in _IO_ERRNOS:
        where = f" {exc.filename}" if exc.filename else " output"
        return _Failure(f"writing{where}: {exc.strerror or exc}", exc)
    if isinstance(exc, PermissionError):
        return _Failure(f"{exc.filename or 'a path'}: permission denied", exc)
    if isinstance(exc, OSError) and exc.errno in _PATH_ERRNOS:
        return _Failure(f"{exc.filename or 'a path'}: {exc.strerror}", exc)
    return _Failure(
        f"unexpected {type(exc).__name__}: {exc} (this is a bug in kvtool: please report it; "
        "--debug shows the traceback)",
        exc,
    )


def _report(exc: BaseException) -> None:
    _failure(exc).report()


def _check_handles(code: int, failure: _Failure | None) -> tuple[int, _Failure | None]:
    if not STATE.trace_handles:
        return code, failure
    from kvtool.engine import TRACER

    TRACER.disable()
    leaked = TRACER.open_handles()
    if not leaked:
        return code, failure
    names = ", ".join(f"{h.kind}#{h.id}" for h in leaked)
    message = f"native handles left open at exit: {names} (a bug in kvtool: please report it)"
    if failure is not None:
        failure.report()  # the run's own error first; the leak is the last line
    return (code or int(ExitCode.SOFTWARE)), _Failure(message)


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
