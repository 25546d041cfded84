"""Options shared by several commands, declared once so every command spells them the same way."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Annotated

import typer

from kvtool.cli.completion import column_families
from kvtool.cli.report import StatsFormat, check_database
from kvtool.formats.codecs import InputFormat
from kvtool.formats.records import FieldFormat, KeyFormat

# Upper bounds of count options: past them a number is a typo, and Python's islice, a fork loop
# or RocksDB's int64 would fail on it (`--page-size 1e23` was an islice error, exit 70).
MAX_COUNT = 2**62
MAX_WORKERS = 64
MAX_RATE = 1e12


DbPath = Annotated[
    Path,
    # readable=False: kvtool checks access itself (exit 77, not Click's usage error 2).
    typer.Argument(
        help="Directory of the RocksDB database.",
        show_default=False,
        metavar="DB",
        readable=False,
        callback=check_database,  # a --stats-file before DB must not be inside it
    ),
]
ColumnFamily = Annotated[
    str,
    typer.Option(
        "--cf", help="Column family to use.", metavar="NAME", autocompletion=column_families
    ),
]
KeyFormatIn = Annotated[
    InputFormat,
    typer.Option(
        "--key-format",
        help="How keys given on the command line are spelled: utf8 text, hex (6b6579 or "
        "0x6b6579) or base64.",
        case_sensitive=False,
        rich_help_panel="Encoding",
    ),
]
ValueFormatIn = Annotated[
    InputFormat,
    typer.Option(
        "--value-format",
        help="How VALUE is spelled: utf8 text, hex or base64.",
        case_sensitive=False,
        rich_help_panel="Encoding",
    ),
]
WaitLock = Annotated[
    str,
    typer.Option(
        "--wait-lock",
        help="If another process holds the database's LOCK, retry for this long (e.g. 30s, 5m) "
        "before exiting 75.",
        metavar="DURATION",
        rich_help_panel="Locking and safety",
    ),
]


def _quiet_notes(quiet: bool) -> bool:
    """-q: the library's notes and warnings (lock waits, a stopped export's files, a crash's
    leftover) are silenced for the run, as docs/design.md says of -q; errors are still printed."""
    if quiet:
        logging.getLogger("kvtool").setLevel(logging.ERROR)
    return quiet


Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print nothing but errors (and the data asked for).",
        callback=_quiet_notes,
        rich_help_panel="Output",
    ),
]
# What a command prints on stdout: --format, as for scan and export (--stats is the stats block
# on stderr). --json stays as the alias that scripts already use.
TextOrJson = Annotated[
    StatsFormat,
    typer.Option(
        "--format",
        "-f",
        help="What to print: text for people, or json, one JSON object (for jq).",
        case_sensitive=False,
        rich_help_panel="Output",
    ),
]
Json = Annotated[
    bool, typer.Option("--json", help="The same as --format json.", rich_help_panel="Output")
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Write even when kvtool's RocksDB cannot keep one of the database's format settings "
        "exactly (a compaction filter, prefix extractor or table option it cannot restore, an "
        "OPTIONS file that is missing, cannot be loaded or comes from a newer RocksDB); without "
        "it such a write is refused with exit 2. It never overrides a loss of data: a comparator "
        "or merge operator kvtool cannot load (the owner's merge operands or key order would be "
        "lost) is refused with exit 69, with or without --force.",
        rich_help_panel="Locking and safety",
    ),
]


# Range options, shared by every reading command (scan, export, count, diff).
Prefix = Annotated[
    str | None,
    typer.Option(
        "--prefix",
        help="Only keys starting with this (spelled as --key-format says).",
        metavar="KEY",
        rich_help_panel="Range",
    ),
]
Start = Annotated[
    str | None,
    typer.Option(
        "--start",
        help="First key of the range, inclusive (spelled as --key-format says).",
        metavar="KEY",
        rich_help_panel="Range",
    ),
]
End = Annotated[
    str | None,
    typer.Option(
        "--end",
        help="End of the range, exclusive (spelled as --key-format says).",
        metavar="KEY",
        rich_help_panel="Range",
    ),
]
Reverse = Annotated[
    bool,
    typer.Option("--reverse", help="Read from the last key back.", rich_help_panel="Range"),
]
Limit = Annotated[
    int | None,
    typer.Option(
        "--limit",
        help="Read at most N records.",
        min=0,
        max=MAX_COUNT,
        metavar="N",
        rich_help_panel="Range",
    ),
]
KeysOnly = Annotated[
    bool,
    typer.Option("--keys-only", help="Keys only: no values.", rich_help_panel="Range"),
]
RangeKeyFormat = Annotated[
    KeyFormat,
    typer.Option(
        "--key-format",
        help="How keys are written, and how --prefix/--start/--end are spelled: auto (text, or "
        '{"base64": ...} for binary keys; keys given as text), utf8, hex, base64.',
        case_sensitive=False,
        rich_help_panel="Range",
    ),
]
ValueFormatOut = Annotated[
    FieldFormat,
    typer.Option(
        "--value-format",
        help='How values are written: auto (text, or {"base64": ...}), utf8, hex, base64, or '
        "json (JSON exactly as orjson writes it is embedded, for jq; any other value is wrapped "
        'as {"text": ...} or {"base64": ...}; exact both ways).',
        case_sensitive=False,
        rich_help_panel="Output",
    ),
]
After = Annotated[
    str | None,
    typer.Option(
        "--after",
        help="Continue strictly after this cursor (as printed by scan, or a stopped export, "
        "count or diff); "
        "give the same range options as the run that printed it. @FILE reads the cursor from "
        "FILE: the bare token, a --stats-file, FILE.partial.cursor, or the saved stderr of the "
        "run that printed it (a cursor for a huge key is too long for a command line). A cut "
        "or changed cursor is refused (exit 2): it carries a checksum.",
        metavar="CURSOR",
        rich_help_panel="Range",
    ),
]


def finite_rate(value: float | None) -> float | None:
    """Click's FloatRange lets NaN and inf through (every comparison with NaN is false)."""
    if value is not None and not (math.isfinite(value) and 0 < value <= MAX_RATE):
        raise typer.BadParameter(f"{value} is not a rate from 0.001 to {MAX_RATE:g}")
    return value


Rate = Annotated[
    float | None,
    typer.Option(
        "--rate",
        help="Read at most N records per second.",
        min=0.001,
        metavar="N",
        callback=finite_rate,
        rich_help_panel="Pacing",
    ),
]
BytesRate = Annotated[
    str | None,
    typer.Option(
        "--bytes-rate",
        help="Read at most SIZE key+value bytes per second (e.g. 10MB, 512KiB).",
        metavar="SIZE",
        rich_help_panel="Pacing",
    ),
]
Timeout = Annotated[
    str | None,
    typer.Option(
        "--timeout",
        help="Stop cleanly after DURATION (e.g. 30s, 5m): exit 124 with the cursor to resume.",
        metavar="DURATION",
        rich_help_panel="Pacing",
    ),
]
