"""Import: JSON Lines records (what `export` writes) into a database, in bounded write batches or
as sorted SST files ingested at once.

Batch mode parses and validates a whole batch before writing it, so a bad line stops the run with
every earlier complete batch committed and nothing after it: the error names the records
committed and the line to resume from. SST mode (kvtool.ops.import_sst) sorts the input, writes
SST files with the database's own options and ingests them in one step: it commits all or nothing.

Within one import, a key that appears on several lines keeps the value of its last line, in both
modes (batch mode writes the lines in order; SST mode sorts stably and keeps the last).

Stop signals (SIGINT, SIGTERM, SIGHUP, or KeyboardInterrupt from a library caller) stop either
mode like a bad line does. They never land inside a commit: a signal that arrives while a batch
is written and counted (or while SST files are ingested) takes effect right after it, so the
message names exactly what the database holds.

With --create, a run that fails before its first commit removes the database it created
(`_removed_on_failure`, kvtool.engine.discard): never one that existed or that a commit reached.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from kvtool.engine import DEFAULT_CF, Database, Entity, OpenMode, open_db
from kvtool.engine.discard import NewDatabase
from kvtool.errors import Interrupted, KvtoolError, StoppedError, UsageError
from kvtool.formats.records import FieldFormat
from kvtool.ops.choices import ImportMode, OnError  # re-exported: callers name them here
from kvtool.ops.import_common import (  # re-exported: callers name them here
    ImportOptions,
    ImportStats,
    LineError,
    Progress,
    as_interrupted,
    bad_input,
)
from kvtool.ops.import_jsonl import parse_records
from kvtool.ops.import_sst import import_sst, remove_stale_work_dirs, require_bytewise
from kvtool.stream import SignalGuard

__all__ = [
    "ImportMode",
    "ImportOptions",
    "ImportStats",
    "OnError",
    "import_parquet",
    "import_records",
    "remove_stale_work_dirs",
    "resume_command",
]


_DEFAULTS = ImportOptions()  # frozen: sharing the default is safe


def import_records(
    path: Path,
    stream: IO[bytes],
    options: ImportOptions = _DEFAULTS,
    *,
    progress: Progress | None = None,
) -> ImportStats:
    """Import the JSON Lines of `stream` into the database at `path`; returns what was done.

    Raises BadInputError (exit 65) for the first bad line under `--on-error stop`, naming what
    was committed and where to resume; StoppedError for SIGINT/SIGTERM, likewise.
    """
    return _import(
        path, options, lambda stats: parse_records(stream, options, stats, progress), unit="line"
    )


def import_parquet(path: Path, source: Path, options: ImportOptions = _DEFAULTS) -> ImportStats:
    """Import the Parquet file or dataset directory `source` (kvtool.ops.import_parquet) into
    the database at `path`, as `import_records` does JSON Lines; rows stand for lines."""
    from kvtool.formats.arrow import pyarrow
    from kvtool.ops.import_parquet import (
        column_families_of,
        parquet_files,
        parquet_records,
        with_dataset_formats,
    )
    from kvtool.stream.memory import map_huge_blocks, process_tuning_allowed

    # 69 without it, before the database is opened (or created); NumPy left out in kvtool's CLI
    pyarrow(numpy=not process_tuning_allowed())
    map_huge_blocks()  # huge values: see its note
    files = parquet_files(source)
    options = with_dataset_formats(source, options)
    cfs = column_families_of(files, source) if options.cf_column else None
    if not cfs:
        return _import(
            path, options, lambda stats: parquet_records(files, options, stats), unit="row"
        )
    # One pass a column family, in the order of their first rows (a kvtool dataset's order),
    # each reading the rows of its own (a part file of a kvtool dataset holds one).
    return _import(
        path,
        options,
        lambda stats, cf: parquet_records(files, options, stats, cf=cf, nulls=cf == cfs[0]),
        unit="row",
        cfs=cfs,
    )


def _import(
    path: Path,
    options: ImportOptions,
    source: Callable[..., Iterator[tuple[int, bytes, bytes | Entity]]],
    *,
    unit: str,
    cfs: list[str] | None = None,
) -> ImportStats:
    """Import `source(stats)` into options.cf; with `cfs`, `source(stats, cf)` into each of
    them in turn (every one must exist, or --create creates it, before any is written)."""
    if options.key_format is FieldFormat.JSON:
        raise UsageError("--key-format json is not supported: keys must be byte-exact")
    if options.batch_records < 1 or options.batch_bytes < 1:
        raise UsageError("--batch-records and --batch-bytes must be at least 1")
    if options.mode is ImportMode.SST and options.sort_memory < 1:
        raise UsageError("--sort-memory must be at least 1 byte")
    targets = cfs if cfs is not None else [options.cf]
    if options.mode is ImportMode.SST:
        for cf in targets:
            require_bytewise(Path(path), cf)
    stats = ImportStats(mode=options.mode.value, unit=unit)
    started = time.monotonic()
    with (
        SignalGuard() as guard,
        _removed_on_failure(Path(path), options, stats, guard),
        open_db(
            path,
            OpenMode.READ_WRITE,
            create=options.create,
            wait_lock=options.wait_lock,
            force=options.force,
        ) as db,
    ):
        missing = [cf for cf in targets if cf not in db.column_families]
        if missing and not options.create:
            raise UsageError(
                f"no column family {', '.join(map(repr, missing))}",
                hint=f"this database has: {', '.join(db.column_families)}; --create creates "
                + ("them" if len(missing) > 1 else "it")
                + ("; --cf NAME imports every row into NAME" if cfs is not None else ""),
            )
        for cf in missing:
            db.create_column_family(cf)
        try:
            for cf in targets:
                records = source(stats) if cfs is None else source(stats, cf)
                done = (stats.records, stats.key_bytes, stats.value_bytes)
                if options.mode is ImportMode.SST:
                    import_sst(db, records, dataclasses.replace(options, cf=cf), stats, guard)
                    # import_sst counts one run: add the column families before it.
                    stats.records += done[0]
                    stats.key_bytes += done[1]
                    stats.value_bytes += done[2]
                else:
                    _import_batches(db, records, dataclasses.replace(options, cf=cf), stats, guard)
        finally:
            stats.elapsed = time.monotonic() - started
    return stats


@contextlib.contextmanager
def _removed_on_failure(
    path: Path, options: ImportOptions, stats: ImportStats, guard: SignalGuard
) -> Iterator[None]:
    """With --create, a failure before the first commit removes the database this run created
    (a leftover empty database reads as a finished import to the next run or a cron job); the
    error says so. Entered before the open, so it runs once every handle is closed. A database
    that existed, or that holds any commit, is kept and the error says what it holds."""
    fresh = NewDatabase.before_create(path) if options.create else None
    try:
        yield
    except BaseException as exc:
        if fresh is None or stats.records:
            raise
        guard.begin_hold()  # a second signal must not leave the removal half done
        try:
            done = fresh.discard()
        finally:
            guard.end_hold()  # the run is failing already: its own error is the one to report
        shown = options.db_name or str(path)
        if done.removed and fresh.top is None:
            said = f"; the database this import created in {shown} was removed"
        elif done.removed:
            said = f"; the database this import created at {shown} was removed"
        elif done.kept_because is not None:
            said = f"; the new database {shown} was kept: {done.kept_because}"
        else:
            raise  # none was created
        if isinstance(exc, KvtoolError):
            exc.message += said
            raise
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            # A stop before the import began (while the database was opened or created).
            stop = as_interrupted(exc)
            raise StoppedError(
                f"{stop.reason}; nothing was imported{said}", exit_code=stop.exit_code
            ) from None
        raise


def resume_command(resume_line: int, options: ImportOptions) -> str:
    """The shell command that imports the input from `resume_line` on, with every option that
    decides what is written where (a resume without --cf or the formats writes other bytes)."""
    source = options.source_name if options.source_name not in (None, "-") else None
    shown = shlex.quote(source) if source is not None else "FILE"
    if options.source_gzip or (source is not None and source.endswith(".gz")):
        reader = f"zcat {shown} | tail -n +{resume_line}"
    else:
        reader = f"tail -n +{resume_line} {shown}"
    args = ["kvtool", "import"]
    if options.cf != DEFAULT_CF:
        args += ["--cf", options.cf]
    if options.key_format is not FieldFormat.AUTO:
        args += ["--key-format", options.key_format.value]
    if options.value_format is not FieldFormat.AUTO:
        args += ["--value-format", options.value_format.value]
    if options.on_error is not OnError.STOP:
        args += ["--on-error", options.on_error.value]
    if options.force:
        args.append("--force")
    args += [options.db_name or "DB", "-"]
    return f"{reader} | {' '.join(shlex.quote(a) for a in args)}"


def _resume_hint(
    stats: ImportStats, resume_line: int, options: ImportOptions, *, stopped: bool = False
) -> str:
    if stats.mode == ImportMode.SST.value:
        return "--mode sst ingests only after the whole input is read, so nothing was imported"
    # A stop (a signal) is no fault of the input: there is nothing to fix, only to run again.
    again = "run the same import again" if stopped else "fix the input and run the import again"
    if resume_line <= 1:
        return again
    if stats.unit == "row":
        # A Parquet input has no lines for `tail`; importing it again rewrites the committed
        # rows with the same bytes.
        return f"{again} (the committed rows are rewritten as is)"
    return f"resume from line {resume_line}: {resume_command(resume_line, options)}"


def _committed(stats: ImportStats, last_line: int) -> str:
    if stats.records == 0:
        return "nothing was committed"
    unit = stats.unit
    return (
        f"committed {stats.records} records from {unit}s 1-{last_line}, "
        f"nothing after {unit} {last_line}"
    )


def _import_batches(
    db: Database,
    records: Iterator[tuple[int, bytes, bytes | Entity]],
    options: ImportOptions,
    stats: ImportStats,
    guard: SignalGuard,
) -> None:
    cf = None if options.cf == DEFAULT_CF else options.cf
    limit_records, limit_bytes = options.batch_records, options.batch_bytes
    committed_line = 0  # the last input line whose record is written
    with db.write_batch() as batch:
        put, put_entity = batch.put, batch.put_entity
        count = size = key_bytes = value_bytes = 0
        line = 0
        try:
            for line, key, value in records:
                if type(value) is bytes:
                    put(key, value, cf)
                else:
                    put_entity(key, value, cf)
                count += 1
                key_bytes += len(key)
                value_bytes += len(value)
                size = key_bytes + value_bytes
                if count >= limit_records or size >= limit_bytes:
                    with guard.hold():
                        db.write(batch)  # consumes the batch: a new one is empty
                        stats.records += count
                        stats.key_bytes += key_bytes
                        stats.value_bytes += value_bytes
                        stats.batches += 1
                        committed_line = line
                        count = size = key_bytes = value_bytes = 0
                        batch.clear()
            # The whole input is read and valid: the last partial batch is complete.
            with guard.hold():
                if count:
                    db.write(batch)
                    stats.records += count
                    stats.key_bytes += key_bytes
                    stats.value_bytes += value_bytes
                    stats.batches += 1
                    committed_line = line
                    count = 0
                    batch.clear()
                db.flush(cf)
        except LineError as exc:
            _drop(batch, count)  # records of the unfinished batch are never written
            raise bad_input(
                stats,
                exc,
                f"{exc.reason}; {_committed(stats, committed_line)}",
                _resume_hint(stats, committed_line + 1, options),
            ) from None
        except KvtoolError as exc:
            # A failed write (I/O error, full disk): say what is safely in the database, and,
            # once the cause is fixed, how to import the rest.
            exc.message += f"; {_committed(stats, committed_line)}"
            if exc.hint is None:
                exc.hint = _resume_hint(stats, committed_line + 1, options, stopped=True)
            raise
        except (Interrupted, KeyboardInterrupt) as exc:
            stop = as_interrupted(exc)
            _drop(batch, count)
            raise StoppedError(
                f"{stop.reason}; {_committed(stats, committed_line)} "
                f"({_resume_hint(stats, committed_line + 1, options, stopped=True)})",
                exit_code=stop.exit_code,
            ) from None


def _drop(batch: Any, count: int) -> None:
    """Forget the records of an unfinished batch (a written batch is consumed: nothing to do)."""
    if count:
        with contextlib.suppress(Exception):
            batch.clear()
