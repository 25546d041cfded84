"""`kvtool verify`: a checksum-verified read of a whole database, and its content digest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from kvtool.cli.options import DbPath, Quiet
from kvtool.cli.report import StatsFileOption, StatsFormat, StatsOption

if TYPE_CHECKING:
    from kvtool.ops.verify import VerifyResult


def verify(
    db: DbPath,
    digest: Annotated[
        bool,
        typer.Option(
            "--digest",
            help="Print a SHA-256 of the content (column family names, keys and values, in "
            "order) on stdout, to compare two copies.",
        ),
    ] = False,
    stats: StatsOption = StatsFormat.TEXT,
    stats_file: StatsFileOption = None,
    quiet: Quiet = False,
) -> None:
    """Read every record of every column family with checksums verified.

    Reads through a fresh read-only handle, bypassing the block cache, so every block comes
    from disk; the database directory is left untouched and a live writer (the application
    that owns the database) is not disturbed. On a checksum mismatch or read error it exits 74
    naming the damaged SST file, the column family and the last key read intact. The stats
    block gives records and bytes per column family. The --digest hash covers each column
    family (in name order) as its name and then each record in key order as lengths, key and
    value (every column of a wide-column entity): equal digests mean equal content, whatever the
    files' layout.

    An SST file that the MANIFEST does not reference is lost data (exit 74) only when its
    records are nowhere else: one that a crash left between a flush or compaction writing it and
    the MANIFEST edit adding it (its records are still in the WAL or the compaction's inputs),
    or an input a recorded compaction replaced, gets a note on stderr (not with -q) and exit 0;
    RocksDB deletes it on the owner's next read-write open.

    Examples:

        kvtool verify demo.db

        cmp <(kvtool verify -q --digest a.db) <(kvtool verify -q --digest b.db)

        kvtool verify -q --stats-file /var/lib/kvtool/verify.json /srv/app/db
    """
    from kvtool.cli.report import record_stats
    from kvtool.ops.verify import verify as run

    if quiet:
        import logging

        # -q in cron: a note (an SST file a crash left behind) must not turn a success into mail.
        logging.getLogger("kvtool").setLevel(logging.ERROR)

    result = run(db, digest=digest)
    record_stats(f"verify {db}", stats_dict(result), text=stats_text(result))
    result.raise_for_status()
    if result.digest is not None:
        typer.echo(result.digest)


def stats_dict(result: VerifyResult) -> dict[str, Any]:
    from kvtool.formats.codecs import printable

    return {
        "records": result.records,
        "key_bytes": result.key_bytes,
        "value_bytes": result.value_bytes,
        "sst_files": result.sst_files,
        "sst_bytes": result.sst_bytes,
        "elapsed_s": round(result.elapsed, 3),
        "digest": result.digest,
        "column_families": [
            {
                "name": cf.name,
                "records": cf.records,
                "key_bytes": cf.key_bytes,
                "value_bytes": cf.value_bytes,
                "digest": cf.digest,
            }
            for cf in result.column_families
        ],
        "corrupt_file": result.corrupt_file,
        "failed_column_family": result.failed_column_family,
        "last_good_key": printable(result.last_good_key, limit=200)
        if result.last_good_key is not None
        else None,
    }


def stats_text(result: VerifyResult) -> dict[str, Any]:
    from kvtool.formats.units import format_size

    rate = result.records / result.elapsed if result.elapsed > 0 else 0.0
    mb = (result.key_bytes + result.value_bytes) / 1e6 / result.elapsed if result.elapsed else 0.0
    text: dict[str, Any] = {
        "status": "ok" if result.ok else "FAILED",
        "records": f"{result.records:,}",
        "bytes": f"{format_size(result.key_bytes + result.value_bytes)} "
        f"(keys {format_size(result.key_bytes)}, values {format_size(result.value_bytes)})",
        "SST_files": f"{result.sst_files} ({format_size(result.sst_bytes)})",
        "elapsed": f"{result.elapsed:.2f} s ({rate:,.0f} records/s, {mb:.1f} MB/s)",
    }
    for cf in result.column_families:
        text[f"cf {cf.name}"] = (
            f"{cf.records:,} records, {format_size(cf.key_bytes + cf.value_bytes)}"
        )
    if result.corrupt_file is not None:
        text["damaged_file"] = result.corrupt_file
    return text


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
