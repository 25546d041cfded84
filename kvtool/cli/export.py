"""`kvtool export`: the whole range as records (JSON Lines by default) to stdout or a file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kvtool.cli.completion import column_families
from kvtool.cli.options import (
    MAX_WORKERS,
    After,
    BytesRate,
    DbPath,
    End,
    KeysOnly,
    Limit,
    Prefix,
    Quiet,
    RangeKeyFormat,
    Rate,
    Reverse,
    Start,
    Timeout,
    ValueFormatOut,
)
from kvtool.cli.report import StatsFileOption, StatsFormat, StatsOption
from kvtool.formats.records import FieldFormat, KeyFormat
from kvtool.formats.writers import ExportFormat


class _Bar:
    """tqdm on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, total: int | None) -> None:
        from tqdm import tqdm  # type: ignore[import-untyped]

        self._bar = tqdm(total=total, unit=" rec", unit_scale=True, file=sys.stderr, leave=False)

    def update(self, records: int) -> None:
        self._bar.update(records)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def export(
    db: DbPath,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file instead of stdout: a temp file beside it, renamed over it "
            "when complete (keeping its mode; a new file gets the umask's); a symlink's target "
            "gets the data; a device, FIFO or /dev/stdout is written in place; a read-only "
            "file is refused (exit 77), and so is a path inside the database's directory (exit "
            "2). gzip-compressed when the name ends in .gz. A stopped run "
            "keeps FILE.partial and FILE.partial.cursor; --after CURSOR with the same -o FILE "
            "appends to FILE.partial (refused, exit 2, unless it stopped at CURSOR with the same "
            "--format and encodings, reading the same database), so the completed FILE equals "
            "one uninterrupted export.",
            metavar="FILE",
            rich_help_panel="Output",
        ),
    ] = None,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            help="Output format: jsonl, csv (with a header), tsv, or parquet (a dataset "
            "directory -o DIR of part files; needs pip install 'kvtool[parquet]').",
            rich_help_panel="Output",
            case_sensitive=False,
        ),
    ] = ExportFormat.JSONL,
    cf: Annotated[
        list[str] | None,
        typer.Option(
            "--cf",
            help="Column family to export (default: default). Repeatable with --format parquet: "
            "the dataset then has a cf column naming each record's column family.",
            metavar="NAME",
            autocompletion=column_families,
        ),
    ] = None,
    all_cfs: Annotated[
        bool,
        typer.Option(
            "--all-cfs",
            help="With --format parquet: export every column family of the database (in the "
            "order kvtool cf list shows) into one dataset with a cf column, through one view "
            "(one point in time).",
        ),
    ] = False,
    prefix: Prefix = None,
    start: Start = None,
    end: End = None,
    reverse: Reverse = False,
    limit: Limit = None,
    keys_only: KeysOnly = False,
    key_format: RangeKeyFormat = KeyFormat.AUTO,
    value_format: ValueFormatOut = FieldFormat.AUTO,
    after: After = None,
    rate: Rate = None,
    bytes_rate: BytesRate = None,
    timeout: Timeout = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            help="Read with N processes side by side, each a part of the range; the output is "
            "the same. Default: 2 on a multi-core machine for a database over 64 MB of SST "
            "files; 1 reads in one process. JSON Lines, csv and tsv are read in one process "
            "whatever N with --limit, --rate, --bytes-rate, a .gz output, or a key order "
            "kvtool cannot sort (a custom comparator).",
            metavar="N",
            min=1,
            max=MAX_WORKERS,
        ),
    ] = None,
    partition_by_prefix: Annotated[
        int | None,
        typer.Option(
            "--partition-by-prefix",
            help="With --format parquet: put each part file under DIR/prefix=HEX/, HEX the "
            "first N bytes of its keys in hex (hive-style partitions that DuckDB and Spark "
            "prune on).",
            metavar="N",
            min=1,
            max=64,
            rich_help_panel="Output",
        ),
    ] = None,
    part_size: Annotated[
        str,
        typer.Option(
            "--part-size",
            help="With --format parquet: start a new part file past this many bytes of data "
            "(keys and values, as Arrow holds them).",
            metavar="SIZE",
            rich_help_panel="Output",
        ),
    ] = "256MiB",
    stats: StatsOption = StatsFormat.TEXT,
    stats_file: StatsFileOption = None,
    quiet: Quiet = False,
) -> None:
    """Stream every record of a range out, as JSON Lines by default.

    Each record is {"key": ..., "value": ...} on one line, in key order; a wide-column entity's
    is {"key": ..., "columns": [{"name": ..., "value": ...}, ...]}, every column (jq's
    from_entries reads the list; csv and tsv show it as one JSON object). The output is one
    consistent point in time: one iterator reads it, or on a large database two worker processes
    (--workers) read parts of the range side by side and write them in order, only once both see the
    same data (else one process reads it all). Binary keys and values survive exactly with the
    default auto format ({"base64": ...} for bytes that are not UTF-8), or with hex/base64; kvtool
    import reads it back. Ctrl-C (exit 130), SIGTERM (143), SIGHUP (129) and --timeout (124) stop
    at a record boundary, flush whole records and print the stats and a cursor (also when the
    reader is slow or a second Ctrl-C comes: a third one stops at once and may cut a record; a
    range worker that dies stops the export with 74 and a cursor): run the same command with
    --after CURSOR to get the rest (with -o, the records written so far are kept in FILE.partial,
    and the same command with --after CURSOR appends the rest to it). A cursor too long for the
    command line is passed as --after @FILE (FILE.partial.cursor, or a --stats-file). A closed
    pipe (| head) ends quietly with exit 0. A corrupt block exits 74, never a short output; a full
    disk exits 74. On a terminal, control characters from the data are shown as \\xNN escapes.
    Stats go to stderr (--stats json, --stats-file, -q); a progress bar too when stderr is a
    terminal. csv and tsv are for people: their auto format shows invalid UTF-8 as \\x escapes; use
    hex or base64 for exact bytes.

    Examples:

        kvtool export demo.db | jq -r .key

        kvtool export demo.db --prefix user: -o users.jsonl.gz

        kvtool export demo.db --rate 5000 --timeout 10m --stats json

        kvtool export demo.db --key-format hex --start 00ff --end 0100

        kvtool export demo.db --format parquet --all-cfs -o demo-ds/
    """
    from kvtool.cli.pipes import silence_stdout
    from kvtool.cli.ranges import read_spec
    from kvtool.cli.report import record_stats, stats_file_apart
    from kvtool.errors import UsageError
    from kvtool.formats.writers import OutputFormat
    from kvtool.ops.export import export as run

    if output is not None and str(output) != "-":
        stats_file_apart(stats_file, output, what="the -o output", tree=fmt is ExportFormat.PARQUET)
    names = list(cf or ["default"])
    if all_cfs and cf:
        raise UsageError("--all-cfs exports every column family: give it or --cf, not both")
    several = all_cfs or len(names) > 1
    if several and fmt is not ExportFormat.PARQUET:
        raise UsageError(
            "several column families are exported only with --format parquet (its cf column)",
            hint="export one --cf at a time",
        )
    spec = read_spec(
        cf=names[0],
        prefix=prefix,
        start=start,
        end=end,
        reverse=reverse,
        key_format=key_format,
        limit=limit,
        keys_only=keys_only,
        after=None if several else after,  # a cursor names one of several: checked there
        rate=rate,
        bytes_rate=bytes_rate,
        timeout=timeout,
    )
    to_stdout = output is None or str(output) == "-"
    if fmt is ExportFormat.PARQUET:
        _export_parquet(db, spec, output, to_stdout, key_format, value_format, partition_by_prefix,
                        part_size, workers, quiet,
                        cfs=(["*"] if all_cfs else names) if several else None,
                        after=after if several else None)  # fmt: skip
        return
    if partition_by_prefix is not None:
        raise UsageError("--partition-by-prefix is for --format parquet")
    terminal = to_stdout and sys.stdout.isatty()
    if not to_stdout:
        from kvtool.formats.output_file import is_terminal, resolve
        from kvtool.formats.output_guards import refuse_inside_database

        assert output is not None
        refuse_inside_database(output, [db])
        resolve(output)  # a read-only or impossible target is refused before any work
        terminal = is_terminal(output)
    progress = _Bar() if (not quiet and sys.stderr.isatty()) else None
    result = run(
        db,
        spec,
        out=sys.stdout.buffer if to_stdout else None,
        path=None if to_stdout else output,
        fmt=OutputFormat(fmt.value),
        key_format=key_format.value,
        value_format=value_format.value,
        progress=progress,
        flush_each_batch=to_stdout and (rate is not None or bytes_rate is not None),
        workers=workers,
        terminal=terminal,
    )
    if result.output_closed:
        # `export | head`: the reader has what it wanted. A quiet, normal end (exit 0, nothing on
        # stderr, as `cat` does); a --stats-file still records it, cursor included.
        silence_stdout()
        record_stats("export stopped", result.stats, output_closed=True)
        return
    record_stats("export stopped" if result.stopped else "export done", result.stats)
    result.raise_for_status()


def _export_parquet(
    db: Path,
    spec: Any,
    output: Path | None,
    to_stdout: bool,
    key_format: KeyFormat,
    value_format: FieldFormat,
    partition_by_prefix: int | None,
    part_size: str,
    workers: int | None,
    quiet: bool,
    *,
    cfs: list[str] | None,
    after: str | None,
) -> None:
    """`export --format parquet -o DIR` (kvtool.ops.export_parquet)."""
    from kvtool.cli.report import record_stats
    from kvtool.errors import UsageError
    from kvtool.formats.units import parse_size
    from kvtool.ops.export_parquet import export_parquet

    if to_stdout:
        raise UsageError("--format parquet writes a dataset directory: give -o DIR")
    assert output is not None
    from kvtool.formats.output_guards import refuse_inside_database

    refuse_inside_database(output, [db])
    result = export_parquet(
        db,
        spec,
        output,
        key_format=key_format.value,
        value_format=value_format.value,
        partition_by_prefix=partition_by_prefix,
        part_bytes=parse_size(part_size, option="--part-size"),
        progress=_Bar() if (not quiet and sys.stderr.isatty()) else None,
        workers=workers,
        cfs=cfs,
        after=after,
    )
    record_stats("export stopped" if result.stopped else "export done", result.stats)
    result.raise_for_status()


def register(app: typer.Typer) -> None:
    app.command("export")(export)
