"""`kvtool diff A B`: the records that differ between two databases, as JSON Lines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, BinaryIO, cast

import typer

from kvtool.cli.options import (
    After,
    ColumnFamily,
    End,
    KeysOnly,
    Prefix,
    Quiet,
    RangeKeyFormat,
    Rate,
    Reverse,
    Start,
    Timeout,
    ValueFormatOut,
)
from kvtool.cli.report import StatsFileOption, StatsFormat, StatsOption, check_database
from kvtool.formats.records import FieldFormat, KeyFormat


def diff(
    a: Annotated[
        Path,
        typer.Argument(
            help="The first (old) database.", metavar="A", readable=False, callback=check_database
        ),
    ],
    b: Annotated[
        Path,
        typer.Argument(
            help="The second (new) database.", metavar="B", readable=False, callback=check_database
        ),
    ],
    cf: ColumnFamily = "default",
    prefix: Prefix = None,
    start: Start = None,
    end: End = None,
    reverse: Reverse = False,
    keys_only: KeysOnly = False,
    key_format: RangeKeyFormat = KeyFormat.AUTO,
    value_format: ValueFormatOut = FieldFormat.AUTO,
    after: After = None,
    rate: Rate = None,
    timeout: Timeout = None,
    stats: StatsOption = StatsFormat.TEXT,
    stats_file: StatsFileOption = None,
    quiet: Quiet = False,
) -> None:
    """Print the records that differ between databases A and B, as JSON Lines.

    Reads both in key order and merges the two sorted streams, so memory stays flat:
    {"op": "removed", "key": K, "value": V} is only in A, {"op": "added", ...} only in B, and
    {"op": "changed", "key": K, "old": VA, "new": VB} differs. Wide-column entities are compared
    column by column and shown as export shows them ("columns", or "old_columns"/"new_columns"
    in place of "old"/"new"). With --keys-only only keys are compared. Exits 1 when they differ
    and 0 when they do not, as diff(1) does (2, 66, 74, ... for errors); the counts are in the
    stats on stderr. --timeout (124), Ctrl-C (130), SIGTERM (143) and SIGHUP (129) stop between
    two keys with every difference so far written and a cursor (in the error line, the stats and
    --stats-file): the same command with --after CURSOR prints the rest of the differences. --rate
    N reads at most N records a second from each database. On a terminal, control characters
    from the data are shown as \\xNN escapes.

    Examples:

        kvtool diff before.db after.db | jq -c 'select(.op == "changed")'

        kvtool diff a.db b.db --prefix user: --keys-only

        kvtool diff a.db b.db -q > changes.jsonl || echo "differ (1) or failed"
    """
    from kvtool.cli.ranges import read_spec
    from kvtool.cli.report import absolute, record_stats
    from kvtool.formats.writers import TerminalSafeStream
    from kvtool.ops.diff import diff as run

    spec = read_spec(
        cf=cf,
        prefix=prefix,
        start=start,
        end=end,
        reverse=reverse,
        key_format=key_format,
        keys_only=keys_only,
        after=after,
        rate=rate,
        timeout=timeout,
    )
    # A closed stdout (`diff A B | head -1`) raises BrokenPipeError out of here: the root
    # command ends that quietly with exit 0, printing no stats.
    out: BinaryIO = sys.stdout.buffer
    if sys.stdout.isatty():
        out = cast(BinaryIO, TerminalSafeStream(out))  # control characters shown as \xNN
    result = run(
        a,
        b,
        spec,
        out,
        key_format=key_format.value,
        value_format=value_format.value,
    )
    record_stats(
        "diff stopped" if result.stopped else "diff done",
        {"database_b": absolute(b), **result.as_dict()},
    )
    result.raise_for_status()
    if result.differ:
        # Differences are an answer, not an error: exit 1 with no error line, as diff(1) does.
        from kvtool.errors import ExitCode

        raise typer.Exit(int(ExitCode.NOT_FOUND))


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
