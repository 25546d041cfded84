"""Output helpers shared by the commands that read RocksDB's files directly (sst, wal,
manifest): JSON Lines on stdout, and the damage they meet as one line each on stderr."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kvtool.formats import records

if TYPE_CHECKING:  # the on-disk readers load with the commands that use them
    from kvtool.ondisk.coding import Damage

AUTO = records.KeyFormat.AUTO
KeyFormat = Annotated[
    records.KeyFormat,
    typer.Option(
        "--key-format",
        help='How keys are written: auto (text, or {"base64": ...} for binary keys), utf8, '
        "hex, base64.",
        case_sensitive=False,
        rich_help_panel="Encoding",
    ),
]
ValueFormat = Annotated[
    records.KeyFormat,  # the same four: these commands show stored bytes, never parsed JSON
    typer.Option(
        "--value-format",
        help='How values are written: auto (text, or {"base64": ...}), utf8, hex, base64.',
        case_sensitive=False,
        rich_help_panel="Encoding",
    ),
]


def encoders(key_format: str, value_format: str) -> tuple[Any, Any]:
    from kvtool.formats.records import encoder

    return encoder(key_format), encoder(value_format)


def write_lines(objects: Iterable[dict[str, Any]]) -> None:
    """One JSON object per line, flushed in batches (a closed pipe ends the run quietly)."""
    import orjson

    out = sys.stdout.buffer
    pending: list[bytes] = []
    for obj in objects:
        pending.append(orjson.dumps(obj) + b"\n")
        if len(pending) >= 256:
            out.write(b"".join(pending))
            pending.clear()
    out.write(b"".join(pending))
    out.flush()


def report_damage(damage: Iterable[Damage]) -> bool:
    """Print each place a file stops following its format; True if any is more than the torn
    tail a crash leaves."""
    serious = False
    for d in damage:
        if d.torn:
            print(
                f"kvtool: {d.file}: torn last record at byte {d.offset} ({d.reason}; "
                "normal after a crash: RocksDB drops it on recovery)",
                file=sys.stderr,
            )
        else:
            serious = True
            print(f"kvtool: {d.file}: damaged at byte {d.offset}: {d.reason}", file=sys.stderr)
    return serious
