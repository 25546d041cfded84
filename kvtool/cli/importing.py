"""`kvtool import`: JSON Lines records from a file or stdin, or a Parquet file or dataset
directory, into a database."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import zlib
from collections.abc import Iterator
from io import BufferedReader
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, cast

import typer

from kvtool.cli.completion import column_families
from kvtool.cli.options import MAX_COUNT, DbPath, Force, Quiet, WaitLock
from kvtool.cli.report import StatsFileOption, StatsFormat, StatsOption
from kvtool.formats.records import FieldFormat, KeyFormat
from kvtool.ops.choices import ImportMode, OnError

if TYPE_CHECKING:
    from kvtool.ops.importer import ImportOptions, ImportStats


def import_(
    db: DbPath,
    file: Annotated[
        str,
        typer.Argument(
            help="JSON Lines file to read (gzip-compressed too); - (the default) reads stdin. A "
            "Parquet file or a directory of Parquet files (a dataset export --format parquet "
            "wrote) is read as Parquet.",
            metavar="FILE|DIR",
        ),
    ] = "-",
    key_format: Annotated[
        KeyFormat,
        typer.Option(
            "--key-format",
            help='How keys are written: auto (a string, or {"base64": ...} for binary), utf8, '
            "hex, base64.",
            case_sensitive=False,
        ),
    ] = KeyFormat.AUTO,
    value_format: Annotated[
        FieldFormat,
        typer.Option(
            "--value-format",
            help="How values are written: auto, utf8, hex (0x prefix allowed), base64, or json "
            '(export\'s: {"text": ...} and {"base64": ...} are unwrapped, any other JSON value is '
            "stored as its compact serialisation).",
            case_sensitive=False,
        ),
    ] = FieldFormat.AUTO,
    cf: Annotated[
        str | None,
        typer.Option(
            "--cf",
            help="Column family to import into (default: default). A Parquet dataset with a cf "
            "column (an export of several column families) puts each row into the one it "
            "names, unless --cf is given.",
            metavar="NAME",
            autocompletion=column_families,
        ),
    ] = None,
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="Create the database (table format_version 5, CRC32c checksums: RocksDB 6.14 "
            "and ldb 7.8 open it) or the column families it writes (--cf, or a Parquet "
            "dataset's cf column) if missing. A new database is removed again if the import "
            "fails before its first commit. It goes into a new or empty directory only: one of "
            "other files is exit 2, one with a database's files but no CURRENT (what kvtool "
            "repair recovers; RocksDB would delete them) exit 74.",
        ),
    ] = False,
    mode: Annotated[
        ImportMode,
        typer.Option(
            "--mode",
            help="How to write: batch commits batches as lines are read; sst sorts into SST "
            "files and ingests them at the end (the fast path for bulk loads; all or nothing).",
            case_sensitive=False,
        ),
    ] = ImportMode.BATCH,
    on_error: Annotated[
        OnError,
        typer.Option(
            "--on-error",
            help="What a bad line does: stop exits 65 at the first one; skip counts and reports "
            "bad lines and goes on.",
            case_sensitive=False,
        ),
    ] = OnError.STOP,
    batch_records: Annotated[
        int,
        typer.Option(
            "--batch-records",
            help="Records per write batch (batch mode).",
            min=1,
            max=MAX_COUNT,
            metavar="N",
        ),
    ] = 10_000,
    batch_bytes: Annotated[
        str,
        typer.Option(
            "--batch-bytes", help="Key+value bytes per write batch (batch mode).", metavar="SIZE"
        ),
    ] = "16MiB",
    sort_memory: Annotated[
        str,
        typer.Option(
            "--sort-memory",
            help="Memory for sorting (sst mode); beyond it sorted runs go to temp files.",
            metavar="SIZE",
        ),
    ] = "512MB",
    tmp_dir: Annotated[
        Path | None,
        typer.Option(
            "--tmp-dir",
            help="Where sst mode writes sorted runs and SST files (default: next to DB).",
            metavar="DIR",
        ),
    ] = None,
    wait_lock: WaitLock = "0s",
    force: Force = False,
    stats: StatsOption = StatsFormat.TEXT,
    stats_file: StatsFileOption = None,
    quiet: Quiet = False,
) -> None:
    """Load JSON Lines or Parquet records (what export writes) into a database.

    Reads FILE (or stdin; gzip-compressed input is recognised by its first bytes and
    decompressed, whatever its name) one line at a time and writes
    bounded batches (--batch-records, --batch-bytes), so memory stays flat on any input size. Takes
    the database's LOCK (exit 75 if another process holds it) and writes with the database's own
    options (see --force). A key given on several lines keeps the value of its last line, in both
    modes. Blank lines are ignored, and fields other than "key" and "value" too. A record
    {"key": K, "columns": [{"name": N, "value": V}, ...]} (what export writes for a wide-column
    entity; names spelled in the key format) is written as that entity, every column; --mode sst
    refuses it (exit 69: rocksdict's SST writer has no entities). Reading from a terminal, it
    says so on stderr (Ctrl-D ends the input). An empty input imports nothing (exit 0), but
    --create from an empty input exits 65 and creates nothing (no database, no column family):
    an empty input is usually a producer that failed. Likewise, an import --create that fails
    before its first commit (a bad first line, a Parquet file of the wrong shape, a signal,
    --mode sst stopped before its ingest) removes the database it created and the directories
    it made for it (an existing empty directory is kept, emptied), and says so: a leftover
    empty database would look like a finished import. A database that existed, or one a batch
    or ingest reached, is kept, and the error says how many records it holds.

    A bad line (not JSON, not an object, a missing field, a bad encoding, a truncated last
    line) exits 65 with "line N: reason". With --on-error stop (the default) every complete
    batch before it is committed and nothing after: the message says how many records were
    committed and the line to resume from. --mode sst commits nothing unless the whole input is
    good. --on-error skip imports the good lines, counts the bad ones and names the first few
    in the stats.

    --mode sst sorts in --sort-memory (beyond it, sorted runs go to temp files in --tmp-dir and
    are merged), writes SST files with the database's own options (so they keep its
    format_version) and ingests them in one step. Its work directory (kvtool-import-PID@HOST.*)
    is removed however the run ends; one that a killed run left is removed by the next --mode
    sst run in the same place once no process PID runs on that host.

    A Parquet FILE (known by its first bytes), or a DIR of them (a dataset from export --format
    parquet, read in its manifest's order; else every *.parquet under it by path), needs pip
    install 'kvtool[parquet]'. A dataset whose export did not complete (no _SUCCESS: stopped,
    killed, or copied in part) is refused (exit 65): it lacks the records after its cursor. Any
    Parquet file with a key column and a value column, binary or string (dictionary-encoded
    too), is read byte-exact: binary cells are the bytes, string cells are read in
    --key-format/--value-format (auto and utf8: their UTF-8 bytes; a dataset exported with
    hex or base64 is read in those, as its manifest (or a part file alone) says, and other
    formats are refused, exit 2). A row with a null value and a columns list
    (list<struct<name, value>>) is that wide-column entity (a row with both is bad). Rows are
    numbered from 1 across the files, and stand for lines in errors and stats. A cf column (an
    export of several column families) puts each row into the column family it names, one pass
    each (--mode sst ingests each one's when its pass ends); column families the database lacks
    are refused (exit 2) before anything is written, or created with --create; --cf NAME puts
    every row into NAME instead. A DIR with cf=NAME/ directories (a hive partition) and no cf
    column is refused (exit 65): import each one with --cf NAME.

    Ctrl-C, SIGTERM or SIGHUP stops either mode the same way as a bad line (exit 130, 143 or
    129): a signal never falls inside a commit, and the message says exactly what the database
    holds and gives the command that resumes the rest, with the options that matter (--cf, the
    formats; zcat for a .gz FILE). A progress bar shows on stderr when reading a FILE on a
    terminal.

    Examples:

        kvtool export src.db | kvtool import --create copy.db

        kvtool import --mode sst --create big.db records.jsonl

        tail -n +20001 records.jsonl | kvtool import db -

        kvtool import --key-format hex --on-error skip db dump.jsonl

        kvtool import --mode sst --create copy.db dataset-dir/
    """
    from kvtool.cli.report import record_stats, stats_file_apart
    from kvtool.formats.units import parse_duration, parse_size
    from kvtool.ops.importer import ImportOptions, import_records

    if file != "-":
        stats_file_apart(stats_file, Path(file), what="the input", tree=Path(file).is_dir())
    options = ImportOptions(
        key_format=FieldFormat(key_format.value),
        value_format=value_format,
        mode=mode,
        on_error=on_error,
        batch_records=batch_records,
        batch_bytes=parse_size(batch_bytes, option="--batch-bytes"),
        sort_memory=parse_size(sort_memory, option="--sort-memory"),
        tmp_dir=tmp_dir,
        cf=cf if cf is not None else "default",
        cf_column=cf is None,
        create=create,
        wait_lock=parse_duration(wait_lock, option="--wait-lock", zero_ok=True),
        force=force,
        source_name=file,
        db_name=str(db),
    )
    if file != "-" and _is_parquet(Path(file)):
        from kvtool.ops.importer import import_parquet

        result = import_parquet(db, Path(file), options)
    elif file == "-":
        if sys.stdin.isatty() and not quiet:
            # Else a user who forgot the FILE argument sees a command that seems to hang.
            print("kvtool: reading records from the terminal; Ctrl-D ends", file=sys.stderr)
        with _decompressed(sys.stdin.buffer) as (src, empty):
            if empty:
                _refuse_empty_create(db, options)
            options = dataclasses.replace(options, source_gzip=src is not sys.stdin.buffer)
            result = import_records(db, src, options)
    else:
        result = _import_file(db, Path(file), options, quiet=quiet)
    record_stats("import", result.as_dict())


def _is_parquet(path: Path) -> bool:
    """A directory (a dataset) or a file starting with Parquet's magic bytes, whatever its name."""
    from kvtool.formats.parquet_read import is_parquet_file

    return path.is_dir() or is_parquet_file(path)


def _import_file(db: Path, path: Path, options: ImportOptions, *, quiet: bool) -> ImportStats:
    from kvtool.errors import UsageError
    from kvtool.ops.importer import import_records

    try:
        raw = path.open("rb", buffering=1 << 20)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    with raw, _decompressed(raw) as (src, empty):
        compressed = src is not raw
        options = dataclasses.replace(options, source_gzip=compressed)
        if empty:
            _refuse_empty_create(db, options)
        if quiet or not sys.stderr.isatty():
            return import_records(db, src, options)
        from tqdm import tqdm  # type: ignore[import-untyped]

        # The bar counts uncompressed bytes, so a .gz file's size is no total for it.
        total = path.stat().st_size if path.is_file() and not compressed else None
        with tqdm(
            total=total, unit="B", unit_scale=True, desc="import", file=sys.stderr, leave=False
        ) as bar:
            return import_records(db, src, options, progress=bar.update)


_GZIP_MAGIC = b"\x1f\x8b"


@contextlib.contextmanager
def _decompressed(stream: IO[bytes]) -> Iterator[tuple[BufferedReader[Any], bool]]:
    """`stream`, or its decompressed content when it starts with gzip's magic bytes (a pipe has
    no name to tell by, and gzip data must not be read as JSON Lines), and whether it is empty.
    Emptiness is learnt from the one look at the first bytes: on a terminal, a read after
    Ctrl-D waits for more input, so the input is not read again to ask."""
    raw: BufferedReader[Any] = (
        stream if isinstance(stream, BufferedReader) else BufferedReader(stream)
    )
    head = raw.peek(len(_GZIP_MAGIC))
    if head[: len(_GZIP_MAGIC)] != _GZIP_MAGIC:
        yield raw, not head
        return
    import gzip

    with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
        # GzipFile.peek decompresses one small chunk; input damaged that early has nothing to
        # commit, so it is the same "cannot read the input" as a damaged line later.
        try:
            empty = not unzipped.peek(1)
        except (OSError, EOFError, zlib.error) as exc:
            from kvtool.errors import BadInputError

            raise BadInputError(f"cannot read the input ({exc})") from None
        yield cast("BufferedReader[Any]", unzipped), empty


def _refuse_empty_create(db: Path, options: ImportOptions) -> None:
    """--create from an empty input (an immediate Ctrl-D, a producer that failed) would create
    an empty database or column family and exit 0: exit 65 instead, creating nothing. An empty
    input into what exists is a successful import of nothing."""
    if not options.create:
        return
    from kvtool.engine.options_file import read_options_file
    from kvtool.errors import BadInputError

    try:
        parsed = read_options_file(db) if db.is_dir() else None
    except (OSError, ValueError):
        parsed = None
    if parsed is not None and options.cf in parsed.cf_options:
        return
    what = "database" if parsed is None else f"column family {options.cf!r}"
    raise BadInputError(f"the input is empty: no {what} was created")


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
