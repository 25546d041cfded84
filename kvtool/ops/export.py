"""`export`: every record of a range, through one iterator (or range workers reading one view,
see export_parallel), to a stream or an atomically renamed file; stops cleanly (deadline,
signals) with a cursor to resume."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from kvtool.engine import OpenMode, open_db
from kvtool.engine.ondisk import database_identity
from kvtool.errors import StoppedError
from kvtool.formats.jsonl import Render
from kvtool.formats.records import FieldCounts, FieldFormat
from kvtool.formats.sink import ExportSink
from kvtool.formats.writers import (
    OutputFormat,
    footer,
    header,
    renderer,
    terminal_safe_render,
)
from kvtool.stream import ReadSpec, ScanStats, Stopper, StopRequested, record_stream
from kvtool.stream.memory import collect_less, keep_freed_memory


class Progress(Protocol):
    """What export reports progress to (the CLI's tqdm bar)."""

    def start(self, total: int | None) -> None: ...

    def update(self, records: int) -> None: ...

    def close(self) -> None: ...


@dataclass
class ExportResult:
    """How an export ended. `cursor` resumes it (None when the whole range was written)."""

    stats: dict[str, Any]
    cursor: str | None
    stopped: StopRequested | None = None
    output: Path | None = None  # the file holding the records (`.partial` when stopped)
    output_closed: bool = False  # the reader closed the pipe (`| head`): a quiet, normal end
    requested: Path | None = None  # the file asked for (`-o PATH`)

    def raise_for_status(self) -> None:
        """Raise StoppedError if a deadline or a signal stopped the run, saying where its records
        are and how to resume (docs/design.md, Cursors, stops and stats); callers report the
        stats first."""
        if self.stopped is None:
            return
        where = f"; records so far are in {self.output}" if self.output else ""
        resume = (
            f"; resume with --after {self.cursor}"
            if self.cursor
            else "; nothing was written: run it again"
        )
        if self.cursor and self.output and self.output.name.endswith(".partial"):
            resume += f" -o {self.requested} (it appends to {self.output.name})"
        raise StoppedError(
            f"{self.stopped.reason}{where}{resume}",
            exit_code=self.stopped.exit_code,
            cursor=self.cursor,
        )


def _open_sink(
    path: Path | None,
    out: BinaryIO | None,
    spec: ReadSpec,
    render: Render,
    head: bytes,
    fmt: OutputFormat | str,
    options: dict[str, Any],
    db_path: Path,
    stopper: Stopper,
) -> ExportSink:
    """Where records go: the file `path` or the stream `out`. A run continuing after a cursor
    into the same `path` appends to the `.partial` a stopped run left (see
    kvtool.formats.output_file), when that cursor and `options` match. A FIFO waits for its
    reader as long as `stopper` lets the run go on."""
    try:
        return ExportSink(
            path=path,
            out=out,
            render=render,
            head=head,
            footer=footer(fmt, keys_only=spec.keys_only),
            resume_from=spec.cursor_after(spec.after) if path is not None else None,
            options=options,
            identity=database_identity(db_path) if path is not None else None,
            wait_for_reader=lambda: stopper.sleep(0.05),
        )
    except StopRequested as exc:
        raise StoppedError(
            f"{exc.reason} while {path} had no reader: nothing was written",
            exit_code=exc.exit_code,
        ) from None


def export(
    db_path: str | Path,
    spec: ReadSpec,
    *,
    out: BinaryIO | None = None,
    path: Path | None = None,
    fmt: OutputFormat | str = OutputFormat.JSONL,
    key_format: FieldFormat | str = FieldFormat.AUTO,
    value_format: FieldFormat | str = FieldFormat.AUTO,
    progress: Progress | None = None,
    flush_each_batch: bool = False,
    workers: int | None = None,
    terminal: bool = False,
) -> ExportResult:
    """Write the records of `spec` from the database at `db_path` to `out` or to the file `path`.

    A file is written to a temp file beside it and renamed over `path` only when the export is
    complete; a run stopped by the deadline or a signal keeps what it wrote (whole records) as
    `PATH.partial` and returns the cursor that resumes after it. A failed run leaves no file.

    `workers` > 1 reads with that many forked range workers (kvtool.ops.export_parallel); None
    chooses: 2 on a multi-core machine for a database over 64 MB of SST files. A run with
    --limit, pacing, per-batch flushes or gzip output, or an `out` without a file descriptor,
    is read by one process; so is one whose workers' views of the database differ.

    With `path`, a run continuing after a cursor (`spec.after`) appends to the `PATH.partial` that
    the stopped run left, if it stopped at that cursor with the same output options (else a
    usage error): the completed file is the one an uninterrupted run writes. `terminal`: `out` is
    a terminal, so control characters from the data are shown as escapes, never sent raw.
    """
    keep_freed_memory()
    collect_less()
    # The json value format counts the values it wraps (not JSON) for the stats; the count is
    # kept in this process, so such a run is read by one process.
    counts = None
    if (
        FieldFormat(value_format) is FieldFormat.JSON
        and OutputFormat(fmt) is OutputFormat.JSONL
        and not spec.keys_only
    ):
        counts = FieldCounts()
    render = renderer(fmt, key_format, value_format, keys_only=spec.keys_only, counts=counts)
    if terminal:
        render = terminal_safe_render(render)
    options = {
        "format": str(OutputFormat(fmt).value),
        "key_format": str(FieldFormat(key_format).value),
        "value_format": str(FieldFormat(value_format).value),
        "keys_only": spec.keys_only,
    }
    head = header(fmt, keys_only=spec.keys_only) if spec.after is None else b""
    count = _worker_count(workers, Path(db_path), spec, out, path, fmt, flush_each_batch)
    if counts is not None:
        count = 1
    if count > 1:
        result = _export_parallel(
            Path(db_path),
            spec,
            count,
            render=render,
            head=head,
            fmt=fmt,
            out=out,
            path=path,
            progress=progress,
            options=options,
        )
        if result is not None:
            return result
        if path is None:
            head = b""  # already on stdout
    stats = ScanStats()
    stopper = Stopper(spec.timeout)
    stopped: StopRequested | None = None
    with stopper:
        with open_db(db_path, OpenMode.READ_ONLY) as db:
            if progress is not None:
                total = None
                if not spec.krange.bounded and spec.after is None:
                    estimate = db.property("rocksdb.estimate-num-keys", spec.krange.cf)
                    total = int(estimate) if estimate and estimate.isdigit() else None
                    if total is not None and spec.limit is not None:
                        total = min(total, spec.limit)
                progress.start(total)
            try:
                with _open_sink(
                    path, out, spec, render, head, fmt, options, Path(db_path), stopper
                ) as sink:
                    with record_stream(db, spec, stats, stopper) as batches:
                        try:
                            sink.write_head()
                            for batch in batches:
                                sink.write(batch)
                                if flush_each_batch:
                                    sink.flush()
                                    if sink.closed:
                                        break
                                if progress is not None:
                                    progress.update(len(batch))
                        except StopRequested as exc:
                            stopped = exc
                        except BrokenPipeError:
                            sink.closed = True  # `export | head`: the reader has all it wanted
                    if stopped is None:
                        sink.finish()
                    else:
                        sink.flush()
            finally:
                stats.finish()
                if progress is not None:
                    progress.close()
        closed = sink.closed
        limit_hit = spec.limit is not None and stats.records >= spec.limit
        cursor = spec.cursor_after(stats.last_key) if (stopped or limit_hit or closed) else None
        if stopped is not None and cursor is None and spec.after is not None:
            cursor = spec.cursor_after(spec.after)  # nothing new written: resume where we began
        written = sink.end(stopped=stopped is not None, cursor=cursor)
    extra = {"values_not_json": counts.not_json} if counts is not None else {}
    return ExportResult(
        stats=stats.as_dict(output_bytes=sink.bytes_written, cursor=cursor, **extra),
        cursor=cursor,
        stopped=stopped,
        output=written,
        requested=path,
        output_closed=closed,
    )


def _worker_count(
    workers: int | None,
    db_path: Path,
    spec: ReadSpec,
    out: BinaryIO | None,
    path: Path | None,
    fmt: OutputFormat | str,
    flush_each_batch: bool,
) -> int:
    """How many processes read this export (see `export`)."""
    if workers is not None and workers <= 1:
        return 1
    if spec.limit is not None or spec.rate or spec.bytes_rate or flush_each_batch:
        return 1
    if not ExportSink.concatenable(path, footer=footer(fmt, keys_only=spec.keys_only)):
        return 1
    if out is not None:
        try:
            out.fileno()
        except (AttributeError, OSError, ValueError):
            return 1
    from kvtool.ops.range_plan import worker_count

    return worker_count(workers, db_path, spec)


def _export_parallel(
    db_path: Path,
    spec: ReadSpec,
    workers: int,
    *,
    render: Render,
    head: bytes,
    fmt: OutputFormat | str,
    out: BinaryIO | None,
    path: Path | None,
    progress: Progress | None,
    options: dict[str, Any],
) -> ExportResult | None:
    """`export` by range workers; None when they could not share one view (nothing written)."""
    from kvtool.ops.export_parallel import export_parallel

    stats = ScanStats()
    stopper = Stopper(spec.timeout)
    result = None
    started = False

    def start(total: int | None) -> None:
        nonlocal started
        started = True
        if progress is not None:
            if total is not None and (spec.krange.bounded or spec.after):
                total = None
            progress.start(total)

    with stopper:
        try:
            with _open_sink(
                path, out, spec, render, head, fmt, options, Path(db_path), stopper
            ) as sink:
                try:
                    sink.write_head()
                except BrokenPipeError:
                    sink.closed = True
                sink.flush()
                if not sink.closed:
                    result = export_parallel(
                        db_path,
                        spec,
                        render,
                        sink.fileno(),
                        workers=workers,
                        where=sink.where,
                        stopper=stopper,
                        stats=stats,
                        started=start,
                        progressed=progress.update if progress is not None else None,
                    )
                    if result is None:  # the views differed: nothing was written
                        sink.discard()
                        return None
                    if result.error is not None:
                        raise result.error
                    sink.closed = result.closed
                    sink.written_elsewhere(result.output_bytes)
        finally:
            stats.finish()
            if progress is not None and started:
                progress.close()
        stopped = result.stopped if result is not None else None
        closed = sink.closed
        if stopped is not None and result is not None and result.cut:
            # A worker died in the middle of a record and the parent could not complete it
            # (export_parallel._mend): say so, rather than let a reader trust the last line.
            stopped = StopRequested(
                stopped.exit_code,
                f"{stopped.reason}; the output ends in a record cut in half: drop its last line",
            )
        cursor = spec.cursor_after(stats.last_key) if (stopped or closed) else None
        if stopped is not None and cursor is None and spec.after is not None:
            cursor = spec.cursor_after(spec.after)
        written = sink.end(stopped=stopped is not None, cursor=cursor)
    return ExportResult(
        stats=stats.as_dict(output_bytes=sink.bytes_written, cursor=cursor),
        cursor=cursor,
        stopped=stopped,
        output=written,
        requested=path,
        output_closed=closed,
    )
