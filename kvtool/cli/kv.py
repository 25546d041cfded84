"""`kvtool get`, `put`, `delete`: single keys."""

from __future__ import annotations

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

Key = Annotated[str, typer.Argument(help="The key, spelled as --key-format says.")]


def get(
    db: DbPath,
    key: Key,
    cf: ColumnFamily = "default",
    key_format: KeyFormatIn = InputFormat.UTF8,
    value_format: Annotated[
        str,
        typer.Option(
            "--value-format",
            help="Print the value as raw bytes (default), utf8, hex or base64.",
        ),
    ] = "raw",
) -> None:
    """Print the value of one key (raw bytes unless --value-format says otherwise).

    Exits 1 with "key not found" when the key is not there.

    Examples:

        kvtool get demo.db key:000000000042

        kvtool get --key-format hex --value-format hex demo.db 6b6579
    """
    from kvtool.ops.kv import get_value

    if value_format not in ("raw", "utf8", "hex", "base64"):
        from kvtool.errors import UsageError

        raise UsageError(f"--value-format: {value_format!r} is not one of raw, utf8, hex, base64")
    value = get_value(db, decode_text(key, key_format), cf=cf)
    if value_format == "raw":
        sys.stdout.buffer.write(value)
        sys.stdout.buffer.flush()
    else:
        typer.echo(encode_text(value, value_format))


def put(
    db: DbPath,
    key: Key,
    value: Annotated[str, typer.Argument(help="The value, spelled as --value-format says.")],
    cf: ColumnFamily = "default",
    key_format: KeyFormatIn = InputFormat.UTF8,
    value_format: ValueFormatIn = InputFormat.UTF8,
    wait_lock: WaitLock = "0s",
    force: Force = False,
) -> None:
    """Store one key. Takes the database's LOCK: exits 75 if another process holds it.

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
        wait_lock=parse_duration(wait_lock, option="--wait-lock"),
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
    """Delete one key (deleting a key that is not there is not an error).

    Example:

        kvtool delete demo.db greeting
    """
    from kvtool.ops.kv import delete_key

    delete_key(
        db,
        decode_text(key, key_format),
        cf=cf,
        wait_lock=parse_duration(wait_lock, option="--wait-lock"),
        force=force,
    )


def register(app: typer.Typer) -> None:
    app.command("get")(get)
    app.command("put")(put)
    app.command("delete")(delete)
