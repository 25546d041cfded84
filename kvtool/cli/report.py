"""The stats every long command ends with: one envelope (docs/stats.schema.json) around the
command's own figures, printed on stderr (a text block or one JSON line) and written to
--stats-file (JSON, or Prometheus text for a name ending in .prom), on success and on failure."""

from __future__ import annotations

import enum
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kvtool.cli.state import STATE, RecordedStats

if TYPE_CHECKING:
    from typer._click.core import Command


class StatsFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"


# The one status vocabulary (docs/design.md, "Cursors, stops and stats"): `ok` the command did
# its work (exit 0, or 1 when diff found differences); `stopped` a --timeout, a signal or the
# reader closing the output ended it early (its `cursor` resumes it where it has one); `failed`
# anything else, named by `exit_code` and `error`.
OK, STOPPED, FAILED = "ok", "stopped", "failed"
_STOP_CODES = frozenset({124, 129, 130, 143})

# The envelope's keys, in the order they are written; a command's figures follow them.
ENVELOPE_KEYS = (
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
)

StatsOption = Annotated[
    StatsFormat,
    typer.Option(
        "--stats",
        help="How to print the stats on stderr: text (a block, when the command reports "
        "figures), or json (one JSON object, on every exit, failures too; docs/stats.schema.json).",
        case_sensitive=False,
        rich_help_panel="Output",
    ),
]


# The parameters that name a database (`diff A B` names two): no stats file goes inside one.
_DATABASE_PARAMS = ("db", "a", "b")


def check_stats_file(ctx: typer.Context, path: Path | None) -> Path | None:
    """Refuse a --stats-file that cannot be written at parse time, before any work: a stats
    file that fails at the end would lose what the run reports (its resume cursor)."""
    if path is None:
        return None
    from kvtool.formats.output_file import resolve

    try:
        resolve(path, option="--stats-file")  # the rules of -o: 2 or 77 (read-only), one line
        databases = [ctx.params[name] for name in _DATABASE_PARAMS if ctx.params.get(name)]
        _stats_file_outside(path, databases)
    except BaseException:
        STATE.stats_file_refused = True
        raise
    return path


def check_database(ctx: typer.Context, database: Path | None) -> Path | None:
    """The callback of a database argument: the --stats-file given before it on the command
    line (Click checks parameters in command-line order) must not be inside it either."""
    stats_file = ctx.params.get("stats_file")
    if database is not None and isinstance(stats_file, Path):
        _stats_file_outside(stats_file, [database])
    return database


def stats_file_apart(
    stats_file: Path | None, other: Path, *, what: str, tree: bool = False
) -> None:
    """Refuse a --stats-file that is the command's own output or input `other` (see
    `output_guards.refuse_same_file`), and write no stats file then."""
    if stats_file is None:
        return
    from kvtool.formats.output_guards import refuse_same_file

    try:
        refuse_same_file(stats_file, other, what=what, tree=tree)
    except BaseException:
        STATE.stats_file_refused = True
        raise


def _stats_file_outside(path: Path, databases: Sequence[Path]) -> None:
    from kvtool.formats.output_guards import refuse_inside_database

    try:
        refuse_inside_database(path, databases, option="--stats-file")
    except BaseException:
        STATE.stats_file_refused = True
        raise


StatsFileOption = Annotated[
    Path | None,
    typer.Option(
        "--stats-file",
        help="Also write the stats to this file (atomically: a temp file renamed over it), on "
        "every exit once DB is named, failures included: one JSON object "
        '(docs/stats.schema.json; its "cursor" resumes a stopped run: --after @PATH), or, for '
        "a name ending in .prom, Prometheus text for node_exporter's textfile collector "
        "(kvtool_last_run_exit_code and others: docs/cron.md). Its directory must exist.",
        metavar="PATH",
        callback=check_stats_file,
        rich_help_panel="Output",
    ),
]


def record_stats(
    title: str,
    figures: Mapping[str, Any],
    *,
    text: Mapping[str, Any] | None = None,
    output_closed: bool = False,
    shown: bool = True,
) -> None:
    """Record the command's figures; the root command prints and writes them when the run ends
    (`finish_stats`), when the exit code is known. `shown=False`: the stats file only."""
    STATE.stats = RecordedStats(
        title=title,
        figures=dict(figures),
        text=dict(text) if text is not None else None,
        output_closed=output_closed,
        shown=shown,
    )


@dataclass(frozen=True)
class Invocation:
    """What the command line asked of the stats: the command, its database and the options."""

    command: str
    database: str  # absolute (not resolved: a symlinked path stays the name monitoring knows)
    fmt: StatsFormat
    stats_file: Path | None
    quiet: bool


def find_invocation(root: Command, argv: Sequence[str]) -> Invocation | None:
    """The stats options of `argv`, read leniently: a run that failed on a bad option still
    names its command, database and --stats-file. None for a command without stats options or
    a command line that names no database."""
    # Typer's groups and commands (its own copy of Click's, whose classes moved between
    # releases) are told apart by what they do: a group has get_command.
    ctx = root.context_class(
        root, info_name="kvtool", resilient_parsing=True, ignore_unknown_options=True
    )
    command, args = root, list(argv)
    while callable(getattr(command, "get_command", None)):
        _, rest, _ = command.make_parser(ctx).parse_args(args)
        sub = command.get_command(ctx, rest[0]) if rest else None  # type: ignore[attr-defined]
        if sub is None:
            return None
        ctx = sub.context_class(
            sub, parent=ctx, info_name=rest[0], resilient_parsing=True, ignore_unknown_options=True
        )
        command, args = sub, rest[1:]
    names = {param.name for param in command.params}
    if "stats_file" not in names or ctx.info_name is None:
        return None
    opts, _, _ = command.make_parser(ctx).parse_args(args)
    database = opts.get("db") or opts.get("a")  # diff A B: A is the database, B a figure
    if not isinstance(database, str) or not database:
        return None
    raw_fmt = str(opts.get("stats") or "text").lower()
    raw_file = opts.get("stats_file")
    return Invocation(
        command=ctx.info_name,
        database=absolute(database),
        fmt=StatsFormat.JSON if raw_fmt == StatsFormat.JSON.value else StatsFormat.TEXT,
        stats_file=Path(raw_file) if isinstance(raw_file, str) and raw_file else None,
        quiet=bool(opts.get("quiet")),
    )


def absolute(path: str | os.PathLike[str]) -> str:
    """`path` made absolute and normalised as text that JSON can carry (bytes that are not
    UTF-8 as backslash escapes)."""
    return os.fsencode(os.path.abspath(path)).decode("utf-8", "backslashreplace")


def status_of(code: int, error: str | None, *, output_closed: bool) -> str:
    if output_closed or code in _STOP_CODES:
        return STOPPED
    if error is not None or code not in (0, 1):
        return FAILED
    return OK


def envelope(
    invocation: Invocation,
    *,
    code: int,
    error: str | None,
    output_closed: bool,
    figures: Mapping[str, Any],
) -> dict[str, Any]:
    """The envelope of the run that is ending, followed by the command's figures."""
    from kvtool import __version__

    ended = time.time()
    elapsed = time.monotonic() - STATE.started_clock
    data: dict[str, Any] = {
        "command": invocation.command,
        "status": status_of(code, error, output_closed=output_closed),
        "exit_code": code,
        "error": error,
        "database": invocation.database,
        "engine": _engine(),
        "kvtool_version": __version__,
        "started_at": _iso(STATE.started_at),
        "ended_at": _iso(max(ended, STATE.started_at)),
        "elapsed_seconds": round(elapsed, 3),
    }
    for key, value in figures.items():
        if key not in data:  # the envelope's names are reserved
            data[key] = value
    return data


def finish_stats(
    root: Callable[[], Command],
    argv: Sequence[str],
    *,
    code: int,
    error: str | None,
    ended_early: bool,
    output_closed: bool = False,
) -> tuple[int, str | None]:
    """At the end of every run: print the stats on stderr and write the stats file, before the
    error line (which stays the last line). Runs whose command recorded figures get them;
    a run that failed or stopped (`ended_early`: an exception ended it, `output_closed` among
    them) gets its envelope too, so monitoring hears of a busy, missing or corrupt database.
    Returns the exit code and error, which a stats file
    that cannot be written changes on a run that did not fail otherwise (exit 74)."""
    recorded = STATE.stats
    if recorded is None and not ended_early:
        return code, error  # nothing to report (--help, a command without stats)
    if recorded is None and not any(arg.startswith("--stats") for arg in argv):
        return code, error  # no stats asked for: text shows nothing without figures
    invocation = find_invocation(root(), argv)
    if invocation is None:
        return code, error
    closed = output_closed or (recorded is not None and recorded.output_closed)
    to_file = invocation.stats_file is not None and not STATE.stats_file_refused
    shown = not invocation.quiet and not closed and (recorded is None or recorded.shown)
    if not to_file and not shown:
        # Nothing will read the envelope (count's figures without --stats-file): the engine's
        # versions (importlib.metadata, which imports email and socket) would cost start-up.
        return code, error
    figures = recorded.figures if recorded is not None else {}
    data = envelope(invocation, code=code, error=error, output_closed=closed, figures=figures)
    if to_file and invocation.stats_file is not None:
        try:
            write_stats_file(invocation.stats_file, data, figures)
        except Exception as exc:
            from kvtool.errors import ExitCode, KvtoolError

            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            message = f"--stats-file {invocation.stats_file}: {reason or exc}"
            if data["status"] == FAILED:
                # The run's own error stays the one error line, and its exit code the exit code.
                print(f"kvtool: {message} (not written)", file=sys.stderr, flush=True)
            else:
                # A done or stopped run whose record is lost: an I/O error (74), whose line
                # keeps what resumes the run.
                cursor = data.get("cursor")
                if cursor:
                    message += f"; the run stopped at cursor {cursor}"
                code = int(exc.exit_code if isinstance(exc, KvtoolError) else ExitCode.IO_ERROR)
                error = message
                data.update(status=status_of(code, error, output_closed=False), exit_code=code)
                data["error"] = error
    if shown:
        if invocation.fmt is StatsFormat.JSON:
            _write_stderr(stats_json(data).decode() + "\n")
        elif recorded is not None:
            _print_text(recorded.title, recorded.text or recorded.figures)
    return code, error


def stats_json(stats: Mapping[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(dict(stats), default=str)


def write_stats_file(
    path: Path, data: Mapping[str, Any], figures: Mapping[str, Any] | None = None
) -> None:
    """Write `data` (an envelope) to a temp file beside `path` and rename it over: readers never
    see half a file. JSON, or Prometheus text when the name ends in `.prom`. The rules of `-o`
    apply (kvtool.formats.output_file): a symlink is followed, a device or FIFO is written in
    place, the replaced file's mode is kept."""
    from kvtool.formats.output_file import OutputFile

    if path.name.endswith(".prom"):
        from kvtool.formats.prometheus import render

        body = render(data, figures or {}, _previous_text(path)).encode()
    else:
        body = stats_json(data) + b"\n"
    target = OutputFile(path, gzip_by_name=False)
    try:
        target.stream.write(body)
    except BaseException:
        target.discard()
        raise
    target.commit()


def _previous_text(path: Path) -> str | None:
    """The file a .prom stats file replaces, if it is a small regular file (else None)."""
    try:
        if not path.is_file() or path.stat().st_size > 1 << 20:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _engine() -> dict[str, Any]:
    """The engine that ran (or would have run) the command, and its RocksDB."""
    from kvtool.engine import ENGINE_CHOICE, get_engine

    try:
        engine = get_engine()
        versions = engine.versions()
    except Exception:  # an unknown or uninstalled engine: the run failed on it already
        return {"name": ENGINE_CHOICE.current(), "version": None, "rocksdb_version": None}
    return {
        "name": engine.name,
        "version": versions.get(engine.name),
        "rocksdb_version": versions.get("rocksdb"),
    }


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _print_text(title: str, stats: Mapping[str, Any]) -> None:
    width = max((len(k) for k in stats), default=0)
    lines = [f"kvtool: {title}"]
    lines += [f"  {k.replace('_', ' '):<{width}}  {_text(v)}" for k, v in stats.items()]
    _write_stderr("\n".join(lines) + "\n")


def _write_stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    if value is None:
        return "-"
    return str(value)
