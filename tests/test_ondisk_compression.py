"""Block decompression: cramjam's native Snappy and LZ4 decoders and kvtool's own Python ones
(the fallback without cramjam) give the same bytes for every block of tables `ldb` wrote, and a
damaged block is a FormatError through either, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvtool.ondisk import compression
from kvtool.ondisk.coding import FormatError, Reader
from kvtool.ondisk.sst import TRAILER, TableReader

from .oracles import ldb_load, ldb_scan

CODECS = {"snappy": 0x1, "lz4": 0x4, "lz4hc": 0x5}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    records = [(b"key%05d" % i, (b"value-%d-" % i) * (i % 13 + 1)) for i in range(600)]
    out = {}
    for name in CODECS:
        db = tmp_path_factory.mktemp(name) / "c.db"
        ldb_load(db, records, f"--compression_type={name}", "--block_size=1024")
        (out[name],) = db.glob("*.sst")
    return out


def raw_blocks(path: Path) -> list[tuple[int, bytes]]:
    """(compression type, stored bytes) of each data block."""
    with TableReader(path) as reader:
        out = []
        for handle in reader.data_handles():
            raw = reader._bytes(handle.offset, handle.size + TRAILER)
            out.append((raw[handle.size], raw[: handle.size]))
        return out


def python_decoder(kind: int, data: bytes) -> bytes:
    if kind == 0x1:
        return compression.snappy_decompress(data)
    reader = Reader(data)
    size = reader.varint(32)  # format_version >= 2: the decompressed size first
    return compression.lz4_block_decompress(data[reader.pos :], size)


@pytest.mark.parametrize("name", list(CODECS))
def test_native_and_python_decoders_agree(tables: dict[str, Path], name: str) -> None:
    assert compression._native is not None, "cramjam is a dependency (pyproject.toml)"
    blocks = [(kind, data) for kind, data in raw_blocks(tables[name]) if kind == CODECS[name]]
    assert len(blocks) > 5
    for kind, data in blocks:
        native = compression.decompress(kind, data, format_version=5)
        assert native == python_decoder(kind, data)


@pytest.mark.parametrize("name", list(CODECS))
def test_python_fallback_reads_what_ldb_wrote(
    tables: dict[str, Path], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compression, "_native", None)
    with TableReader(tables[name]) as reader:
        keys = [key[:-8] for h in reader.data_handles() for key, _ in reader.entries(h)]
    assert keys == [k for k, _ in ldb_scan(tables[name].parent)]


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("name", list(CODECS))
def test_a_damaged_block_is_a_format_error(
    tables: dict[str, Path], name: str, native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not native:
        monkeypatch.setattr(compression, "_native", None)
    kind, data = max(raw_blocks(tables[name]), key=lambda b: len(b[1]))
    for damaged in (data[: len(data) // 2], data[:3] + b"\xff" * (len(data) - 3)):
        with pytest.raises(FormatError):
            compression.decompress(kind, damaged, format_version=5, offset=4096)
