"""Parquet through pyarrow (the optional extra `kvtool[parquet]`): the schema of kvtool's part
files, one part file written a row group at a time, and the records of any Parquet file with a
binary or string `key` and `value` read back.

pyarrow is imported only through kvtool.formats.arrow, only when Parquet is asked for: kvtool
without the extra starts as fast and says how to install it (exit 69), never failing on an import.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from operator import itemgetter
from pathlib import Path
from typing import Any

from kvtool.engine.base import Entity
from kvtool.errors import BadInputError, UsageError
from kvtool.formats.arrow import pyarrow
from kvtool.formats.jsonl import Record
from kvtool.formats.records import FieldFormat, decode_field, encoder

_first, _second = itemgetter(0), itemgetter(1)
# Spark's default codec: fast to write, and every Parquet reader has it.
COMPRESSION = "snappy"
# A lone cell this large becomes an Arrow array over its own bytes (PartSchema._array); binary
# offsets are int32, so it is one up to 2 GiB.
_SHARED_CELL_BYTES = 2**20
_OFFSETS = struct.Struct("<ii")
FORMATS_KEY = "kvtool.formats"  # schema metadata: "KEY_FORMAT VALUE_FORMAT" (PartSchema)


def use_system_allocator() -> None:
    """Have Arrow allocate with malloc: its default pool (mimalloc) keeps freed row groups
    mapped, about 45 MB more peak RSS on the 2M-record benchmark (bench/bench_parquet.py)."""
    pa, _ = pyarrow()
    pa.set_memory_pool(pa.system_memory_pool())


class PartSchema:
    """The columns of kvtool's part files and how a batch of records becomes a table.

    `key` and `value` are binary, or strings when their format is utf8 (or hex/base64: the text
    of those encodings). A wide-column entity's row has a null `value` and its columns in
    `columns`, `list<struct<name, value>>`, the JSON Lines shape (names typed like keys, values
    like values); a plain value's row has a null `columns`. --keys-only writes `key` alone.

    `cf_column` (an export of several column families) adds a first column `cf`, the name of
    the column family being written (a part file holds one), dictionary-encoded. The schema's
    metadata `FORMATS_KEY` is "KEY_FORMAT VALUE_FORMAT" (kvtool.ops.import_parquet reads it).
    """

    def __init__(
        self,
        key_format: FieldFormat | str,
        value_format: FieldFormat | str,
        *,
        keys_only: bool,
        cf_column: bool = False,
    ) -> None:
        pa, _ = pyarrow()
        self._pa = pa
        self.key_format = FieldFormat(key_format)
        self.value_format = FieldFormat(value_format)
        if FieldFormat.JSON in (self.key_format, self.value_format):
            raise UsageError(
                "--format parquet stores bytes or text, not JSON",
                hint="use --value-format utf8 and parse it in the query (DuckDB: json(value))",
            )
        self.keys_only = keys_only
        self.cf_column = cf_column
        self.cf: str | None = None  # the column family being written, with cf_column
        key_type = self._type(self.key_format)
        fields = [pa.field("cf", pa.dictionary(pa.int32(), pa.string()), nullable=False)]
        fields = fields if cf_column else []
        fields.append(pa.field("key", key_type, nullable=False))
        if not keys_only:
            value_type = self._type(self.value_format)
            column = pa.struct(
                [pa.field("name", key_type, nullable=False), pa.field("value", value_type)]
            )
            fields += [pa.field("value", value_type), pa.field("columns", pa.list_(column))]
        # The formats in every part file too: one file read alone is text or bytes as asked.
        formats = {FORMATS_KEY: f"{self.key_format.value} {self.value_format.value}"}
        self.arrow = pa.schema(fields, metadata=formats)

    def _type(self, fmt: FieldFormat) -> Any:
        return self._pa.binary() if fmt is FieldFormat.AUTO else self._pa.string()

    def describe(self) -> dict[str, str]:
        """The schema as the manifest records it: column name to Arrow type."""
        return {f.name: str(f.type) for f in self.arrow}

    def _array(self, data: list[bytes], fmt: FieldFormat) -> Any:
        pa = self._pa
        if fmt is FieldFormat.AUTO:
            if len(data) == 1 and len(data[0]) >= _SHARED_CELL_BYTES:
                # A huge value (a read batch cut by bytes holds one): Arrow uses its bytes
                # where they are, not a copy of them.
                (cell,) = data
                offsets = pa.py_buffer(_OFFSETS.pack(0, len(cell)))
                return pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(cell)])
            return pa.array(data, pa.binary())
        if fmt is FieldFormat.UTF8:
            try:  # Arrow checks the UTF-8 in C
                return pa.array(data, pa.binary()).cast(pa.string())
            except pa.ArrowInvalid:
                for item in data:
                    encoder(fmt)(item)  # raises the usual error naming the bytes
                raise
        encode = encoder(fmt)
        return pa.array([encode(item) for item in data], pa.string())

    def batch(self, records: Sequence[Record]) -> Any:
        """`records` as an Arrow record batch of this schema."""
        pa = self._pa
        # Two C-level passes: zip(*records) took twice as long (1024 iterators, one per record).
        keys, values = list(map(_first, records)), list(map(_second, records))
        arrays = [self._array(keys, self.key_format)]
        if self.cf_column:
            indices = pa.repeat(pa.scalar(0, pa.int32()), len(keys))
            arrays.insert(0, pa.DictionaryArray.from_arrays(indices, pa.array([self.cf])))
        if not self.keys_only:
            if Entity not in set(map(type, values)):
                arrays.append(self._array(values, self.value_format))
                arrays.append(pa.nulls(len(values), self.arrow.field("columns").type))
            else:
                arrays += self._entity_arrays(values)
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow)

    def _entity_arrays(self, values: list[bytes | Entity]) -> list[Any]:
        pa = self._pa
        encode_name = _text(self.key_format)
        encode_value = _text(self.value_format)
        plain: list[Any] = []
        columns: list[Any] = []
        for value in values:
            if type(value) is Entity:
                plain.append(None)
                columns.append(
                    [{"name": encode_name(n), "value": encode_value(v)} for n, v in value.columns]
                )
            else:
                plain.append(encode_value(value))
                columns.append(None)
        return [
            pa.array(plain, self.arrow.field("value").type),
            pa.array(columns, self.arrow.field("columns").type),
        ]


def _text(fmt: FieldFormat) -> Any:
    """Bytes as the Python value of their Parquet cell: bytes (binary) or str."""
    if fmt is FieldFormat.AUTO:
        return lambda data: data
    return encoder(fmt)


class PartWriter:
    """One part file: each `write` is one row group, encoded and compressed on a thread of its
    own while the caller reads the next one (Arrow releases the GIL there; rocksdict holds it
    while it reads), so memory holds two row groups at most. A write's error is raised by the
    next call."""

    def __init__(self, path: Path, schema: PartSchema) -> None:
        pa, pq = pyarrow()
        self._pa = pa
        self.path = path
        # No dictionary encoding (unique keys, values seldom repeat: trying it costs half the
        # write time) but for `cf` (one name per part file). Min/max statistics where queries
        # prune row groups: keys (sorted) and cf, not values or columns (unsorted: they seldom
        # exclude anything, and cost 6% of the write time, bench/bench_parquet.py --codecs).
        stats = [name for name in schema.arrow.names if name not in ("value", "columns")]
        self._writer = pq.ParquetWriter(
            str(path),
            schema.arrow,
            compression=COMPRESSION,
            use_dictionary=["cf"] if schema.cf_column else False,
            write_statistics=stats,
        )
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvtool-parquet")
        self._pending: Future[None] | None = None

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def write(self, batches: Sequence[Any], *, wait: bool = False) -> None:
        """Arrow record batches, written as one row group (after the previous one); with
        `wait`, written before this returns (no overlap with the next read)."""
        self._wait()
        table = self._pa.Table.from_batches(batches)
        self._pending = self._thread.submit(
            self._writer.write_table, table, row_group_size=max(1, table.num_rows)
        )
        if wait:
            del table, batches
            self._wait()

    def close(self) -> None:
        """Finish the file (its footer): every row group is written when this returns."""
        try:
            self._wait()
            self._writer.close()
        finally:
            self._thread.shutdown(wait=True)

    def discard(self) -> None:
        """Stop writing, whatever state the file is in (the caller removes it)."""
        with contextlib.suppress(Exception):
            self._wait()
        with contextlib.suppress(Exception):
            self._writer.close()
        self._thread.shutdown(wait=True)


# -- reading ------------------------------------------------------------------------------------
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
