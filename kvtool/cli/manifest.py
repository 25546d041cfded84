"""`kvtool manifest`: the version history in the MANIFEST, read from the file alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kvtool.cli.ondisk_out import KeyFormat


def manifest(
    target: Annotated[
        Path,
        typer.Argument(
            help="Database directory (the MANIFEST that CURRENT names) or a MANIFEST file.",
            metavar="DB|FILE",
            show_default=False,
        ),
    ],
    summary: Annotated[
        bool,
        typer.Option(
            "--summary",
            help="Print the current version instead of the edits: live files per column "
            "family and level, next file number, last sequence number.",
        ),
    ] = False,
    key_format: KeyFormat = "auto",
) -> None:
    """Print the MANIFEST's version edits as JSON Lines.

    One line per edit: its byte offset, column family, the files it adds (level, number,
    size, smallest and largest keys, sequence numbers, creation times) and deletes, log
    numbers, next file number and last sequence number, column families added or dropped,
    blob files and WALs. --summary prints the version they add up to as one JSON object.
    Reads the file only; a torn last edit (a crash mid-write) is reported and exits 0,
    damage before the end exits 74.

    Examples:

        kvtool manifest demo.db | jq -c 'select(.added) | .added[] | {level, file_number}'

        kvtool manifest --summary demo.db
    """
    import orjson

    from kvtool.cli.ondisk_out import encoders, report_damage, write_lines
    from kvtool.errors import CorruptionError
    from kvtool.ondisk.coding import Damage
    from kvtool.ops.inspect import (
        edit_dict,
        manifest_edits,
        manifest_path,
        manifest_version,
        version_dict,
    )

    key, _ = encoders(key_format, "auto")
    path = manifest_path(target)
    damage: list[Damage] = []
    if summary:
        version, damage = manifest_version(path)
        typer.echo(orjson.dumps(version_dict(version, key)).decode())
    else:
        names = {0: "default"}

        def rows() -> Any:
            for edit in manifest_edits(path):
                if isinstance(edit, Damage):
                    damage.append(edit)
                    continue
                if edit.column_family_add is not None:
                    names[edit.column_family] = edit.column_family_add
                yield edit_dict(edit, names, key)

        write_lines(rows())
    if report_damage(damage):
        raise CorruptionError(f"{path} is damaged before its end (see above)")


def register(app: typer.Typer) -> None:
    app.command("manifest")(manifest)
