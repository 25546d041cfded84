"""The stats block every long command ends with: text or one JSON line on stderr, and a file."""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer


class StatsFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"


StatsOption = Annotated[
    StatsFormat,
    typer.Option(
        "--stats",
        help="How to print the stats on completion (stderr): text, or one JSON object.",
        case_sensitive=False,
        rich_help_panel="Output",
    ),
]


def check_stats_file(path: Path | None) -> Path | None:
    """Refuse a --stats-file that cannot be written at parse time, before any work: a stats
    file that fails at the end would lose what the run reports (its resume cursor)."""
    if path is None:
        return None
    from kvtool.formats.output_file import resolve

    resolve(path, option="--stats-file")  # the rules of -o: 2 or 77 (read-only), one line
    return path


StatsFileOption = Annotated[
    Path | None,
    typer.Option(
        "--stats-file",
        help="Also write the stats as one JSON object to this file (atomically), for monitoring; "
        'its "cursor" resumes a stopped run (--after @PATH). Its directory must exist.',
        metavar="PATH",
        callback=check_stats_file,
        rich_help_panel="Output",
    ),
]


def stats_json(stats: Mapping[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(dict(stats), default=str)


def write_stats_file(path: Path, stats: Mapping[str, Any]) -> None:
    """Write `stats` as JSON to a temp file beside `path` and rename it over: readers never see
    half a file. The rules of `-o` apply (kvtool.formats.output_file): a symlink is followed, a
    device or FIFO is written in place, the replaced file's mode is kept."""
    from kvtool.formats.output_file import OutputFile

    target = OutputFile(path, gzip_by_name=False)
    try:
        target.stream.write(stats_json(stats) + b"\n")
    except BaseException:
        target.discard()
        raise
    target.commit()


def emit_stats(
    title: str,
    stats: Mapping[str, Any],
    *,
    fmt: StatsFormat = StatsFormat.TEXT,
    stats_file: Path | None = None,
    quiet: bool = False,
) -> None:
    """Print one stats block on stderr (unless quiet) and write the stats file if asked.

    The block is printed first: a stats file that fails (a full disk) must not lose the cursor.
    """
    if not quiet:
        _print_stats(title, stats, fmt)
    if stats_file is not None:
        from kvtool.errors import KvtoolError, StorageError

        try:
            write_stats_file(stats_file, stats)
        except (OSError, KvtoolError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            cursor = stats.get("cursor")
            error = StorageError(
                f"--stats-file {stats_file}: {reason or exc}"
                + (f"; the run stopped at cursor {cursor}" if cursor else "")
            )
            if isinstance(exc, KvtoolError):
                error.exit_code = exc.exit_code
            raise error from None


def _print_stats(title: str, stats: Mapping[str, Any], fmt: StatsFormat) -> None:
    if fmt is StatsFormat.JSON:
        sys.stderr.write(stats_json(stats).decode() + "\n")
    else:
        width = max((len(k) for k in stats), default=0)
        lines = [f"kvtool: {title}"]
        lines += [f"  {k.replace('_', ' '):<{width}}  {_text(v)}" for k, v in stats.items()]
        sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    if value is None:
        return "-"
    return str(value)
