"""Parquet import input: the rows of a Parquet file, or of every part file of a dataset directory
(in the manifest's order when kvtool wrote it), as (row number, key, value) records, with bad rows
raised as `LineError` or counted as skipped, as import_jsonl does for lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from kvtool.engine import Entity
from kvtool.errors import BadInputError, UsageError
from kvtool.formats.dataset import dataset_files
from kvtool.formats.parquet import read_records
from kvtool.ops.choices import OnError
from kvtool.ops.import_common import ImportOptions, ImportStats, LineError, count_skipped


def parquet_files(source: Path) -> list[Path]:
    """The Parquet files `source` stands for: itself, or a dataset directory's part files."""
    if not source.is_dir():
        return [source]
    files = dataset_files(source)
    if not files:
        raise UsageError(f"{source} holds no Parquet files (*.parquet)")
    return files


def parquet_records(
    files: list[Path], options: ImportOptions, stats: ImportStats
) -> Iterator[tuple[int, bytes, bytes | Entity]]:
    """(row, key, value) for each row of the Parquet `files` (see `parquet_files`)."""
    skip = options.on_error is OnError.SKIP
    row = 0
    try:
        for item in read_records(files, options.key_format, options.value_format):
            row = item[0]
            if len(item) == 2:
                reason = item[1].message
                if not skip:
                    raise LineError(row, reason)
                count_skipped(stats, row, reason)
                continue
            yield item
    except BadInputError as exc:  # an unreadable file, or one without key and value columns
        raise LineError(row + 1, exc.message) from None
    stats.lines = row
