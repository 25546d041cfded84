"""The records of any Parquet file with a binary or string `key` and `value` column read back
(kvtool's datasets and foreign files alike), a row group at a time, in batches cut to about
READ_BATCH_BYTES (pyarrow through kvtool.formats.arrow, as in kvtool.formats.parquet).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kvtool.engine.base import Entity
from kvtool.errors import BadInputError
from kvtool.formats.arrow import pyarrow
from kvtool.formats.records import FieldFormat, decode_field

# A read batch of a Parquet file holds about this many bytes of its rows (`_batch_rows`).
READ_BATCH_BYTES = 8 * 2**20
_BINARY = ("binary", "large_binary", "fixed_size_binary", "binary_view")
_STRING = ("string", "large_string", "utf8", "large_utf8", "string_view")


def is_parquet_file(path: Path) -> bool:
    """Whether `path` is a Parquet file (its first bytes are PAR1), whatever its name. Only a
    regular file can be: Parquet is read from its end, and a look into a FIFO or a device would
    consume what the JSON Lines reader needs."""
    if not path.is_file():
        return False
    try:
        with path.open("rb") as src:
            return src.read(4) == b"PAR1"
    except OSError:
        return False


def _kind(arrow_type: Any, column: str, where: str) -> str:
    if pyarrow()[0].types.is_dictionary(arrow_type):  # what pyarrow wrote dictionary-encoded
        arrow_type = arrow_type.value_type
    name = str(arrow_type)
    if name.startswith(_BINARY) or name == "null":  # null: DuckDB's type of an all-NULL column
        return "binary"
    if name in _STRING:
        return "string"
    raise BadInputError(f"{where}: column {column!r} is {name}; kvtool reads binary or string")


def _entity_struct(arrow_type: Any, where: str) -> Any:
    """The struct of a `columns` column, list<struct<name, value>>; another shape is bad input."""
    pa, _ = pyarrow()
    struct = arrow_type.value_type if pa.types.is_list(arrow_type) else None
    if struct is None or not pa.types.is_struct(struct) or {"name", "value"} - set(struct.names):
        raise BadInputError(f"{where}: column 'columns' is {arrow_type}, not a list of entities")
    return struct


def _decoder(kind: str, fmt: FieldFormat, what: str) -> Any:
    """A cell (bytes or str) to the bytes it stands for in `fmt`."""
    if kind == "binary":
        return lambda cell: cell
    if fmt in (FieldFormat.AUTO, FieldFormat.UTF8):
        return lambda cell: cell.encode("utf-8", "surrogatepass")
    return lambda cell: decode_field(cell, fmt, what=what)


def cf_values(path: Path) -> list[str] | None:
    """The distinct values of the `cf` column of the Parquet file `path`, in the order of their
    first rows (nulls left out); None when it has no `cf` column."""
    reader, schema = _open(path)
    if "cf" not in schema.names:
        return None
    if _kind(schema.field("cf").type, "cf", str(path)) != "string":  # a name, not bytes
        raise BadInputError(f"{path}: column 'cf' is binary; column family names are strings")
    try:
        column = reader.read(columns=["cf"]).column("cf")
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        raise BadInputError(f"cannot read {path} as Parquet ({exc})") from None
    return list(column.unique().drop_null().to_pylist())


def _open(path: Path) -> tuple[Any, Any]:
    """A file's reader and schema; a column read twice (pyarrow writes that) is bad input."""
    try:
        reader = pyarrow()[1].ParquetFile(str(path))
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        raise BadInputError(f"cannot read {path} as Parquet ({exc})") from None
    names = reader.schema_arrow.names
    for twice in [n for n in ("cf", "key", "value", "columns") if names.count(n) > 1]:
        raise BadInputError(f"{path}: the column {twice!r} appears {names.count(twice)} times")
    return reader, reader.schema_arrow


def row_count(files: Sequence[Path]) -> int:
    """The rows of the Parquet `files`, from their footers."""
    return sum(pyarrow()[1].ParquetFile(str(path)).metadata.num_rows for path in files)


def read_records(
    files: Sequence[Path],
    key_format: FieldFormat,
    value_format: FieldFormat,
    *,
    batch_rows: int = 8192,
    cf: str | None = None,
    nulls: bool = False,
) -> Iterator[tuple[int, bytes, bytes | Entity] | tuple[int, BadInputError]]:
    """(row, key, value) for each row of `files` in order, rows numbered from 1 across them;
    a bad row gives (row, error) instead, for the caller to stop or skip on.

    With `cf`, only the rows whose `cf` column holds it (numbered as in the whole input); with
    `nulls` too, a row with a null or no `cf` is a bad row (one pass of several reports them).

    The value of a row with a null `value` and a `columns` list is that entity. String cells are
    read in `key_format`/`value_format` (auto and utf8: their UTF-8 bytes); binary cells are
    the bytes themselves.
    """
    row = 0
    for path in files:
        reader, schema = _open(path)
        names = set(schema.names)
        if "key" not in names or not ({"value", "columns"} & names):
            raise BadInputError(
                f"{path}: a Parquet input needs a 'key' column and a 'value' column "
                f"(it has {', '.join(schema.names)})"
            )
        key_kind = _kind(schema.field("key").type, "key", str(path))
        wanted = ["key"]
        decode_value = None
        if "value" in names:
            value_kind = _kind(schema.field("value").type, "value", str(path))
            decode_value = _decoder(value_kind, value_format, "value")
            wanted.append("value")
        decode_name = decode_cell = None
        if "columns" in names:
            struct = _entity_struct(schema.field("columns").type, str(path))
            decode_name = _decoder(
                _kind(struct.field("name").type, "name", str(path)), key_format, "column name"
            )
            decode_cell = _decoder(
                _kind(struct.field("value").type, "value", str(path)), value_format, "column value"
            )
            wanted.append("columns")
        decode_key = _decoder(key_kind, key_format, "key")
        has_cf = "cf" in names
        if cf is not None and has_cf:
            if not _may_hold(reader.metadata, cf, nulls=nulls):
                row += reader.metadata.num_rows  # another CF's part: its rows keep their numbers
                continue
            wanted.append("cf")
        try:
            for batch in _batches(reader, wanted, batch_rows):
                keys = batch.column(0).to_pylist()
                values = batch.column("value").to_pylist() if decode_value else [None] * len(keys)
                entities = batch.column("columns").to_pylist() if decode_name else None
                cfs = batch.column("cf").to_pylist() if cf is not None and has_cf else None
                for i, key in enumerate(keys):
                    row += 1
                    if cf is not None:
                        name = cfs[i] if cfs is not None else None
                        if name is None and nulls:
                            yield (
                                row,
                                BadInputError(
                                    "the row names no column family (a null or no cf column)"
                                ),
                            )
                        if name != cf:
                            continue
                    try:
                        if key is None:
                            raise BadInputError("the key is null")
                        value = values[i]
                        cells = entities[i] if entities is not None else None
                        if value is not None:
                            if cells is not None:  # as JSON Lines: which one would be lost?
                                raise BadInputError("a row has a value and columns, not both")
                            yield row, decode_key(key), decode_value(value)  # type: ignore[misc]
                            continue
                        if cells is None:
                            raise BadInputError("the value is null")
                        yield row, decode_key(key), _entity(cells, decode_name, decode_cell)
                    except BadInputError as exc:
                        yield row, exc
        except (OSError, ValueError) as exc:
            raise BadInputError(f"cannot read {path} as Parquet ({exc})") from None


def _batches(reader: Any, columns: list[str], most: int) -> Iterator[Any]:
    """A file's record batches, of `_batch_rows` rows, a row group at a time: over a whole file
    pyarrow decodes the next row groups while a batch is used (reading 30-40 MB values, 469 MiB
    peak RSS against 247 MiB a row group at a time)."""
    rows = _batch_rows(reader.metadata, columns, most)
    for group in range(reader.metadata.num_row_groups):
        yield from reader.iter_batches(batch_size=rows, row_groups=[group], columns=columns)


def _batch_rows(metadata: Any, columns: Sequence[str], most: int) -> int:
    """How many rows a read batch of a file takes: `most`, or fewer where the widest of its row
    groups (the uncompressed bytes of `columns` a row, from the footer) would make a batch of
    over READ_BATCH_BYTES: a file of huge values is read a few rows at a time, not 8192 (which
    pyarrow fills across row groups). A row group is read whole all the same."""
    widest = 0.0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        if not row_group.num_rows:
            continue
        size = 0
        for index in range(row_group.num_columns):
            column = row_group.column(index)
            if column.path_in_schema.split(".")[0] in columns:
                size += column.total_uncompressed_size
        widest = max(widest, size / row_group.num_rows)
    return max(1, min(most, int(READ_BATCH_BYTES / widest))) if widest else most


def _may_hold(metadata: Any, cf: str, *, nulls: bool) -> bool:
    """Whether a file's `cf` column may hold `cf` (or, with `nulls`, a null), by its row groups'
    statistics: a part of a kvtool dataset holds one CF, so a pass skips the others unread."""
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            column = row_group.column(index)
            if column.path_in_schema != "cf":
                continue
            stats = column.statistics
            if stats is None or not stats.has_min_max or (nulls and stats.null_count != 0):
                return True
            if stats.min <= cf <= stats.max:
                return True
    return False


def _entity(cells: list[dict[str, Any]], decode_name: Any, decode_value: Any) -> Entity:
    columns: dict[bytes, bytes] = {}
    for cell in cells:
        if cell is None or cell.get("name") is None or cell.get("value") is None:
            raise BadInputError("a column of 'columns' has a null name or value")
        name = decode_name(cell["name"])
        if name in columns:
            raise BadInputError(f"column name {name!r:.60} appears twice")
        columns[name] = decode_value(cell["value"])
    return Entity(tuple(sorted(columns.items())))
