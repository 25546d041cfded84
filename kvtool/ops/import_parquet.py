"""Parquet import input: the rows of a Parquet file, or of every part file of a dataset directory
(in the manifest's order when kvtool wrote it), as (row number, key, value) records, with bad rows
raised as `LineError` or counted as skipped, as import_jsonl does for lines."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

from kvtool.engine import Entity
from kvtool.errors import BadInputError, UsageError
from kvtool.formats.arrow import pyarrow
from kvtool.formats.dataset import MANIFEST, SUCCESS, dataset_files
from kvtool.formats.parquet import FORMATS_KEY
from kvtool.formats.parquet_read import cf_values, read_records, row_count
from kvtool.formats.records import FieldFormat
from kvtool.ops.choices import OnError
from kvtool.ops.import_common import ImportOptions, ImportStats, LineError, count_skipped


def parquet_files(source: Path) -> list[Path]:
    """The Parquet files `source` stands for: itself, or a dataset directory's part files."""
    if not source.is_dir():
        return [source]
    _require_complete(source)
    files = dataset_files(source)
    if not files:
        raise UsageError(f"{source} holds no Parquet files (*.parquet)")
    return files


def _require_complete(source: Path) -> None:
    """A kvtool dataset whose export stopped (or is still running, or was killed) holds only the
    records before its cursor: importing it as if complete would lose the rest with exit 0.
    `_SUCCESS`, written last, is the mark readers go by (docs/analytics.md). A directory without
    a manifest is no kvtool export: its files are all there is."""
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise BadInputError(f"cannot read {source / MANIFEST} ({exc})") from None
    state = manifest.get("state") if isinstance(manifest, dict) else None
    if state == "complete" and (source / SUCCESS).exists():
        return
    if state == "complete":  # a copy or upload that has not reached _SUCCESS yet
        raise BadInputError(
            f"{source} has no {SUCCESS}: an export writes it last, so this copy may be incomplete",
            hint=f"copy {SUCCESS} last, once every part file is there",
        )
    cursor = manifest.get("cursor") if isinstance(manifest, dict) else None
    raise BadInputError(
        f"{source} is an export that did not complete (state {state}): its part files hold "
        "only the records before its cursor",
        hint=(
            f"finish it with kvtool export DB --format parquet --after {cursor} -o {source}"
            if cursor
            else "export it again"
        ),
    )


def with_dataset_formats(source: Path, options: ImportOptions) -> ImportOptions:
    """`options` with the key and value formats of the kvtool dataset or part file `source`:
    an export with --key-format hex or base64 stores the text of that encoding, which read as
    auto would become the keys themselves. An import's auto takes the dataset's format; another
    format than the dataset's is refused, as string cells would be decoded into other bytes
    (auto and utf8 agree: both read the UTF-8; binary cells are the bytes whatever the format)."""
    formats = _written_formats(source)
    if formats is None:  # not kvtool's: its cells decide
        return options
    chosen = [options.key_format, options.value_format]
    for i, (fmt, stored) in enumerate(zip(chosen, formats, strict=True)):
        if stored is FieldFormat.AUTO or fmt is stored:
            continue
        if fmt is FieldFormat.AUTO:
            chosen[i] = stored
            continue
        raise UsageError(
            f"{source} was exported with --key-format {formats[0].value} --value-format "
            f"{formats[1].value}: its text cells would be read as other bytes",
            hint=f"import it with --key-format {formats[0].value} --value-format "
            f"{formats[1].value}, or without either",
        )
    return dataclasses.replace(options, key_format=chosen[0], value_format=chosen[1])


def _written_formats(source: Path) -> list[FieldFormat] | None:
    """The key and value formats a kvtool export wrote `source` in: a dataset's manifest says,
    and so does each part file's schema metadata (`FORMATS_KEY`), for a file read alone."""
    try:
        if source.is_dir():
            written = json.loads((source / MANIFEST).read_text())["options"]
            return [FieldFormat(written["key_format"]), FieldFormat(written["value_format"])]
        _, pq = pyarrow()
        metadata = pq.read_schema(str(source)).metadata or {}
        key, value = metadata[FORMATS_KEY.encode()].decode().split()
        return [FieldFormat(key), FieldFormat(value)]
    except (OSError, ValueError, KeyError, TypeError):  # ArrowInvalid is a ValueError
        return None


def column_families_of(files: list[Path], source: Path) -> list[str] | None:
    """The column families the `cf` columns of `files` name, in the order of their first rows,
    after those the manifest of a kvtool dataset `source` lists (empty ones too: an import
    creates them as the export found them); None when no file has a `cf` column (a one-CF
    export, any other Parquet file)."""
    seen: dict[str, None] = {}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        listed = json.loads((source / MANIFEST).read_text())["column_families"]
        seen.update(dict.fromkeys(str(cf["name"]) for cf in listed))
    found = False
    for path in files:
        values = cf_values(path)
        if values is not None:
            found = True
            seen.update(dict.fromkeys(values))
        elif source.is_dir() and any(
            part.startswith("cf=") for part in path.relative_to(source).parts[:-1]
        ):
            # A hive partition (DuckDB's PARTITION_BY (cf), Spark's partitionBy("cf")) names
            # the column family in the path only: every row into one CF would merge the CFs'
            # keys, the last value winning, with exit 0.
            raise BadInputError(
                f"{path}: its column family is only in a directory name (cf=...), which kvtool "
                "does not read",
                hint="import each cf=NAME directory on its own with --cf NAME",
            )
    return list(seen) if found else None


def parquet_records(
    files: list[Path],
    options: ImportOptions,
    stats: ImportStats,
    *,
    cf: str | None = None,
    nulls: bool = False,
) -> Iterator[tuple[int, bytes, bytes | Entity]]:
    """(row, key, value) for each row of the Parquet `files` (see `parquet_files`); with `cf`,
    of the rows whose `cf` column names it (rows keep their number in the whole input), and, with
    `nulls`, a row without a column family is a bad row."""
    skip = options.on_error is OnError.SKIP
    row = 0
    try:
        for item in read_records(
            files, options.key_format, options.value_format, cf=cf, nulls=nulls
        ):
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
    # A pass of one column family yields its rows only: the input's rows are all of them.
    stats.lines = max(stats.lines, row if cf is None else row_count(files))
