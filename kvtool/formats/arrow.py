"""How kvtool imports pyarrow (the optional extra `kvtool[parquet]`): only when Parquet is asked
for, as exit 69 naming the install command when it is missing, and without NumPy in kvtool's
own process where the installed pyarrow allows it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from kvtool.errors import UnavailableError

INSTALL_HINT = "pip install 'kvtool[parquet]'"


def pyarrow(*, numpy: bool = True) -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or UnavailableError (exit 69) saying how to install them.

    `numpy=False` (the kvtool process's choice, never a library caller's: it lasts for the
    process) has the first import leave NumPy out (`_without_numpy`) and make malloc Arrow's
    default allocator, unless ARROW_DEFAULT_MEMORY_POOL says otherwise. Parquet's writer
    allocates some of its buffers from that default whatever `pa.set_memory_pool` says, and
    the default, mimalloc, kept them mapped: writing one 33 MiB value kept 106 MiB more RSS
    after the file was closed; with malloc, none."""
    try:
        fresh = "pyarrow" not in sys.modules and "numpy" not in sys.modules
        if not numpy and fresh:
            os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
            if _numpy_optional():
                return _without_numpy()
        return _import()
    except ImportError:
        raise UnavailableError(
            "Parquet needs pyarrow, which is not installed", hint=INSTALL_HINT
        ) from None


def _import() -> tuple[Any, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


def _numpy_optional() -> bool:
    """Whether the installed pyarrow runs without NumPy (18 and later: apache/arrow#41904 made
    it optional, #44148 dropped the dependency), read from its version file without importing
    it; False when that cannot be told."""
    import importlib.util
    import re

    try:
        spec = importlib.util.find_spec("pyarrow")
        if spec is None or spec.origin is None:
            return False
        text = (Path(spec.origin).parent / "_generated_version.py").read_text()
    except (ImportError, OSError, ValueError):
        return False
    found = re.search(r"""version\s*=\s*['"](\d+)\.""", text)
    return found is not None and int(found.group(1)) >= 18


def _without_numpy() -> tuple[Any, Any]:
    """pyarrow imported without NumPy, which pyarrow treats as optional (`lib.pyx`) and kvtool
    never needs (it hands pyarrow lists and buffers, never arrays). NumPy was half of pyarrow's
    import, paid before the range workers start: 0.14 s of CPU against 0.06 s without it. The
    block lasts for the import only."""
    sys.modules["numpy"] = None  # type: ignore[assignment]  # import numpy: ImportError
    try:
        return _import()
    finally:
        if "numpy" in sys.modules and sys.modules["numpy"] is None:
            del sys.modules["numpy"]
