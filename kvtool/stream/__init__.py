"""Record streams as plain generators: range -> paginate -> rate limit -> deadline -> stats tap."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kvtool.stream.cursor import Cursor
    from kvtool.stream.keyrange import KeyRange
    from kvtool.stream.pacing import SignalGuard, Stopper, StopRequested, TokenBucket
    from kvtool.stream.pipeline import (
        COUNT_STEP,
        ScanStats,
        count_marked,
        count_step,
        count_steps,
        limited,
        paced,
        read_batches,
        tapped,
    )
    from kvtool.stream.source import ReadSpec, read_stage, record_stream

__all__ = [
    "COUNT_STEP",
    "Cursor",
    "KeyRange",
    "ReadSpec",
    "ScanStats",
    "SignalGuard",
    "StopRequested",
    "Stopper",
    "TokenBucket",
    "count_marked",
    "count_step",
    "count_steps",
    "limited",
    "paced",
    "read_batches",
    "read_stage",
    "record_stream",
    "tapped",
]

# Where each name lives, imported when first asked for: every kvtool run imports
# kvtool.stream.memory and kvtool.stream.pacing (kvtool.cli.app), which need none of the others.
_HOMES: dict[str, str] = {
    "Cursor": "cursor",
    "KeyRange": "keyrange",
    **dict.fromkeys(("SignalGuard", "Stopper", "StopRequested", "TokenBucket"), "pacing"),
    **dict.fromkeys(
        (
            "COUNT_STEP",
            "ScanStats",
            "count_marked",
            "count_step",
            "count_steps",
            "limited",
            "paced",
            "read_batches",
            "tapped",
        ),
        "pipeline",
    ),
    **dict.fromkeys(("ReadSpec", "read_stage", "record_stream"), "source"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kvtool.stream' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kvtool.stream.{home}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
