"""`kvtool du`: where the bytes and records of a database are, by key prefix."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from kvtool.cli.ondisk_out import AUTO, KeyFormat
from kvtool.cli.options import MAX_WORKERS, DbPath, Json


def du(
    db: DbPath,
    depth: Annotated[
        int | None,
        typer.Option(
            "--depth",
            help="Group keys by their first N bytes (not with --separator/--levels).",
            metavar="N",
            min=1,
        ),
    ] = None,
    separator: Annotated[
        str,
        typer.Option(
            "--separator",
            help="Group keys by the fields this string ends (default ':'; with --levels).",
            metavar="SEP",
        ),
    ] = ":",
    levels: Annotated[
        int,
        typer.Option(
            "--levels", help="How many SEP-ended fields make a group.", metavar="K", min=1
        ),
    ] = 1,
    cf: Annotated[
        list[str] | None,
        typer.Option(
            "--cf", help="Only this column family (repeatable). Default: all.", metavar="NAME"
        ),
    ] = None,
    top: Annotated[
        int,
        typer.Option(
            "--top",
            help="Show the N largest records (key + value bytes; of equal sizes the exact "
            "mode shows the smaller keys).",
            metavar="N",
            min=0,
        ),
    ] = 10,
    groups: Annotated[
        int,
        typer.Option(
            "--groups", help="Show at most N prefixes per column family.", metavar="N", min=1
        ),
    ] = 20,
    sample: Annotated[
        float | None,
        typer.Option(
            "--sample",
            help="Estimate from this fraction of the SST data blocks (e.g. 0.01), read from "
            "the files: each estimate comes with its error (3 standard errors, more for a "
            "prefix seen in few blocks: within it 99.7% of the time). Data only in the WAL is "
            "not sampled; merge operands are not counted and BlobDB values count as their "
            "references (notes say how much).",
            metavar="FRACTION",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Seed of --sample's block choice (repeatable runs).", metavar="N"
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            help="Read with N processes side by side, each a part of every column family (the "
            "exact mode). Default: 2 on a multi-core machine for a database over 64 MB of SST "
            "files; 1 reads in one process.",
            metavar="N",
            min=1,
            max=MAX_WORKERS,
        ),
    ] = None,
    json: Json = False,
    key_format: KeyFormat = AUTO,
) -> None:
    """Show where the bytes and records are: per key prefix and column family.

    For each column family: records, key and value bytes per prefix (a bar chart on a
    terminal, the largest first), a histogram of value sizes, the largest records; for each
    SST file and level, the entries and the share of tombstones (point and range) from the
    table properties. The exact mode reads every record (its totals equal `count` and the
    bytes of `export`); on a large database two worker processes (--workers) read parts of it
    side by side, only once both see the same data. --sample FRACTION reads that share of the
    data blocks and states the error of each estimate. Read-only. Ctrl-C (130), SIGTERM (143)
    and SIGHUP (129) stop the exact mode with no report.

    Examples:

        kvtool du demo.db

        kvtool du demo.db --separator : --levels 2

        kvtool du big.db --sample 0.01 --json | jq '.column_families[0]'
    """
    from kvtool.cli.ondisk_out import encoders
    from kvtool.errors import UsageError
    from kvtool.ops.du import Grouping, usage_dict

    if not separator:
        raise UsageError("--separator must not be empty")
    if depth is not None and (separator != ":" or levels != 1):
        raise UsageError("--depth groups by bytes: give it or --separator/--levels, not both")
    key, _ = encoders(key_format, "auto")
    grouping = Grouping(depth=depth, separator=separator.encode(), levels=levels)
    if sample is not None:
        from kvtool.ops.du_sample import sample_usage

        usage = sample_usage(db, grouping, sample, cfs=cf, top=top, seed=seed)
    else:
        usage = _exact_with_progress(db, grouping, cf, top, workers)
    result = usage_dict(usage, key, groups)
    if json:
        import orjson

        typer.echo(orjson.dumps(result).decode())
    else:
        typer.echo(render(result))


def _exact_with_progress(
    db: Any, grouping: Any, cf: list[str] | None, top: int, workers: int | None
) -> Any:
    from kvtool.ops.du_exact import exact_usage

    if not sys.stderr.isatty():
        return exact_usage(db, grouping, cfs=cf, top=top, workers=workers)
    from tqdm import tqdm  # type: ignore[import-untyped]

    with tqdm(unit=" records", unit_scale=True, file=sys.stderr, leave=False) as bar:
        return exact_usage(db, grouping, cfs=cf, top=top, progress=bar.update, workers=workers)


def render(r: dict[str, Any]) -> str:
    from kvtool.formats.units import format_size

    width = 30
    lines = [
        f"{r['path']} ({r['mode']}"
        + (f", {r['fraction']:g} of {r['total_blocks']} blocks)" if r["mode"] == "sample" else ")")
    ]
    for cf in r["column_families"]:
        total = cf["bytes"] or 1
        err = f" ± {format_size(cf['bytes_error'] or 0)}" if "bytes_error" in cf else ""
        lines.append("")
        lines.append(
            f"column family {cf['name']}: {cf['records']} records, {format_size(cf['bytes'])}{err} "
            f"(keys {format_size(cf['key_bytes'])}, values {format_size(cf['value_bytes'])}), "
            f"{cf['groups']} prefixes"
        )
        for p in cf["prefixes"]:
            share = p["bytes"] / total
            bar = "█" * max(1, round(share * width)) if p["bytes"] else ""
            label = _label(p["prefix"])
            err = f" ± {format_size(p['bytes_error'] or 0)}" if "bytes_error" in p else ""
            lines.append(
                f"  {label[:24]:<24} {bar:<{width}} {format_size(p['bytes']):>9}{err} "
                f"{share:6.1%}  {p['records']} records"
            )
        if cf["value_sizes"]:
            lines.append("  value sizes:")
            most = max(v["records"] for v in cf["value_sizes"]) or 1
            for v in cf["value_sizes"]:
                bar = "█" * max(1, round(v["records"] / most * width))
                lines.append(f"    {v['min']:>9}-{v['max']:<9} {bar:<{width}} {v['records']}")
        if cf["largest"]:
            lines.append("  largest records:")
            for rec in cf["largest"]:
                label = _label(rec["key"])
                lines.append(f"    {format_size(rec['bytes']):>9}  {label[:60]}")
    if r["levels"]:
        lines.append("")
        lines.append("tombstones (table properties):")
        for lv in r["levels"]:
            share = lv["tombstone_share"]
            lines.append(
                f"  {lv['cf']} L{lv['level']}: {lv['files']} file(s), {format_size(lv['bytes'])}, "
                f"{lv['entries']} entries, {lv['deletions']} deletions, "
                f"{lv['range_deletions']} range deletions"
                + (f" ({share:.1%})" if share is not None else "")
            )
    lines.extend(f"note: {n}" for n in r["notes"])
    return "\n".join(lines)


def _label(value: Any) -> str:
    """A key field for a terminal: text as is, other formats as `format:text`."""
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return repr(value)[1:-1] if not value.isprintable() else value or '""'


def register(app: typer.Typer) -> None:
    app.command("du")(du)
