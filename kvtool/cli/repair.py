"""`kvtool repair`: RocksDB's repair, refused next to an owner, after a backup."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kvtool.cli.options import DbPath, Json


def repair(
    db: DbPath,
    backup: Annotated[
        Path | None,
        typer.Option(
            "--backup",
            help="Copy the database directory here first (a new or empty directory; SST files "
            "are hard-linked when possible).",
            metavar="DIR",
        ),
    ] = None,
    no_backup: Annotated[
        bool,
        typer.Option("--no-backup", help="Repair without a copy: what repair drops is gone."),
    ] = False,
    json: Json = False,
) -> None:
    """Rebuild a database's MANIFEST from its files (RocksDB's repair).

    RocksDB's repair scans every SST file, turns WAL files into SST files, writes a new
    MANIFEST naming everything it could read, and moves what it could not into lost/. It can
    bring back deleted data, and loses what was only in damaged files: so kvtool refuses a
    database another process holds (exit 75), copies the directory first (--backup DIR), or
    needs --no-backup, and reports the files and MANIFEST before and after. Repair uses the
    database's own options (comparator, table format).

    Examples:

        kvtool repair demo.db --backup demo.db.before-repair

        kvtool repair demo.db --no-backup --json
    """
    from kvtool.errors import UsageError
    from kvtool.ops.repair import repair_database

    if (backup is None) == (not no_backup):
        raise UsageError(
            "repair needs --backup DIR or --no-backup",
            hint="repair rewrites the MANIFEST and may drop damaged files",
        )
    report = repair_database(db, backup).as_dict()
    if json:
        import orjson

        typer.echo(orjson.dumps(report).decode())
    else:
        typer.echo(render(report))


def render(r: dict[str, Any]) -> str:
    def state(s: dict[str, Any]) -> str:
        live = ", ".join(f"{cf} {n}" for cf, n in s["live_sst_files"].items()) or "none"
        text = (
            f"{s['manifest'] or 'no MANIFEST'}, {s['sst_files']} SST file(s), "
            f"{s['wal_files']} WAL file(s), live SST files per column family: {live}, "
            f"last sequence {s['last_sequence']}"
        )
        return text + (f" (MANIFEST: {s['manifest_problem']})" if s["manifest_problem"] else "")

    lines = [
        f"repaired {r['path']}",
        f"backup:  {r['backup'] or 'none (--no-backup)'}",
        f"found:   {state(r['before'])}",
        f"now:     {state(r['after'])}",
        f"added:   {', '.join(r['added']) or '-'}",
        f"removed: {', '.join(r['removed']) or '-'}",
        f"changed: {', '.join(r['changed']) or '-'}",
    ]
    if r["lost"]:
        lines.append(
            f"in lost/: {', '.join(r['lost'])} (the WAL files repair turned into SST "
            "files, the old MANIFEST, and any file it could not read)"
        )
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("repair")(repair)
