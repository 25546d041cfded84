"""Import's SST mode: sort the records (in memory, or in sorted runs on disk merged with
`heapq.merge` when they exceed the memory budget), write SST files with the database's own options
and ingest them in one step, all or nothing.

It works in a directory named `kvtool-import-PID@HOST.*`; it is removed on every exit that runs
code, and a later SST import removes the ones whose process (on this host) is gone, as a SIGKILL
leaves them.
"""

from __future__ import annotations

import heapq
import itertools
import marshal
import operator
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from kvtool.engine import DEFAULT_CF, Database, Entity, key_order
from kvtool.engine.workdirs import make_owned_dir, remove_stale_dirs
from kvtool.errors import (
    Interrupted,
    StoppedError,
    UnavailableError,
    UsageError,
)
from kvtool.ops.import_common import (
    ImportOptions,
    ImportStats,
    LineError,
    as_interrupted,
    bad_input,
)
from kvtool.stream import SignalGuard

# Python's cost of holding one (key, value) record in a sort run, beyond the bytes themselves.
_RECORD_OVERHEAD = 160
# SST mode starts a new file past this size: ingesting a few files is as cheap as one.
SST_FILE_BYTES = 256 * 2**20

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


def require_bytewise(path: Path, cf: str) -> None:
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


def _nothing(stats: ImportStats, options: ImportOptions, done: str = "imported") -> str:
    """What a failed pass leaves: nothing, or, in a pass after the first (one column family of a
    Parquet input's `cf` column each, importer._import), the records the earlier passes already
    ingested, which `stats.records` holds until this pass ends."""
    if stats.records == 0:
        return f"nothing was {done}"
    return (
        f"nothing of column family {options.cf!r} was {done}, but the {stats.records} records "
        "of the column families before it were ingested"
    )


def import_sst(
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
        stop = as_interrupted(exc)
        raise StoppedError(
            f"{stop.reason}; {_nothing(stats, options)}", exit_code=stop.exit_code
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
                        f'{stats.unit} {line}: a wide-column entity (a record with "columns") '
                        "cannot be written by --mode sst: rocksdict's SST writer has no "
                        f"entities; {_nothing(stats, options)}",
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
        except LineError as exc:
            raise bad_input(
                stats,
                exc,
                f"{exc.reason}; {_nothing(stats, options, 'committed')}",
                "--mode sst ingests only after the whole input is read",
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
        stop = as_interrupted(exc)
        if ingested:
            raise StoppedError(
                f"{stop.reason} after the ingest had finished: all {stats.records} records "
                f"from lines 1-{stats.lines} were imported (nothing to resume)",
                exit_code=stop.exit_code,
            ) from None
        raise StoppedError(
            f"{stop.reason}; {_nothing(stats, options)} (--mode sst ingests only at the end)",
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
