"""`export --format parquet` of several column families (`--cf A --cf B`, `--all-cfs`): one
dataset directory whose part files carry a `cf` column, read through one database view.

One point in time: the column families are read one after the other, in the order given (or the
database's, for --all-cfs), by one process through one read-only handle, whose view is fixed
when it opens, so every column family is read at the same sequence number (the manifest's) even
while a writer is live. Range workers (--workers) would each open their own view; they serve a
one-CF export only.

Resume: a cursor names a key and (by its range fingerprint) its column family; the column
families before it in the order are complete, it continues after the key, and the ones after it
start from their beginning (kvtool.formats.dataset keeps the per-CF state in the manifest).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kvtool.engine import OpenMode, get_engine, open_db
from kvtool.errors import UsageError
from kvtool.formats.dataset import Dataset
from kvtool.formats.parquet import PartSchema
from kvtool.ops.export import Progress
from kvtool.ops.export_parquet import DatasetResult, _range, dataset_meta, write_stream
from kvtool.stream import ReadSpec, ScanStats, Stopper, StopRequested
from kvtool.stream.cursor import Cursor, read_token

ALL = "*"  # the column families argument that means every one the database has


def cf_specs(spec: ReadSpec, names: Sequence[str]) -> list[ReadSpec]:
    """`spec`'s range in each column family of `names` (its own cursor fingerprint each)."""
    return [
        dataclasses.replace(spec, krange=dataclasses.replace(spec.krange, cf=name), after=None)
        for name in names
    ]


def _resume_point(specs: list[ReadSpec], after: str | None) -> tuple[int, bytes | None]:
    """The index of the column family a cursor names and the key to continue after."""
    if after is None:
        return 0, None
    cursor = Cursor.decode(read_token(after))
    for index, spec in enumerate(specs):
        if cursor.fingerprint == spec.krange.fingerprint():
            return index, cursor.check(spec.krange)
    raise UsageError(
        "--after: the cursor belongs to another range or column family",
        hint="give the same --cf (or --all-cfs), --prefix, --start and --end as the run that "
        "printed it",
    )


def export_parquet_cfs(
    db_path: str | Path,
    spec: ReadSpec,
    names: Sequence[str],
    path: Path,
    schema: PartSchema,
    *,
    after: str | None,
    options: dict[str, Any],
    part_bytes: int,
    partition_by_prefix: int | None,
    progress: Progress | None,
) -> DatasetResult:
    """Write the column families `names` (or ALL) as one dataset in `path`: see the module."""
    if spec.limit is not None:
        raise UsageError("--limit applies to one column family: give one --cf")
    engine = get_engine()
    stats = ScanStats()
    stopper = Stopper(spec.timeout)
    stopped: StopRequested | None = None
    with stopper, open_db(db_path, OpenMode.READ_ONLY) as db:
        if list(names) == [ALL]:
            names = list(db.column_families)
        else:
            missing = [n for n in names if n not in db.column_families]
            if missing:
                raise UsageError(
                    f"no column family {', '.join(map(repr, missing))}",
                    hint=f"this database has: {', '.join(db.column_families)}",
                )
            if len(set(names)) != len(names):
                raise UsageError("--cf names a column family twice")
        specs = cf_specs(spec, names)
        first, after_key = _resume_point(specs, after)
        resume_from = specs[first].cursor_after(after_key)
        sequence = db.sequence_number()
        options = {**options, "range": {**_range(spec), "cf": list(names)}}
        dataset = Dataset(
            path,
            schema,
            options=options,
            meta=dataset_meta(Path(db_path), engine, sequence),
            resume_from=resume_from,
            cursor_after=specs[first].cursor_after,
            part_bytes=part_bytes,
            partition_by_prefix=partition_by_prefix,
            column_families=[{"name": s.krange.cf, "range": _range(s)} for s in specs],
        )
        if progress is not None:
            progress.start(None)
        try:
            for index in range(first, len(specs)):
                cf_spec = specs[index]
                if index == first and after_key is not None:
                    cf_spec = dataclasses.replace(cf_spec, after=after_key)
                dataset.begin_cf(cf_spec.krange.cf, cf_spec.cursor_after)
                stopped = write_stream(db, cf_spec, stats, stopper, dataset, progress)
                if stopped is not None:
                    break
            cursor = dataset.close_part() if stopped else None
            dataset.end(state="stopped" if stopped else "complete", cursor=cursor)
        except BaseException:
            dataset.abandon()
            raise
        finally:
            stats.finish()
            if progress is not None:
                progress.close()
    return DatasetResult(
        stats=stats.as_dict(
            output_bytes=dataset.bytes_written, parts=len(dataset.parts), cursor=cursor
        ),
        cursor=cursor,
        stopped=stopped,
        output=path,
        requested=path,
    )
