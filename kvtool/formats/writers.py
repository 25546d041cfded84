"""Record renderers for every output format (jsonl, csv, tsv, table) and the writer that streams
the helpers that write rendered bytes whole; kvtool.formats.sink owns where they go."""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Callable, Sequence
from typing import BinaryIO

import orjson

from kvtool.engine.base import Entity
from kvtool.formats.codecs import printable
from kvtool.formats.jsonl import Record, Render, jsonl_renderer
from kvtool.formats.records import FieldCounts, FieldFormat, encoder


class OutputFormat(str, enum.Enum):
    """Every way records are rendered; `table` is for people on a page (scan), not a stream."""

    JSONL = "jsonl"
    CSV = "csv"
    TSV = "tsv"
    TABLE = "table"


class ExportFormat(str, enum.Enum):
    """The output formats an export writes: `OutputFormat` but table, and parquet (a dataset
    directory, kvtool.formats.dataset)."""

    JSONL = "jsonl"
    CSV = "csv"
    TSV = "tsv"
    PARQUET = "parquet"


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


def footer(fmt: OutputFormat | str, *, keys_only: bool = False) -> bytes:
    """What ends a complete file in `fmt`, after its last record (none of today's formats has one;
    a format with a footer, such as a JSON array or Parquet, is written by one process)."""
    OutputFormat(fmt)
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
    key_width = min(max(map(_columns, ["KEY", *keys])), max(12, width // 2))
    value_width = max(8, width - key_width - 2)
    rows = [("KEY", "VALUE"), *zip(keys, values, strict=True)]
    return "".join(
        f"{_pad(_cut(k, key_width), key_width)}  {_cut(v, value_width)}".rstrip() + "\n"
        for k, v in rows
    )


def _one_line(text: str) -> str:
    return text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def _columns(text: str) -> int:
    """Terminal columns `text` takes: a CJK character takes two, a combining mark none. Cells
    hold only printable text (`printable` escaped the rest), so wcwidth knows every one."""
    from wcwidth import wcswidth

    return max(wcswidth(text), 0) if not text.isascii() else len(text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - _columns(text), 0)


def _cut(text: str, width: int) -> str:
    """`text` cut to at most `width` columns, "..." marking the cut (never half a wide char)."""
    if _columns(text) <= width:
        return text
    room = max(width - 3, 0)
    from wcwidth import wcwidth

    used = 0
    for i, ch in enumerate(text):
        used += max(wcwidth(ch), 0)
        if used > room:
            return text[:i] + "..."
    return text + "..."


def write_all(out: BinaryIO, data: bytes) -> None:
    """Write every byte of `data` to `out`.

    A raw (unbuffered) stream, such as stdout under PYTHONUNBUFFERED=1 or `python -u`, returns
    a short count when a signal interrupts a write to a full pipe; the rest would be lost and
    the reader would get a torn record. Buffered streams write everything in one call.
    """
    written = out.write(data)
    if written is None or written >= len(data):
        return
    view = memoryview(data)[written:]
    while view:
        n = out.write(view)
        view = view[n or 0 :]


# What a terminal would act on instead of showing: C0 controls but tab and line feed (ESC starts
# the sequences that move the cursor, retitle the window or write to the clipboard), DEL, the C1
# controls (U+0080-U+009F; U+009B is a one-character CSI to many terminals), and bytes that are
# not UTF-8 (a lone 0x9b is CSI to a terminal in a Latin-1 locale): matched on the text decoded
# with surrogateescape, where an invalid byte is a lone surrogate.
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\udc80-\udcff]+")


def _escape(match: re.Match[str]) -> str:
    return "".join(f"\\x{b:02x}" for b in match.group().encode("utf-8", "surrogateescape"))


def terminal_safe(data: bytes) -> bytes:
    """`data` with every byte a terminal would act on shown as a `\\xNN` escape."""
    text = data.decode("utf-8", "surrogateescape")
    return _TERMINAL_UNSAFE.sub(_escape, text).encode("utf-8")


def terminal_safe_render(render: Render) -> Render:
    """`render`, made safe for a terminal (see `terminal_safe`): for stdout that is a tty."""

    def safe(batch: Sequence[Record]) -> bytes:
        return terminal_safe(render(batch))

    return safe


class TerminalSafeStream:
    """A binary stream writing `terminal_safe` bytes to another: for a tty stdout."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def write(self, data: bytes) -> int:
        self._out.write(terminal_safe(bytes(data)))
        return len(data)

    def flush(self) -> None:
        self._out.flush()
