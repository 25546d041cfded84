"""`kvtool count`: how many records a range holds."""

from __future__ import annotations

from typing import Annotated

import typer

from kvtool.cli.options import (
    MAX_WORKERS,
    After,
    ColumnFamily,
    DbPath,
    End,
    Json,
    Limit,
    Prefix,
    RangeKeyFormat,
    Rate,
    Reverse,
    Start,
    TextOrJson,
    Timeout,
)
from kvtool.cli.report import StatsFileOption, StatsFormat
from kvtool.formats.records import KeyFormat


def count(
    db: DbPath,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate",
            help="Print RocksDB's estimate (rocksdb.estimate-num-keys) for the whole column "
            "family: instant, but approximate.",
        ),
    ] = False,
    cf: ColumnFamily = "default",
    prefix: Prefix = None,
    start: Start = None,
    end: End = None,
    reverse: Reverse = False,
    limit: Limit = None,
    key_format: RangeKeyFormat = KeyFormat.AUTO,
    after: After = None,
    rate: Rate = None,
    timeout: Timeout = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            help="Count with N processes side by side, each a part of the range. Default: 2 on "
            "a multi-core machine for a database over 64 MB of SST files; 1 counts in one "
            "process.",
            metavar="N",
            min=1,
            max=MAX_WORKERS,
        ),
    ] = None,
    fmt: TextOrJson = StatsFormat.TEXT,
    json: Json = False,
    stats_file: StatsFileOption = None,
) -> None:
    """Print the exact number of records in a range.

    The range is the whole column family unless --prefix, --start or --end narrow it. Steps one
    iterator over the range, reading keys only. A corrupt block exits 74, never a short count.
    --limit N stops counting at N. On a large database two worker processes (--workers) count
    parts of the range side by side, only once both see the same data. --timeout (124), Ctrl-C
    (130), SIGTERM (143) and SIGHUP (129) stop with the partial count and a cursor in the error
    line (and in --stats-file): the same command with --after CURSOR counts exactly the rest, so
    the two counts add up to the whole.

    Examples:

        kvtool count demo.db

        kvtool count demo.db --prefix user:

        kvtool count demo.db --estimate --format json

        kvtool count demo.db --timeout 1m --stats-file count.json

        kvtool count demo.db --after @count.json
    """
    from kvtool.cli.ranges import read_spec
    from kvtool.cli.report import record_stats
    from kvtool.ops.count import CountStoppedError, count_records

    spec = read_spec(
        cf=cf,
        prefix=prefix,
        start=start,
        end=end,
        reverse=reverse,
        key_format=key_format,
        limit=limit,
        after=after,
        rate=rate,
        timeout=timeout,
    )
    try:
        result = count_records(db, spec, estimate=estimate, workers=workers)
    except CountStoppedError as stop:
        # The partial count and the cursor that resumes it; the error line says them too.
        if stats_file is not None:
            record_stats("count stopped", stop.result.stats(), shown=False)
        raise
    # The count is the answer (stdout); its figures go to --stats-file only (and only when
    # asked: reporting builds every command's options, which a plain count need not pay for).
    if stats_file is not None:
        record_stats("count done", result.stats(), shown=False)
    if json or fmt is StatsFormat.JSON:
        import orjson

        typer.echo(orjson.dumps(result.as_dict()).decode())
    else:
        typer.echo(f"{'~' if result.estimated else ''}{result.count}")


def register(app: typer.Typer) -> None:
    app.command("count")(count)
