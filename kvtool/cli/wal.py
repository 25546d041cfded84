"""`kvtool wal`: the write-ahead log's batches as JSON Lines, read from the files alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kvtool.cli.ondisk_out import KeyFormat, ValueFormat


def wal(
    target: Annotated[
        Path,
        typer.Argument(
            help="Database directory (every *.log in it, oldest first) or one .log file.",
            metavar="DB|FILE",
            show_default=False,
        ),
    ],
    tail: Annotated[
        int | None,
        typer.Option("--tail", help="Only the last N write batches.", metavar="N", min=0),
    ] = None,
    key_format: KeyFormat = "auto",
    value_format: ValueFormat = "auto",
) -> None:
    """Print the write-ahead log: one JSON line per operation.

    Each line has the log file, the batch's byte offset and first sequence number, the
    operation's own sequence number, its column family (named from the MANIFEST), the
    operation (put, delete, single_delete, delete_range, merge, put_entity, blob_index, and
    the transaction markers), the key and the value (a delete_range has "end"; a put_entity
    has "columns"). Reads the files only: nothing is opened, locked or written, so it works
    next to a live owner.

    A torn last record (what a crash leaves) is reported on stderr and exits 0; damage
    before the end of a log is reported with its byte offset and exits 74 after every
    readable batch is printed.

    Examples:

        kvtool wal demo.db

        kvtool wal --tail 5 demo.db | jq -c '{sequence, op, key}'

        kvtool wal demo.db/000012.log
    """
    from kvtool.cli.ondisk_out import encoders, report_damage, write_lines
    from kvtool.errors import CorruptionError
    from kvtool.ondisk.coding import Damage
    from kvtool.ondisk.writebatch import entity_columns
    from kvtool.ops.inspect import cf_names, wal_batches, wal_files

    key, value = encoders(key_format, value_format)
    files = wal_files(target)
    names = cf_names(target if target.is_dir() else target.parent)
    damage: list[Damage] = []

    def rows() -> Any:
        for item in wal_batches(files, tail):
            if isinstance(item, Damage):
                damage.append(item)
                continue
            batch = item.batch
            for op in batch.ops:
                row: dict[str, Any] = {
                    "file": item.file.name,
                    "offset": item.offset,
                    "batch_sequence": batch.sequence,
                    "sequence": op.sequence,
                    "cf": names.get(op.cf, f"#{op.cf}"),
                    "cf_id": op.cf,
                    "op": op.op,
                }
                if op.key is not None:
                    row["xid" if op.op in ("end_prepare", "commit", "rollback") else "key"] = key(
                        op.key
                    )
                if op.value is not None:
                    if op.op == "delete_range":
                        row["end"] = key(op.value)
                    elif op.op == "put_entity" and (cols := entity_columns(op.value)) is not None:
                        row["columns"] = [{"name": key(n), "value": value(v)} for n, v in cols]
                    else:
                        row["value"] = value(op.value)
                yield row

    write_lines(rows())
    if report_damage(damage):
        raise CorruptionError("the write-ahead log is damaged before its end (see above)")


def register(app: typer.Typer) -> None:
    app.command("wal")(wal)
