"""`kvtool info`: print what a database is."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from kvtool.cli.options import DbPath, Json, TextOrJson
from kvtool.cli.report import StatsFormat

if TYPE_CHECKING:
    from kvtool.ops.info import DbInfo


def info(db: DbPath, fmt: TextOrJson = StatsFormat.TEXT, json: Json = False) -> None:
    """Show what a database is: versions, column families, sizes, health.

    Prints the RocksDB version that last wrote the database, its table format_version and
    comparator, each column family's estimated keys and SST bytes per level, memtables,
    pending compaction and background errors, then a short reading of what needs attention.

    Read-only: the database directory is left byte-for-byte as it was, and a live writer is
    not disturbed.

    Examples:

        kvtool info demo.db

        kvtool info -f json demo.db | jq '.column_families[].estimated_keys'
    """
    from kvtool.ops.info import describe

    described = describe(db)
    if json or fmt is StatsFormat.JSON:
        import orjson

        typer.echo(orjson.dumps(described.to_dict()).decode())
    else:
        typer.echo(render(described))


def render(d: DbInfo) -> str:
    from kvtool.formats.units import format_size

    writer = f"RocksDB {d.rocksdb_version or 'unknown'} ({d.options_file or 'no OPTIONS file'})"
    holder = f"process {d.held_by_pid}" if d.held_by_pid else "nobody (not locked)"
    lines = [
        f"path:            {d.path}",
        f"written by:      {writer}",
        f"read with:       {d.engine}",
        f"in use by:       {holder}",
        f"SST files:       {d.sst_files} ({format_size(d.sst_bytes)})",
        f"WAL files:       {d.wal_files} ({format_size(d.wal_bytes)})",
        f"column families: {len(d.column_families)}",
    ]
    for cf in d.column_families:
        opened = cf.estimated_keys is not None and cf.sst_bytes is not None
        lines.append(f"  {cf.name}:")
        if opened:
            lines.append(f"    estimated keys:     {cf.estimated_keys}")
        lines.append(f"    comparator:         {cf.comparator or 'unknown'}")
        if cf.merge_operator:
            lines.append(f"    merge operator:     {cf.merge_operator}")
        lines.append(f"    format_version:     {cf.format_version or 'unknown'}")
        if not opened:
            lines.append("    (not opened: see attention)")
            continue
        lines.append(f"    SST bytes:          {format_size(cf.sst_bytes or 0)}")
        for lv in cf.levels:
            lines.append(f"      L{lv.level}: {lv.files} file(s), {format_size(lv.bytes)}")
        lines.append(
            f"    memtables:          {format_size(cf.memtable_bytes or 0)}, "
            f"{cf.memtable_entries} entries"
        )
        pending = "yes" if cf.compaction_pending else "no"
        lines.append(
            f"    pending compaction: {pending} ({format_size(cf.pending_compaction_bytes or 0)})"
        )
        lines.append(f"    background errors:  {cf.background_errors}")
    lines.append("attention:" if d.attention else "attention:       nothing")
    lines.extend(f"  - {note}" for note in d.attention)
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
