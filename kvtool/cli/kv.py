"""`kvtool get`, `put`, `delete`: single keys."""

from __future__ import annotations

import enum
import sys
from typing import Annotated

import typer

from kvtool.cli.options import (
    ColumnFamily,
    DbPath,
    Force,
    KeyFormatIn,
    ValueFormatIn,
    WaitLock,
)
from kvtool.formats.codecs import InputFormat, decode_text, encode_text
from kvtool.formats.units import parse_duration

Key = Annotated[str, typer.Argument(help="The key, spelled as --key-format says.", metavar="KEY")]


class GetFormat(str, enum.Enum):
    """How `get` prints the value."""

    RAW = "raw"
    UTF8 = "utf8"
    HEX = "hex"
    BASE64 = "base64"


def get(
    db: DbPath,
    key: Key,
    cf: ColumnFamily = "default",
    key_format: KeyFormatIn = InputFormat.UTF8,
    value_format: Annotated[
        GetFormat,
        typer.Option(
            "--value-format",
            help="Print the value as raw bytes, utf8 text (invalid bytes escaped), hex or "
            "base64 (each of the last three followed by a newline).",
            case_sensitive=False,
        ),
    ] = GetFormat.RAW,
) -> None:
    """Print the value of one key.

    The value is written to stdout exactly as stored (no newline added) unless
    --value-format asks for text; on a terminal, control characters (ESC, CR, ...) are shown
    as \\xNN escapes instead. Exits 1 with "key not found" when the key is not there,
    so scripts can test for a key the way they test with grep. A wide-column entity prints
    as its value when it holds only the default column; one with other columns is refused
    (exit 2) rather than printed in part: export or scan prints every column.

    Examples:

        kvtool get demo.db key:000000000042

        kvtool get --key-format hex --value-format hex demo.db 6b6579
    """
    from kvtool.formats.writers import terminal_safe, write_all
    from kvtool.ops.kv import get_value

    value = get_value(db, decode_text(key, key_format), cf=cf)
    if value_format is GetFormat.RAW:
        data = value
    else:
        data = (encode_text(value, value_format.value) + "\n").encode(
            "utf-8", errors="surrogateescape"
        )
    if sys.stdout.isatty():
        data = terminal_safe(data)  # an escape sequence in the value must not drive the terminal
    write_all(sys.stdout.buffer, data)  # all of it, also on an unbuffered stdout
    sys.stdout.buffer.flush()


def put(
    db: DbPath,
    key: Key,
    value: Annotated[
        str, typer.Argument(help="The value, spelled as --value-format says.", metavar="VALUE")
    ],
    cf: ColumnFamily = "default",
    key_format: KeyFormatIn = InputFormat.UTF8,
    value_format: ValueFormatIn = InputFormat.UTF8,
    wait_lock: WaitLock = "0s",
    force: Force = False,
) -> None:
    """Store one key and its value, replacing any value it had.

    Takes the database's LOCK for the write: exits 75 at once if another process (the
    database's owner) holds it, or after --wait-lock if given. The write keeps the
    database's own options and file format, so its owner can still read it.

    Examples:

        kvtool put demo.db greeting hello

        kvtool put --key-format hex --value-format base64 demo.db 00ff AAEC
    """
    from kvtool.ops.kv import put_value

    put_value(
        db,
        decode_text(key, key_format),
        decode_text(value, value_format, what="value"),
        cf=cf,
        wait_lock=parse_duration(wait_lock, option="--wait-lock", zero_ok=True),
        force=force,
    )


def delete(
    db: DbPath,
    key: Key,
    cf: ColumnFamily = "default",
    key_format: KeyFormatIn = InputFormat.UTF8,
    wait_lock: WaitLock = "0s",
    force: Force = False,
) -> None:
    """Delete one key.

    Deleting a key that is not there is not an error. Takes the database's LOCK like put.

    Examples:

        kvtool delete demo.db greeting
    """
    from kvtool.ops.kv import delete_key

    delete_key(
        db,
        decode_text(key, key_format),
        cf=cf,
        wait_lock=parse_duration(wait_lock, option="--wait-lock", zero_ok=True),
        force=force,
    )


def register(app: typer.Typer) -> None:
    app.command("get")(get)
    app.command("put")(put)
    app.command("delete")(delete)
