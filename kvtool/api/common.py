"""What the library's functions share: the argument types (paths, keys, values, format names) and
turning keyword arguments into the ReadSpec and the binary stream that kvtool.ops take."""

from __future__ import annotations

import io
import os
from typing import IO, BinaryIO, Literal, cast

from kvtool.stream.keyrange import KeyRange
from kvtool.stream.source import ReadSpec

PathLike = str | os.PathLike[str]
Key = bytes | str  # a str is its UTF-8 bytes
Value = bytes | str
FieldFormatName = Literal["auto", "utf8", "hex", "base64", "json"]


def as_bytes(data: Key | None) -> bytes | None:
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    raise TypeError(f"a key or value is bytes or str, not {type(data).__name__}")


def read_spec(
    *,
    cf: str,
    prefix: Key | None,
    start: Key | None,
    end: Key | None,
    reverse: bool,
    after: str | None,
    limit: int | None,
    keys_only: bool = False,
    timeout: float | None = None,
    rate: float | None = None,
    columns: bool = True,
) -> ReadSpec:
    if limit is not None and limit < 0:
        raise ValueError("limit must be 0 or more")
    krange = KeyRange.build(
        cf=cf, prefix=as_bytes(prefix), start=as_bytes(start), end=as_bytes(end), reverse=reverse
    )
    spec = ReadSpec(
        krange=krange,
        limit=limit,
        keys_only=keys_only,
        timeout=timeout,
        rate=rate,
        columns=columns,
    )
    return spec.with_cursor(after)  # a cursor of another range is a UsageError


def binary(output: IO[bytes] | IO[str]) -> BinaryIO:
    """A binary stream for `output`: itself, or the buffer under a text stream (flushed first,
    so what was printed before comes first)."""
    if isinstance(output, io.TextIOBase):
        output.flush()
        buffer = getattr(output, "buffer", None)
        if buffer is None:
            raise TypeError("a text stream without a binary buffer: pass a binary stream")
        return cast(BinaryIO, buffer)
    return cast(BinaryIO, output)
