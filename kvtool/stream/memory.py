"""Allocator tuning for streaming: keep freed batch memory instead of returning it each batch,
and collect cyclic garbage less often while batches of records come and go.

Both settings are the whole process's, so they are the command line's alone: they apply only
once `allow_process_tuning()` was called (kvtool.cli.app does, for the kvtool process). A library
caller's process keeps its own allocator and garbage-collector settings.
"""

from __future__ import annotations

import gc
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_done = False
_allowed = False
# Python's default first-generation threshold.
_GC_DEFAULT = 700
STREAMING_GC_THRESHOLD = 50_000


def allow_process_tuning() -> None:
    """Let `collect_less` and `keep_freed_memory` change process-wide settings from now on: for
    a process that is kvtool (the CLI), never for an application that calls the library."""
    global _allowed
    _allowed = True


def process_tuning_allowed() -> bool:
    return _allowed


def collect_less(threshold: int = STREAMING_GC_THRESHOLD) -> None:
    """Run the cyclic garbage collector after `threshold` new containers, not 700.

    A column-aware read (wide-column entities) makes three containers per record (the record,
    rocksdict's column list and its tuple) that live for one batch and hold no cycles; with the
    default threshold the collector ran every few hundred records and scanned each batch again
    and again: 1.53 s of CPU against 1.31 s for a 1M-record export (min of 4 runs, CPU time of
    `kvtool export DB -q --workers 1` on `kvtool generate --keys 1000000`). Cycles are still
    collected, later. Left alone when the application set its own threshold, and unless
    `allow_process_tuning()` was called.
    """
    if _allowed and gc.get_threshold()[0] == _GC_DEFAULT:
        gc.set_threshold(threshold)


def keep_freed_memory(trim_threshold: int = 64 << 20, top_pad: int = 16 << 20) -> None:
    """Stop glibc from shrinking the heap after every batch.

    Each batch allocates and frees a few hundred KB at the heap's top; by default glibc returns
    that memory to the kernel (brk) and faults it back in for the next batch, which made a 2M
    record export spend more time in the kernel (page faults) than in Python: 6.4 s against
    1.8 s with this setting (measured by bench/bench_export.py). Memory stays bounded: at most
    `trim_threshold` freed bytes are kept. A no-op where the C library is not glibc, and
    unless `allow_process_tuning()` was called.
    """
    global _done
    if _done or not _allowed or not sys.platform.startswith("linux"):
        return
    _done = True
    import ctypes  # here: only a CLI run that streams pays for loading it

    try:
        # The process's own symbols (CDLL(None)) hold the C library's mallopt: no
        # ctypes.util.find_library, which runs `ldconfig -p` (a subprocess) to name libc.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    mallopt(_M_TOP_PAD, top_pad)
