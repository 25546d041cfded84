"""Parquet through pyarrow (the optional extra `kvtool[parquet]`): the schema of kvtool's part
files and one part file written a row group at a time (reading: kvtool.formats.parquet_read).

pyarrow is imported only through kvtool.formats.arrow, only when Parquet is asked for: kvtool
without the extra starts as fast and says how to install it (exit 69), never failing on an import.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from operator import itemgetter
from pathlib import Path
from typing import Any

from kvtool.engine.base import Entity
from kvtool.errors import UsageError
from kvtool.formats.arrow import pyarrow
from kvtool.formats.jsonl import Record
from kvtool.formats.records import FieldFormat, encoder

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
