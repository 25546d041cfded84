"""Readers of RocksDB's on-disk formats (SST tables, write-ahead logs, MANIFESTs) from the files
alone: no native handle, no engine, nothing written (docs/design.md, Layers)."""

from kvtool.ondisk.coding import Damage, FormatError

__all__ = ["Damage", "FormatError"]
