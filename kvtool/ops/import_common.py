"""What every part of an import shares: its options, its stats, and the errors a record source
raises (`LineError` for one bad record; `as_interrupted` for a stop signal)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvtool.engine import DEFAULT_CF
from kvtool.errors import BadInputError, Interrupted
from kvtool.formats.records import FieldFormat
from kvtool.ops.choices import ImportMode, OnError

# How many skipped line numbers the stats name; the count covers them all.
SKIPPED_LINES_SHOWN = 10


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
    unit: str = "line"  # what a record's number counts: JSON Lines lines, Parquet rows

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
    # A Parquet input's `cf` column (an export of several column families) decides where each
    # row goes; --cf given turns it off and puts every row into `cf`.
    cf_column: bool = False
    create: bool = False
    wait_lock: float = 0.0
    force: bool = False
    # Names for the resume hint in messages, as the user gave them (quoted here): the input
    # file ("-" for stdin) and the database.
    source_name: str | None = None
    db_name: str | None = None
    # The input was gzip-compressed (known by its magic bytes, whatever its name): the resume
    # hint reads it through zcat.
    source_gzip: bool = False


class LineError(Exception):
    """Record `line` (a line, or a row of a Parquet input) is bad: `reason` says why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def as_interrupted(exc: BaseException) -> Interrupted:
    return exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)


Progress = Callable[[int], None]


def count_skipped(stats: ImportStats, number: int, reason: str) -> None:
    """Record a bad record skipped under `--on-error skip` (line or row `number`)."""
    stats.skipped += 1
    if len(stats.skipped_lines) < SKIPPED_LINES_SHOWN:
        stats.skipped_lines.append(number)
    if stats.first_error is None:
        stats.first_error = f"{stats.unit} {number}: {reason}"


def bad_input(stats: ImportStats, exc: LineError, message: str, hint: str) -> BadInputError:
    """The error (exit 65) for the bad record `exc`, numbered as a line or a row."""
    if stats.unit == "line":
        return BadInputError(message, line=exc.line, hint=hint)
    return BadInputError(f"{stats.unit} {exc.line}: {message}", hint=hint)
