"""The export sink: header, records, a footer only on a complete run, commit or `.partial`."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pytest

from kvtool.formats.jsonl import Record
from kvtool.formats.sink import ExportSink


def _render(batch: Sequence[Record]) -> bytes:
    return b"".join(b"%s=%s\n" % (k, v) for k, v in batch)


def test_a_footer_is_written_once_the_run_is_complete(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with ExportSink(path=target, out=None, render=_render, head=b"[\n", footer=b"]\n") as sink:
        sink.write_head()
        sink.write([(b"a", b"1"), (b"b", b"2")])
        assert not target.exists()  # written beside it, renamed at the end
        sink.finish()
        assert sink.end(stopped=False, cursor=None) == target
    assert target.read_bytes() == b"[\na=1\nb=2\n]\n"
    assert sink.bytes_written == len(target.read_bytes())
    assert not ExportSink.concatenable(target, footer=b"]\n")
    assert not ExportSink.concatenable(tmp_path / "out.jsonl.gz")
    assert ExportSink.concatenable(target) and ExportSink.concatenable(None)


def test_a_stopped_run_keeps_a_partial_without_the_footer(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    sink = ExportSink(path=target, out=None, render=_render, head=b"[\n", footer=b"]\n")
    sink.write_head()
    sink.write([(b"a", b"1")])
    sink.flush()
    kept = sink.end(stopped=True, cursor="kv2.x")
    assert kept is not None and kept.name == "out.txt.partial"
    assert kept.read_bytes() == b"[\na=1\n"
    assert not target.exists()


def test_a_failed_run_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), ExportSink(path=target, out=None, render=_render) as sink:
        sink.write([(b"a", b"1")])
        raise RuntimeError("the read failed")
    assert list(tmp_path.iterdir()) == []


def test_a_stream_is_the_callers(tmp_path: Path) -> None:
    out = io.BytesIO()
    sink = ExportSink(path=None, out=out, render=_render, footer=b"end\n")
    sink.write([(b"k", b"v")])
    sink.finish()
    assert sink.end(stopped=False, cursor=None) is None
    assert out.getvalue() == b"k=v\nend\n"
