"""`export --format parquet`: a range as a Parquet dataset directory (kvtool.formats.dataset),
read by one iterator, stopped cleanly (deadline, signals) with complete part files and a cursor
that resumes into the same directory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvtool import __version__
from kvtool.engine import Database, OpenMode, get_engine, open_db
from kvtool.engine.ondisk import database_identity
from kvtool.errors import KvtoolError, StoppedError, UsageError
from kvtool.formats.arrow import pyarrow
from kvtool.formats.dataset import Dataset
from kvtool.formats.parquet import PartSchema, use_system_allocator
from kvtool.formats.parts import PART_BYTES
from kvtool.formats.records import FieldFormat
from kvtool.ops.export import ExportResult, Progress
from kvtool.stream import ReadSpec, ScanStats, Stopper, StopRequested, record_stream
from kvtool.stream.memory import collect_less, keep_freed_memory, process_tuning_allowed


@dataclass
class DatasetResult(ExportResult):
    """How a Parquet export ended: a stop says to resume into the same directory."""

    def raise_for_status(self) -> None:
        if self.stopped is None:
            return
        if self.cursor:
            resume = (
                f"; complete part files are in {self.output}; resume with --after "
                f"{self.cursor} -o {self.output} (it adds the missing parts)"
            )
        else:
            resume = "; nothing was written: run it again"
        raise StoppedError(
            f"{self.stopped.reason}{resume}",
            exit_code=self.stopped.exit_code,
            cursor=self.cursor,
        )


def _range(spec: ReadSpec) -> dict[str, Any]:
    krange = spec.krange
    return {
        "cf": krange.cf,
        "start": krange.lower.hex() if krange.lower is not None else None,
        "end": krange.upper.hex() if krange.upper is not None else None,
        "prefix": krange.prefix.hex() if krange.prefix is not None else None,
        "reverse": krange.reverse,
    }


def dataset_meta(db_path: Path, engine: Any, sequence: int | None) -> dict[str, Any]:
    """What a dataset's manifest says of its source: versions, the view's sequence number, and
    the database's IDENTITY, which a resume must match (another database's records after the
    cursor would join the dataset as if they were the rest)."""
    return {
        "kvtool": __version__,
        "engine": engine.describe(),
        "rocksdb": engine.versions().get("rocksdb"),
        "sequence": sequence,
        "database_identity": database_identity(db_path),
    }


def write_stream(
    db: Database,
    spec: ReadSpec,
    stats: ScanStats,
    stopper: Stopper,
    dataset: Dataset,
    progress: Progress | None,
) -> StopRequested | None:
    """Write `spec`'s records into `dataset` through one read; the stop that ended it, if any
    (the batches read before it are written)."""
    with record_stream(db, spec, stats, stopper) as batches:
        try:
            for batch in batches:
                dataset.write(batch)
                if progress is not None:
                    progress.update(len(batch))
        except StopRequested as exc:
            return exc
    return None


def export_parquet(
    db_path: str | Path,
    spec: ReadSpec,
    path: Path,
    *,
    key_format: FieldFormat | str = FieldFormat.AUTO,
    value_format: FieldFormat | str = FieldFormat.AUTO,
    partition_by_prefix: int | None = None,
    part_bytes: int = PART_BYTES,
    progress: Progress | None = None,
    workers: int | None = None,
    cfs: Sequence[str] | None = None,
    after: str | None = None,
) -> DatasetResult:
    """Write the records of `spec` as a Parquet dataset in the directory `path`.

    A new export needs a new or empty `path`. A stop (deadline, signal) closes the open part
    file and records the cursor in the manifest; the same command with `--after CURSOR` adds
    the rest as new part files. `_SUCCESS` is written last, when the range is complete.

    `workers` > 1 reads with that many forked range workers, each chunk of the range its own
    part files (kvtool.ops.export_parquet_parallel); None chooses as JSON Lines export does
    (kvtool.ops.range_plan.worker_count). A run with --limit or pacing is read by one process.
    """
    if partition_by_prefix is not None and partition_by_prefix < 1:
        raise UsageError("--partition-by-prefix must be at least 1 byte")
    if part_bytes < 1:
        raise UsageError("--part-size must be at least 1 byte")
    if cfs is not None and workers is not None and workers > 1:
        raise UsageError(
            "--workers: several column families are read by one process, through one view "
            "(one point in time for all of them)",
            hint="drop --workers, or export each column family on its own",
        )
    pyarrow(numpy=not process_tuning_allowed())  # 69 without it; NumPy left out in kvtool's CLI
    schema = PartSchema(
        key_format, value_format, keys_only=spec.keys_only, cf_column=cfs is not None
    )
    use_system_allocator()
    keep_freed_memory()
    collect_less()
    options = {
        "key_format": schema.key_format.value,
        "value_format": schema.value_format.value,
        "keys_only": spec.keys_only,
        "partition_by_prefix": partition_by_prefix,
        "range": _range(spec),
    }
    if cfs is not None:
        from kvtool.ops.export_parquet_cfs import export_parquet_cfs

        return export_parquet_cfs(
            db_path, spec, cfs, path, schema, after=after, options=options,
            part_bytes=part_bytes, partition_by_prefix=partition_by_prefix, progress=progress,
        )  # fmt: skip
    engine = get_engine()
    count = 1
    if spec.limit is None and not spec.rate and not spec.bytes_rate:
        from kvtool.ops.range_plan import worker_count

        count = worker_count(workers, Path(db_path), spec)
    if count > 1:
        parallel = _export_parallel(
            Path(db_path),
            spec,
            path,
            schema,
            count,
            options=options,
            meta=dataset_meta(Path(db_path), engine, None),
            part_bytes=part_bytes,
            partition_by_prefix=partition_by_prefix,
            progress=progress,
        )  # fmt: skip
        if parallel is not None:
            return parallel
    stats = ScanStats()
    stopper = Stopper(spec.timeout)
    stopped: StopRequested | None = None
    resume_from = spec.cursor_after(spec.after)
    with stopper, open_db(db_path, OpenMode.READ_ONLY) as db:
        meta = dataset_meta(Path(db_path), engine, db.sequence_number())
        if progress is not None:
            total = None
            if not spec.krange.bounded and spec.after is None:
                estimate = db.property("rocksdb.estimate-num-keys", spec.krange.cf)
                total = int(estimate) if estimate and estimate.isdigit() else None
                if total is not None and spec.limit is not None:
                    total = min(total, spec.limit)
            progress.start(total)
        dataset = Dataset(
            path,
            schema,
            options=options,
            meta=meta,
            resume_from=resume_from,
            cursor_after=spec.cursor_after,
            part_bytes=part_bytes,
            partition_by_prefix=partition_by_prefix,
        )
        try:
            stopped = write_stream(db, spec, stats, stopper, dataset, progress)
            limit_hit = spec.limit is not None and stats.records >= spec.limit
            cursor = spec.cursor_after(stats.last_key) if (stopped or limit_hit) else None
            if stopped is not None and cursor is None:
                cursor = resume_from  # nothing new written: resume where we began
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
            output_bytes=dataset.bytes_written,
            parts=len(dataset.parts),
            cursor=cursor,
        ),
        cursor=cursor,
        stopped=stopped,
        output=path,
        requested=path,
    )


def _export_parallel(
    db_path: Path,
    spec: ReadSpec,
    path: Path,
    schema: PartSchema,
    workers: int,
    *,
    options: dict[str, Any],
    meta: dict[str, Any],
    part_bytes: int,
    partition_by_prefix: int | None,
    progress: Progress | None,
) -> DatasetResult | None:
    """`export_parquet` by range workers; None when their views differed (nothing written)."""
    from kvtool.ops.export_parquet_parallel import export_parquet_parallel, keep_prefix

    stats = ScanStats()
    stopper = Stopper(spec.timeout)
    resume_from = spec.cursor_after(spec.after)
    dataset = Dataset(
        path,
        schema,
        options=options,
        meta=meta,
        resume_from=resume_from,
        cursor_after=spec.cursor_after,
        part_bytes=part_bytes,
        partition_by_prefix=partition_by_prefix,
    )
    began = False

    def started(estimate: int | None, sequence: int) -> None:
        nonlocal began
        dataset.note_sequence(sequence)
        if progress is not None:
            began = True
            bounded = spec.krange.bounded or spec.after is not None
            progress.start(None if bounded else estimate)

    with stopper:
        try:
            outcome = export_parquet_parallel(
                db_path,
                spec,
                schema,
                path,
                workers=workers,
                stopper=stopper,
                part_bytes=part_bytes,
                partition_by_prefix=partition_by_prefix,
                started=started,
                progressed=progress.update if progress is not None else None,
            )
            if outcome is None:
                dataset.withdraw()
                return None
            whole = keep_prefix(dataset, outcome, stats)
            stopped = outcome.stopped
            if whole:
                stopped, cursor, state = None, None, "complete"
            else:
                cursor = spec.cursor_after(stats.last_key) or resume_from
                state = "failed" if outcome.error is not None else "stopped"
                if outcome.error is None and stopped is None:
                    outcome.error = KvtoolError("a worker process ended without reporting")
                    state = "failed"
            dataset.end(state=state, cursor=cursor)
            if outcome.error is not None:
                raise outcome.error
        except BaseException:
            dataset.abandon()
            raise
        finally:
            stats.finish()
            if progress is not None and began:
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
