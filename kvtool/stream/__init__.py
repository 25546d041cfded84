"""Record streams as plain generators: range -> paginate -> rate limit -> deadline -> stats tap."""

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
