"""Parsing the units options are given in: durations (30s, 5m) and sizes (10MB, 1MiB)."""

from __future__ import annotations

import math
import re

from kvtool.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_SIZE_UNITS_BINARY = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


# Bounds for every duration and size option: past them a value is a typo, not a wish (and
# `--timeout 1e23` or a 400-digit size would overflow a timer, a float or RocksDB's int64).
MAX_DURATION = 366 * 86400.0  # 366d
MAX_SIZE = 2**50  # 1 PiB (per second, for rates)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def parse_duration(text: str, *, option: str = "duration", zero_ok: bool = False) -> float:
    """Seconds from `1.5`, `500ms`, `30s`, `5m`, `2h`, `1d`; a bare number is seconds.

    Empty, negative, NaN, infinite, over 366 days, or zero unless `zero_ok`: a usage error."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(
            f"{option}: {_shown(text)} is not a duration", hint="write e.g. 30s, 500ms, 5m, 2h"
        )
    unit = (match.group(2) or "s").lower()
    seconds = float(match.group(1)) * _DURATION_UNITS[unit]
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise UsageError(f"{option}: {_shown(text)} is too long", hint="at most 366d")
    if seconds <= 0 and not zero_ok:
        raise UsageError(f"{option}: {_shown(text)} must be more than 0")
    return seconds


def parse_size(text: str, *, option: str = "size", zero_ok: bool = False) -> int:
    """Bytes from `4096`, `64K`, `10MB` (decimal) or `1MiB` (binary).

    Empty, negative, NaN, infinite, over 1 PiB, or zero unless `zero_ok`: a usage error."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(
            f"{option}: {_shown(text)} is not a size", hint="write e.g. 4096, 64KB, 1MiB"
        )
    number, unit = float(match.group(1)), match.group(2).lower()
    letter = unit[:1] if unit[:1] in "kmgt" else ""
    factor = _SIZE_UNITS_BINARY[letter] if "i" in unit and letter else _SIZE_UNITS[letter]
    size = number * factor
    if not math.isfinite(size) or size > MAX_SIZE:
        raise UsageError(f"{option}: {_shown(text)} is too large", hint="at most 1PiB")
    if int(size) <= 0 and not zero_ok:
        raise UsageError(f"{option}: {_shown(text)} must be at least 1 byte")
    return int(size)


def format_size(n: float) -> str:
    """Human bytes: 1.5 MB (decimal units, as disk tools print)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover
