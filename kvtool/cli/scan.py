"""`kvtool scan`: one page of records for people, and the command for the next page."""

from __future__ import annotations

import shlex
import shutil
import sys
from typing import Annotated

import typer

from kvtool.cli.options import (
    MAX_COUNT,
    After,
    ColumnFamily,
    DbPath,
    End,
    KeysOnly,
    Prefix,
    RangeKeyFormat,
    Reverse,
    Start,
    ValueFormatOut,
)
from kvtool.formats.records import FieldFormat, KeyFormat
from kvtool.formats.writers import OutputFormat


def _next_command(token: str) -> str:
    """This command line with --after TOKEN in place of any --after it had."""
    args = sys.argv[1:]
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--after":
            skip = True
            continue
        if arg.startswith("--after="):
            continue
        kept.append(arg)
    return shlex.join(["kvtool", *kept, "--after", token])


def scan(
    db: DbPath,
    page_size: Annotated[
        int,
        typer.Option(
            "--page-size", "-n", help="Records per page.", min=1, max=MAX_COUNT, metavar="N"
        ),
    ] = 20,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="Output format: table (for people), tsv, csv or jsonl.",
            rich_help_panel="Output",
            case_sensitive=False,
        ),
    ] = OutputFormat.TABLE,
    cf: ColumnFamily = "default",
    prefix: Prefix = None,
    start: Start = None,
    end: End = None,
    reverse: Reverse = False,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            help="The same as --page-size (-n), by the name the other reading commands use; "
            "given both, the smaller.",
            min=0,
            max=MAX_COUNT,
            metavar="N",
            rich_help_panel="Range",
        ),
    ] = None,
    keys_only: KeysOnly = False,
    key_format: RangeKeyFormat = KeyFormat.AUTO,
    value_format: ValueFormatOut = FieldFormat.AUTO,
    after: After = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Print nothing but the records, errors and the next: line (what a script needs "
            "to go on); no end-of-range note.",
            rich_help_panel="Output",
        ),
    ] = False,
) -> None:
    """Show one page of records, and how to get the next one.

    Prints up to --page-size records (a table by default; tsv, csv or jsonl for scripts) and,
    when more follow, the command for the next page on stderr: `next: kvtool scan ... --after
    CURSOR` (kept with -q: a script needs it to go on), else a note that the range ended. A
    cursor is bound to its range and direction: giving it to another range exits 2.
    The table shows bytes that are not printable as \\x escapes and cuts long cells to the
    terminal's width; use --format jsonl or export for exact bytes.
    On a terminal, every format shows control characters from the data (ESC, CR, ...) as \\xNN
    escapes, so data cannot move the cursor or retitle the window; a pipe gets the exact bytes.

    Examples:

        kvtool scan demo.db

        kvtool scan demo.db --prefix user: --page-size 50

        kvtool scan demo.db --reverse --format jsonl --after kv2.AgGD_yZK...
    """
    from kvtool.cli.ranges import read_spec
    from kvtool.formats.writers import (
        header,
        render_table,
        renderer,
        terminal_safe,
        write_all,
    )
    from kvtool.ops.scan import scan_page

    vf = value_format.value
    spec = read_spec(
        cf=cf,
        prefix=prefix,
        start=start,
        end=end,
        reverse=reverse,
        key_format=key_format,
        limit=limit,
        keys_only=keys_only,
        after=after,
    )
    page = scan_page(db, spec, page_size)
    kf = key_format.value
    if fmt is OutputFormat.TABLE:
        width = shutil.get_terminal_size((100, 24)).columns
        data = render_table(page.records, kf, vf, keys_only=keys_only, width=width).encode(
            "utf-8", errors="backslashreplace"
        )
    else:
        render = renderer(fmt, kf, vf, keys_only=keys_only)
        data = header(fmt.value, keys_only=keys_only) + render(page.records)
    if sys.stdout.isatty():
        data = terminal_safe(data)  # an escape sequence in the data must not drive the terminal
    # A closed stdout raises BrokenPipeError out of here: the root command ends that quietly
    # (exit 0, no "next:" line).
    write_all(sys.stdout.buffer, data)
    sys.stdout.buffer.flush()
    if page.cursor is not None:
        print(f"next: {_next_command(page.cursor)}", file=sys.stderr)
    elif not quiet:
        n = len(page.records)
        print(f"({n} record{'s' if n != 1 else ''}; end of range)", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
