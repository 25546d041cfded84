"""Record renderers for every output format (jsonl, csv, tsv, table) and the writer that streams
rendered batches to a byte sink."""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Callable, Sequence
from typing import BinaryIO

import orjson

from kvtool.engine.base import Entity
from kvtool.formats.codecs import printable
from kvtool.formats.jsonl import Record, Render, jsonl_renderer
from kvtool.formats.records import FieldCounts, FieldFormat, encoder


class OutputFormat(str, enum.Enum):
    JSONL = "jsonl"
    CSV = "csv"
    TSV = "tsv"
    TABLE = "table"


TextEncoder = Callable[[bytes], str]


def text_encoder(fmt: FieldFormat | str, *, for_table: bool = False) -> TextEncoder:
    """Bytes to one text cell. `auto` is for people: UTF-8 text with \\x escapes for other bytes
    (not byte-exact: use hex or base64 for that); `json` is the value's compact JSON."""
    fmt = FieldFormat(fmt)
    if fmt is FieldFormat.AUTO:
        if for_table:
            return lambda data: printable(data, limit=1 << 30)
        return lambda data: data.decode("utf-8", errors="backslashreplace")
    if fmt is FieldFormat.JSON:
        encode_json = encoder(fmt)
        return lambda data: orjson.dumps(encode_json(data)).decode()
    encode = encoder(fmt)
    return lambda data: str(encode(data))


def value_cell(ek: TextEncoder, ev: TextEncoder) -> Callable[[bytes | Entity], str]:
    """A value's text cell; a wide-column entity's is its columns as one compact JSON object,
    `{"name": "value", ...}`, names spelled like keys and values like values."""

    def cell(value: bytes | Entity) -> str:
        if type(value) is Entity:
            columns = {ek(name): ev(data) for name, data in value.columns}
            return orjson.dumps(columns).decode()
        return ev(value)  # type: ignore[arg-type]  # bytes, the type test above says

    return cell


def _tsv_escape(text: str) -> str:
    # The PostgreSQL COPY / MySQL convention: a cell never holds a raw tab or line break.
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def renderer(
    fmt: OutputFormat | str,
    key_format: FieldFormat | str = FieldFormat.AUTO,
    value_format: FieldFormat | str = FieldFormat.AUTO,
    *,
    keys_only: bool = False,
    counts: FieldCounts | None = None,
) -> Render:
    """A function turning a batch into bytes of `fmt` (not `table`: see `render_table`);
    `counts` collects what the json value format wrapped (jsonl)."""
    fmt = OutputFormat(fmt)
    if fmt is OutputFormat.JSONL:
        return jsonl_renderer(key_format, value_format, keys_only=keys_only, counts=counts)
    if fmt is OutputFormat.TABLE:
        raise ValueError("a table is rendered a page at a time: use render_table")
    ek = text_encoder(key_format)
    ev = value_cell(ek, text_encoder(value_format))
    if fmt is OutputFormat.TSV:

        def render_tsv(batch: Sequence[Record]) -> bytes:
            if keys_only:
                lines = [_tsv_escape(ek(k)) + "\n" for k, _ in batch]
            else:
                lines = [f"{_tsv_escape(ek(k))}\t{_tsv_escape(ev(v))}\n" for k, v in batch]
            return "".join(lines).encode("utf-8", errors="surrogateescape")

        return render_tsv

    def render_csv(batch: Sequence[Record]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if keys_only:
            writer.writerows([(ek(k),) for k, _ in batch])
        else:
            writer.writerows([(ek(k), ev(v)) for k, v in batch])
        return buffer.getvalue().encode("utf-8", errors="surrogateescape")

    return render_csv


def header(fmt: OutputFormat | str, *, keys_only: bool = False) -> bytes:
    """The first line of a file in `fmt` (csv only: a spreadsheet expects column names)."""
    if OutputFormat(fmt) is OutputFormat.CSV:
        return b"key\n" if keys_only else b"key,value\n"
    return b""


def render_table(
    records: Sequence[Record],
    key_format: FieldFormat | str = FieldFormat.AUTO,
    value_format: FieldFormat | str = FieldFormat.AUTO,
    *,
    keys_only: bool = False,
    width: int = 100,
) -> str:
    """A page of records as an aligned two-column table, cells cut to fit `width` columns."""
    ek = text_encoder(key_format, for_table=True)
    ev = value_cell(ek, text_encoder(value_format, for_table=True))
    keys = [_one_line(ek(k)) for k, _ in records]
    if keys_only:
        head = ["KEY", *keys]
        return "\n".join(_cut(cell, width) for cell in head) + "\n"
    values = [_one_line(ev(v)) for _, v in records]
    key_width = min(max(map(len, ["KEY", *keys])), max(12, width // 2))
    value_width = max(8, width - key_width - 2)
    rows = [("KEY", "VALUE"), *zip(keys, values, strict=True)]
    return "".join(
        f"{_cut(k, key_width):<{key_width}}  {_cut(v, value_width)}".rstrip() + "\n"
        for k, v in rows
    )


def _one_line(text: str) -> str:
    return text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


class RecordWriter:
    """Streams rendered batches to a binary sink; counts the bytes it wrote."""

    def __init__(self, out: BinaryIO, render: Render, *, head: bytes = b"") -> None:
        self._out = out
        self._render = render
        self.bytes_written = 0
        if head:
            self._put(head)

    def _put(self, data: bytes) -> None:
        self._out.write(data)
        self.bytes_written += len(data)

    def write(self, batch: Sequence[Record]) -> None:
        if batch:
            self._put(self._render(batch))

    def flush(self) -> None:
        self._out.flush()
