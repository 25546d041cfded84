"""Import: JSON Lines records (what `export` writes) into a database, in bounded write batches or
as sorted SST files ingested at once.

Batch mode parses and validates a whole batch before writing it, so a bad line stops the run with
every earlier complete batch committed and nothing after it: the error names the records
committed and the line to resume from. SST mode sorts the input (in memory, or in sorted runs on
disk merged with `heapq.merge` when it exceeds the memory budget), writes SST files with the
database's own options and ingests them in one step: it commits all or nothing.

Within one import, a key that appears on several lines keeps the value of its last line, in both
modes (batch mode writes the lines in order; SST mode sorts stably and keeps the last).

Stop signals (SIGINT, SIGTERM, SIGHUP, or KeyboardInterrupt from a library caller) stop either
mode like a bad line does. They never land inside a commit: a signal that arrives while a batch
is written and counted (or while SST files are ingested) takes effect right after it, so the
message names exactly what the database holds. SST mode works in a directory named
`kvtool-import-PID@HOST.*`; it is removed on every exit that runs code, and a later SST import
removes the ones whose process (on this host) is gone, as a SIGKILL leaves them.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import marshal
import operator
import shlex
import shutil
import signal
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from kvtool.engine import DEFAULT_CF, Database, Entity, OpenMode, key_order, open_db
from kvtool.engine.workdirs import make_owned_dir, remove_stale_dirs
from kvtool.errors import (
    BadInputError,
    Interrupted,
    KvtoolError,
    StoppedError,
    UnavailableError,
    UsageError,
)
from kvtool.formats.records import FieldFormat, decode_field
from kvtool.ops.choices import ImportMode, OnError  # re-exported: callers name them here
from kvtool.stream import SignalGuard

# How many skipped line numbers the stats name; the count covers them all.
SKIPPED_LINES_SHOWN = 10
# Python's cost of holding one (key, value) record in a sort run, beyond the bytes themselves.
_RECORD_OVERHEAD = 160
# SST mode starts a new file past this size: ingesting a few files is as cheap as one.
SST_FILE_BYTES = 256 * 2**20


@dataclass
class ImportStats:
    """What an import did; `skipped_lines` holds the first SKIPPED_LINES_SHOWN numbers."""

    mode: str
    records: int = 0  # input records committed (a key repeated in the input counts each time)
    key_bytes: int = 0
    value_bytes: int = 0
    lines: int = 0  # input lines read
    batches: int = 0  # write batches (batch mode) or SST files (sst mode)
    skipped: int = 0
    skipped_lines: list[int] = field(default_factory=list)
    first_error: str | None = None
    sorted_runs: int = 0  # sst mode: runs spilled to disk by the external sort
    elapsed: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        rate = self.records / self.elapsed if self.elapsed > 0 else 0.0
        mb = (self.key_bytes + self.value_bytes) / 1e6 / self.elapsed if self.elapsed > 0 else 0.0
        out: dict[str, Any] = {
            "mode": self.mode,
            "records": self.records,
            "key_bytes": self.key_bytes,
            "value_bytes": self.value_bytes,
            "lines": self.lines,
            "batches" if self.mode == ImportMode.BATCH.value else "sst_files": self.batches,
            "skipped_lines": self.skipped,
        }
        if self.skipped:
            shown = ", ".join(map(str, self.skipped_lines))
            more = ", ..." if self.skipped > len(self.skipped_lines) else ""
            out["skipped_at"] = shown + more
            out["first_error"] = self.first_error
        if self.mode == ImportMode.SST.value:
            out["sorted_runs"] = self.sorted_runs
        out["elapsed_s"] = round(self.elapsed, 3)
        out["records_per_s"] = round(rate, 1)
        out["mb_per_s"] = round(mb, 2)
        return out


@dataclass(frozen=True)
class ImportOptions:
    key_format: FieldFormat = FieldFormat.AUTO
    value_format: FieldFormat = FieldFormat.AUTO
    mode: ImportMode = ImportMode.BATCH
    on_error: OnError = OnError.STOP
    batch_records: int = 10_000
    batch_bytes: int = 16 * 2**20
    sort_memory: int = 512 * 10**6
    tmp_dir: Path | None = None
    cf: str = DEFAULT_CF
    create: bool = False
    wait_lock: float = 0.0
    force: bool = False
    # Names for the resume hint in messages, as the user gave them (quoted here): the input
    # file ("-" for stdin) and the database.
    source_name: str | None = None
    db_name: str | None = None


class _LineError(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def _as_interrupted(exc: BaseException) -> Interrupted:
    return exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)


Progress = Callable[[int], None]

# What reading a damaged input raises: OSError (including gzip.BadGzipFile), EOFError (a
# truncated .gz), zlib.error (a corrupt deflate stream).
_READ_ERRORS = (OSError, EOFError, zlib.error)


class _Unreadable(Exception):
    """The input cannot be read any further (a damaged .gz, an I/O error)."""


def _readable(lines: Iterable[bytes]) -> Iterator[bytes]:
    """`lines`, with what reading a damaged input raises turned into `_Unreadable`."""
    try:
        yield from lines
    except _READ_ERRORS as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _Unreadable(f"cannot read the input ({reason or type(exc).__name__})") from None


def _fast_path(fmt: FieldFormat) -> Callable[[str], bytes] | None:
    """The C-level decoder for a field that is a plain string in `fmt`, if there is one.

    It may raise ValueError for bad text; the general `decode_field` then says why.
    """
    if fmt in (FieldFormat.AUTO, FieldFormat.UTF8):
        return str.encode  # orjson never yields lone surrogates: always valid UTF-8
    if fmt is FieldFormat.HEX:
        return bytes.fromhex
    return None


def _slow(field: Any, fmt: FieldFormat, what: str = "key") -> bytes:
    return decode_field(field, fmt, what=what)


def _entity(record: dict[str, Any], key_fmt: FieldFormat, value_fmt: FieldFormat) -> Entity:
    """The wide-column entity of a record `{"key": K, "columns": [{"name": N, "value": V}, ...]}`:
    names are spelled in the key format, values in the value format (export's shape)."""
    if "value" in record:
        raise BadInputError('a record has "value" or "columns", not both')
    columns = record["columns"]
    if type(columns) is not list:
        raise BadInputError(f'"columns" must be a list, not {type(columns).__name__}')
    cells: dict[bytes, bytes] = {}
    for column in columns:
        if type(column) is not dict or set(column) != {"name", "value"}:
            raise BadInputError(
                'each of "columns" must be an object {"name": ..., "value": ...}, '
                f"not {column!r:.60}"
            )
        name = decode_field(column["name"], key_fmt, what="column name")
        if name in cells:
            raise BadInputError(f"column name {name!r:.60} appears twice")
        cells[name] = decode_field(column["value"], value_fmt, what="column value")
    return Entity(tuple(sorted(cells.items())))


def parse_records(
    lines: Iterable[bytes],
    options: ImportOptions,
    stats: ImportStats,
    progress: Progress | None = None,
) -> Iterator[tuple[int, bytes, bytes | Entity]]:
    """(line number, key, value) for each record line; blank lines are ignored. The value of a
    wide-column entity's record (`"columns"`) is its `Entity`.

    A bad line raises `_LineError` with `--on-error stop`; with skip it is counted in `stats`.
    """
    if options.key_format is FieldFormat.JSON:
        raise UsageError("--key-format json is not supported: keys must be byte-exact")
    key_fmt, value_fmt = options.key_format, options.value_format
    fast_key, fast_value = _fast_path(key_fmt), _fast_path(value_fmt)
    loads = orjson.loads
    skip = options.on_error is OnError.SKIP
    number = 0
    pending_progress = 0
    try:
        for raw in _readable(lines):
            number += 1
            pending_progress += len(raw)
            if progress is not None and pending_progress >= 1 << 20:
                progress(pending_progress)
                pending_progress = 0
            try:
                try:
                    record = loads(raw)
                except orjson.JSONDecodeError as exc:
                    if not raw.strip():
                        continue
                    why = f"{exc.msg} at column {exc.colno}"
                    if not raw.endswith(b"\n"):
                        raise _LineError(
                            number,
                            "truncated record: the input ends in the middle of a line "
                            f"without a newline ({why})",
                        ) from None
                    raise _LineError(number, f"not valid JSON ({why})") from None
                if type(record) is not dict:
                    raise _LineError(
                        number,
                        'a record must be a JSON object {"key": ..., "value": ...}, '
                        f"not {type(record).__name__}",
                    )
                try:
                    key = record["key"]
                    try:
                        key = (
                            fast_key(key) if fast_key and type(key) is str else _slow(key, key_fmt)
                        )
                    except ValueError:
                        key = _slow(key, key_fmt)
                    value: bytes | Entity
                    if "columns" in record:
                        value = _entity(record, key_fmt, value_fmt)
                    else:
                        field = record["value"]
                        try:
                            value = (
                                fast_value(field)
                                if fast_value and type(field) is str
                                else _slow(field, value_fmt, "value")
                            )
                        except ValueError:
                            value = _slow(field, value_fmt, "value")
                except KeyError as exc:
                    raise _LineError(number, f'the record has no "{exc.args[0]}" field') from None
                except BadInputError as exc:
                    raise _LineError(number, exc.message) from None
            except _LineError as exc:
                if not skip:
                    raise
                stats.skipped += 1
                if len(stats.skipped_lines) < SKIPPED_LINES_SHOWN:
                    stats.skipped_lines.append(number)
                if stats.first_error is None:
                    stats.first_error = f"line {number}: {exc.reason}"
                continue
            yield number, key, value
    except _Unreadable as exc:
        raise _LineError(number + 1, str(exc)) from None
    stats.lines = number
    if progress is not None and pending_progress:
        progress(pending_progress)


def import_records(
    path: Path,
    stream: IO[bytes],
    options: ImportOptions = ImportOptions(),  # frozen: sharing the default is safe
    *,
    progress: Progress | None = None,
) -> ImportStats:
    """Import the JSON Lines of `stream` into the database at `path`; returns what was done.

    Raises BadInputError (exit 65) for the first bad line under `--on-error stop`, naming what
    was committed and where to resume; StoppedError for SIGINT/SIGTERM, likewise.
    """
    if options.key_format is FieldFormat.JSON:
        raise UsageError("--key-format json is not supported: keys must be byte-exact")
    if options.batch_records < 1 or options.batch_bytes < 1:
        raise UsageError("--batch-records and --batch-bytes must be at least 1")
    if options.mode is ImportMode.SST and options.sort_memory < 1:
        raise UsageError("--sort-memory must be at least 1 byte")
    if options.mode is ImportMode.SST:
        _require_bytewise(Path(path), options.cf)
    stats = ImportStats(mode=options.mode.value)
    started = time.monotonic()
    with (
        SignalGuard() as guard,
        open_db(
            path,
            OpenMode.READ_WRITE,
            create=options.create,
            wait_lock=options.wait_lock,
            force=options.force,
        ) as db,
    ):
        if options.cf not in db.column_families:
            if not options.create:
                raise UsageError(
                    f"no column family {options.cf!r}",
                    hint=f"this database has: {', '.join(db.column_families)}; --create creates it",
                )
            db.create_column_family(options.cf)
        records = parse_records(stream, options, stats, progress)
        try:
            if options.mode is ImportMode.SST:
                _import_sst(db, records, options, stats, guard)
            else:
                _import_batches(db, records, options, stats, guard)
        finally:
            stats.elapsed = time.monotonic() - started
    return stats


def resume_command(resume_line: int, options: ImportOptions) -> str:
    """The shell command that imports the input from `resume_line` on, with every option that
    decides what is written where (a resume without --cf or the formats writes other bytes)."""
    source = options.source_name if options.source_name not in (None, "-") else None
    shown = shlex.quote(source) if source is not None else "FILE"
    if source is not None and source.endswith(".gz"):
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


def _resume_hint(stats: ImportStats, resume_line: int, options: ImportOptions) -> str:
    if stats.mode == ImportMode.SST.value:
        return "--mode sst ingests only after the whole input is read, so nothing was imported"
    if resume_line <= 1:
        return "fix the input and run the import again"
    return f"resume from line {resume_line}: {resume_command(resume_line, options)}"


def _committed(stats: ImportStats, last_line: int) -> str:
    if stats.records == 0:
        return "nothing was committed"
    return (
        f"committed {stats.records} records from lines 1-{last_line}, "
        f"nothing after line {last_line}"
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
        except _LineError as exc:
            _drop(batch, count)  # records of the unfinished batch are never written
            raise BadInputError(
                f"{exc.reason}; {_committed(stats, committed_line)}",
                line=exc.line,
                hint=_resume_hint(stats, committed_line + 1, options),
            ) from None
        except KvtoolError as exc:
            # A failed write (I/O error, full disk): say what is safely in the database.
            exc.message += f"; {_committed(stats, committed_line)}"
            raise
        except (Interrupted, KeyboardInterrupt) as exc:
            stop = _as_interrupted(exc)
            _drop(batch, count)
            raise StoppedError(
                f"{stop.reason}; {_committed(stats, committed_line)} "
                f"({_resume_hint(stats, committed_line + 1, options)})",
                exit_code=stop.exit_code,
            ) from None


def _drop(batch: Any, count: int) -> None:
    """Forget the records of an unfinished batch (a written batch is consumed: nothing to do)."""
    if count:
        with contextlib.suppress(Exception):
            batch.clear()


# -- SST mode ---------------------------------------------------------------------------------
# A sort run on disk: marshal'd lists of (key, value) tuples, written and read a slice at a
# time in C (the files are ours and temporary; marshal is not for data from elsewhere). The
# merge holds one slice per run, and merges at most _MERGE_FANIN runs at once (more runs are
# merged in passes first), so its memory is bounded whatever the input size.
_RUN_SLICE_BYTES = 256 * 1024
_MERGE_FANIN = 64


def _write_run(path: Path, run: Iterable[tuple[bytes, bytes]]) -> None:
    with path.open("wb", buffering=1 << 16) as out:
        dump = marshal.dump
        chunk: list[tuple[bytes, bytes]] = []
        append = chunk.append
        size = 0
        for record in run:
            append(record)
            size += len(record[0]) + len(record[1]) + 64
            if size >= _RUN_SLICE_BYTES:
                dump(chunk, out)
                chunk.clear()
                size = 0
        if chunk:
            dump(chunk, out)


def _read_run(path: Path) -> Iterator[tuple[bytes, bytes]]:
    with path.open("rb", buffering=1 << 16) as src:
        while True:
            try:
                records: list[tuple[bytes, bytes]] = marshal.load(src)
            except EOFError:
                return
            yield from records


def _merge_passes(runs: list[Path], work: Path) -> list[Path]:
    """Merge runs in groups of _MERGE_FANIN until at most that many are left. Groups are
    consecutive and merged stably, so equal keys keep their input order."""
    level = 0
    while len(runs) > _MERGE_FANIN:
        merged: list[Path] = []
        for start in range(0, len(runs), _MERGE_FANIN):
            group = runs[start : start + _MERGE_FANIN]
            out = work / f"merge-{level:02d}-{len(merged):05d}"
            _write_run(out, heapq.merge(*(_read_run(p) for p in group), key=_first))
            for path in group:
                path.unlink()
            merged.append(out)
        runs, level = merged, level + 1
    return runs


def _require_bytewise(path: Path, cf: str) -> None:
    """SST mode sorts bytewise (the external sort and its merge): refuse another key order
    before the database is opened, so nothing is written. A column family the import creates
    takes the default column family's options, comparator included."""
    order = key_order(path, cf if cf in _column_families(path) else DEFAULT_CF)
    # An order kvtool does not know is a comparator the open then checks (69 if unloadable).
    if order.known and order.kind != "bytewise":
        raise UnavailableError(
            f"import --mode sst sorts keys bytewise, but column family {cf!r} is ordered by "
            f"{order.name}",
            hint="import it with --mode batch (the default), which writes in any key order",
        )


def _column_families(path: Path) -> set[str]:
    from kvtool.engine.options_file import read_options_file

    try:
        parsed = read_options_file(path) if path.is_dir() else None
    except OSError:
        parsed = None
    return set(parsed.cf_options) if parsed is not None else set()


_first = operator.itemgetter(0)


def _last_of_each_key(
    ordered: Iterator[tuple[bytes, bytes]],
) -> Iterator[tuple[bytes, bytes]]:
    """Drop all but the last of equal keys: the input is stably sorted, so last means newest."""
    previous: tuple[bytes, bytes] | None = None
    for record in ordered:
        if previous is not None and previous[0] != record[0]:
            yield previous
        previous = record
    if previous is not None:
        yield previous


_WORK_PREFIX = "kvtool-import-"


def _work_dir(options: ImportOptions, db: Database) -> Path:
    """Sorted runs and SST files go next to the database, where ingesting can hard-link them
    (same filesystem), or to --tmp-dir; the system temp dir when the parent is not writable.

    The name carries this process's id and host (`kvtool-import-PID@HOST.XXXXXXXX`), so that a
    later run can tell a directory left by a killed run from one in use (`remove_stale_work_dirs`).
    """
    if options.tmp_dir is not None:
        places: list[Path | None] = [options.tmp_dir]
    else:
        places = [db.path.parent, None]
    for i, place in enumerate(places):
        try:
            return make_owned_dir(_WORK_PREFIX, place)
        except OSError:
            if i == len(places) - 1:
                raise
    raise AssertionError("unreachable")


def remove_stale_work_dirs(parent: Path) -> list[Path]:
    """Remove the SST-mode work directories in `parent` whose process is gone; returns them
    (`kvtool.engine.workdirs`: only `kvtool-import-PID@HOST.*` of this host, PID gone)."""
    return remove_stale_dirs(_WORK_PREFIX, parent)


def _import_sst(
    db: Database,
    records: Iterator[tuple[int, bytes, bytes | Entity]],
    options: ImportOptions,
    stats: ImportStats,
    guard: SignalGuard,
) -> None:
    cf = None if options.cf == DEFAULT_CF else options.cf
    work: Path | None = None
    try:
        with guard.hold():  # a signal here must not leave a directory nobody removes
            work = _work_dir(options, db)
    except OSError as exc:
        raise UsageError(f"cannot create a work directory for --mode sst: {exc}") from None
    except (Interrupted, KeyboardInterrupt) as exc:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        stop = _as_interrupted(exc)
        raise StoppedError(
            f"{stop.reason}; nothing was imported", exit_code=stop.exit_code
        ) from None
    ingested = False
    try:
        runs: list[Path] = []
        run: list[tuple[bytes, bytes]] = []
        append = run.append
        count = key_bytes = value_bytes = used = 0
        budget = options.sort_memory
        try:
            for line, key, value in records:
                if type(value) is not bytes:
                    # rocksdict's SstFileWriter has no put_entity: refuse before anything is
                    # written rather than drop the columns.
                    raise UnavailableError(
                        f'line {line}: a wide-column entity (a record with "columns") '
                        "cannot be written by --mode sst: rocksdict's SST writer has no "
                        "entities; nothing was imported",
                        hint="import it with --mode batch, the default",
                    )
                append((key, value))
                klen, vlen = len(key), len(value)
                key_bytes += klen
                value_bytes += vlen
                used += klen + vlen + _RECORD_OVERHEAD
                if used >= budget:
                    count += len(run)
                    run.sort(key=_first)  # stable: equal keys stay in input order
                    runs.append(work / f"run-{len(runs):05d}")
                    _write_run(runs[-1], run)
                    run, used = [], 0
                    append = run.append
        except _LineError as exc:
            raise BadInputError(
                f"{exc.reason}; nothing was committed",
                line=exc.line,
                hint=_resume_hint(stats, 1, options),
            ) from None
        count += len(run)
        run.sort(key=_first)
        stats.sorted_runs = len(runs)
        if runs:
            runs = _merge_passes(runs, work)
            # Runs hold earlier lines than `run`; heapq.merge keeps earlier iterables first on
            # ties, so the last of equal keys is still the newest line.
            ordered: Iterator[tuple[bytes, bytes]] = heapq.merge(
                *(_read_run(p) for p in runs), iter(run), key=_first
            )
        else:
            ordered = iter(run)
        # Files of about SST_FILE_BYTES each, cut by record count from the average record size.
        per_file = max(1, SST_FILE_BYTES * count // max(1, key_bytes + value_bytes))
        files = _write_sst_files(db, _last_of_each_key(ordered), work, cf, per_file)
        del run, ordered
        with guard.hold():  # all or nothing, and the message says which
            if files:
                # The files are ours and temporary: the database may take them (hard links).
                db.ingest(files, cf, move=True)
            ingested = True
            stats.records, stats.key_bytes, stats.value_bytes = count, key_bytes, value_bytes
            stats.batches = len(files)
    except (Interrupted, KeyboardInterrupt) as exc:
        stop = _as_interrupted(exc)
        if ingested:
            raise StoppedError(
                f"{stop.reason} after the ingest had finished: all {stats.records} records "
                f"from lines 1-{stats.lines} were imported (nothing to resume)",
                exit_code=stop.exit_code,
            ) from None
        raise StoppedError(
            f"{stop.reason}; nothing was imported (--mode sst ingests only at the end)",
            exit_code=stop.exit_code,
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_sst_files(
    db: Database,
    ordered: Iterator[tuple[bytes, bytes]],
    work: Path,
    cf: str | None,
    per_file: int,
) -> list[Path]:
    files: list[Path] = []
    while (first := next(ordered, None)) is not None:
        files.append(work / f"import-{len(files):05d}.sst")
        with db.sst_writer(files[-1], cf) as writer:
            writer.put_many(itertools.chain((first,), itertools.islice(ordered, per_file - 1)))
            writer.finish()
    return files
