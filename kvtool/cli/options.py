"""Options shared by several commands, declared once so every command spells them the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kvtool.formats.codecs import InputFormat

DbPath = Annotated[
    Path,
    typer.Argument(help="Directory of the RocksDB database.", show_default=False, metavar="DB"),
]
ColumnFamily = Annotated[
    str,
    typer.Option("--cf", help="Column family to use.", metavar="NAME"),
]
KeyFormatIn = Annotated[
    InputFormat,
    typer.Option(
        "--key-format",
        help="How KEY is spelled: utf8 text, hex (6b6579 or 0x6b6579) or base64.",
        case_sensitive=False,
    ),
]
ValueFormatIn = Annotated[
    InputFormat,
    typer.Option(
        "--value-format",
        help="How VALUE is spelled: utf8 text, hex or base64.",
        case_sensitive=False,
    ),
]
WaitLock = Annotated[
    str,
    typer.Option(
        "--wait-lock",
        help="If another process holds the database's LOCK, retry for this long (e.g. 30s, 5m) "
        "before exiting 75.",
        metavar="DURATION",
    ),
]
Quiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print nothing but errors (and the data asked for)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Write even when kvtool cannot preserve the database's format (a custom comparator, "
        "merge operator, compaction filter or prefix extractor, or options its RocksDB cannot "
        "load); without it such a write is refused with exit 2.",
    ),
]
