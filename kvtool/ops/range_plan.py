"""Range workers' plan: whether workers read a range (the one worker policy of export and
count), and the chunks they split it into (see kvtool.ops.export_parallel)."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from kvtool.engine import Bounds, KeyOrder, LiveFile, key_order
from kvtool.engine.ondisk import sst_bytes
from kvtool.stream import ReadSpec

WORKERS = 2  # measured on 2 cores; more workers than cores only adds switching
MIN_SST_BYTES = 64 << 20  # below this one process is about as fast (startup dominates)
CHUNK_RECORDS = 50_000  # about 7 MB of JSON Lines at 140 bytes a record
BUFFER_LIMIT = 32 << 20  # bytes a worker renders ahead of its turn

Chunk = Bounds


def worker_count(workers: int | None, db_path: Path, spec: ReadSpec) -> int:
    """The one worker policy of export and count, once a caller's own reasons for one process
    are ruled out: `workers` when given (1 or less: one process), else WORKERS on a machine with
    two cores or more and MIN_SST_BYTES of SST files; one process where workers cannot split the
    range (see `range_workers_apply`) or cannot fork."""
    if (workers is not None and workers <= 1) or not hasattr(os, "fork"):
        return 1
    if workers is None and ((os.cpu_count() or 1) < 2 or sst_bytes(db_path) < MIN_SST_BYTES):
        return 1
    if not range_workers_apply(db_path, spec):
        return 1
    return workers or WORKERS


def range_workers_apply(db_path: Path, spec: ReadSpec) -> bool:
    """Whether range workers can read `spec`: the range is not empty and the key order is known
    (workers split the range at keys that only a known order can sort). The order comes from
    the OPTIONS file: the parent never opens the database before it forks."""
    order = key_order(db_path, spec.krange.cf)
    return order.known and not order.is_empty(spec.krange.bounds(order))


def _alphabet(used: bytes) -> bytes:
    """The byte values keys like these are made of, in order: every byte for binary keys; for
    text, all ten digits if one is used, the letters from `a` (or `A`) to the highest used (hex
    digits stop at `f`), and each other character used."""
    if any(byte < 0x20 or byte > 0x7E for byte in used):
        return bytes(range(256))
    chars = set(used)
    for first, last in ((0x30, 0x39), (0x61, 0x7A), (0x41, 0x5A)):
        seen = [byte for byte in used if first <= byte <= last]
        if seen:
            chars.update(range(first, (last if first == 0x30 else max(seen)) + 1))
    return bytes(sorted(chars))


def _between(a: bytes, b: bytes, parts: int) -> list[bytes]:
    """Up to `parts - 1` keys spread evenly between `a` and `b`: the up to 8 bytes after their
    common prefix read as a number whose digits are the characters such keys are made of
    (`_alphabet`). Keys of decimal digits then split by decimal value: read in base 256, most cut
    points fell between "5\x3a" and "5\xff", where no such key lies (a 2M-key database of
    `key:000000000000`-style keys had 18 of 44 chunks empty and one of 410,000 records, which a
    worker then read alone at the end). Only a hint of where records lie: any keys are correct
    split points."""
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    tail_a, tail_b = a[prefix : prefix + 8], b[prefix : prefix + 8]
    if not tail_a + tail_b:
        return []
    alphabet = _alphabet(tail_a + tail_b)
    rank = {byte: i for i, byte in enumerate(alphabet)}
    base, width = len(alphabet), max(len(tail_a), len(tail_b))

    def value(tail: bytes) -> int:
        # A shorter key sorts first: its missing characters count as the lowest.
        n = 0
        for byte in tail.ljust(width, alphabet[:1]):
            n = n * base + rank[byte]
        return n

    low, high = value(tail_a), value(tail_b)
    if high - low < parts:
        return []
    head = a[:prefix]
    out = []
    for i in range(1, parts):
        n = low + (high - low) * i // parts
        digits = bytearray(width)
        for at in range(width - 1, -1, -1):
            n, digit = divmod(n, base)
            digits[at] = alphabet[digit]
        out.append(head + bytes(digits))
    return out


def effective_bounds(spec: ReadSpec, order: KeyOrder) -> Bounds:
    """The range's bounds in `order` with `after` folded in."""
    bounds = spec.krange.bounds(order)
    if spec.after is not None:
        bounds = order.after(bounds, spec.after, reverse=spec.krange.reverse)
    return bounds


def _finer_tail(
    inside: list[bytes],
    files: Sequence[LiveFile],
    cf: str | None,
    order: KeyOrder,
    bounds: Bounds,
    reverse: bool,
    pieces: int,
) -> list[bytes]:
    """Cut points that split each of the last `pieces` chunks (in output order) of the plan cut
    at `inside` (sorted) into `pieces`; the range's far end is its bound, or its files' last key
    where that comes first."""
    edges = [
        k
        for f in files
        if f.column_family in (cf, None)
        for k in (f.smallest_key, f.largest_key)
        if k
    ]
    if not edges:
        return []
    lt = order.lt
    if reverse:  # the output ends at the range's first keys
        first = order.sorted(edges)[0]
        if bounds.lower is not None and lt(first, bounds.lower):
            first = bounds.lower
        ends = [first, *[c for c in inside if lt(first, c)][:pieces]]
    else:
        last = order.sorted(edges)[-1]
        if bounds.upper is not None and lt(bounds.upper, last):
            last = bounds.upper
        ends = [*[c for c in inside if lt(c, last)][-pieces:], last]
    cuts: list[bytes] = []
    for a, b in itertools.pairwise(ends):
        low, high = sorted((a, b))
        cuts += _between(low, high, pieces)
    return cuts


def plan_chunks(
    files: Sequence[LiveFile],
    spec: ReadSpec,
    order: KeyOrder,
    *,
    target: int = CHUNK_RECORDS,
    workers: int = 1,
) -> list[Chunk]:
    """The range cut into chunks of about `target` records, in output order; keys sort in
    `order` (the column family's key order: a file's smallest key is smallest in it).

    Cut points are the SST files' first keys and keys spread inside each file by its entry
    count; chunk sizes follow the data only as well as those hints do, never correctness.
    Inner chunk edges are plain [lower, upper) keys; the range's own edges keep their kind.

    For `workers` readers, the last `workers` chunks in output order are cut `workers` times
    finer (guided scheduling): the chunks are handed out in order, and whoever takes the last
    one reads it while the others have nothing left. With 9 even chunks of the 2M-record
    benchmark on 2 workers, one worker read the ninth alone, a ninth of the run's reading.
    """
    bounds = effective_bounds(spec, order)
    cf = spec.krange.cf
    cuts: set[bytes] = set()
    for f in files:
        if f.column_family not in (cf, None) or not f.smallest_key:
            continue
        cuts.add(f.smallest_key)
        parts = math.ceil(f.entries / target)
        if parts > 1:
            low, high = sorted((f.smallest_key, f.largest_key))
            cuts.update(_between(low, high, parts))
    lt = order.lt
    lower, upper = bounds.lower, bounds.upper

    def within(keys: Iterable[bytes]) -> list[bytes]:
        return order.sorted(
            c for c in keys if (lower is None or lt(lower, c)) and (upper is None or lt(c, upper))
        )

    inside = within(cuts)
    if not inside:
        return [bounds]
    if workers > 1:
        inside = within(
            {*inside, *_finer_tail(inside, files, cf, order, bounds, spec.krange.reverse, workers)}
        )
    chunks = [Bounds(lower, inside[0], bounds.lower_open)]
    chunks += [Bounds(a, b) for a, b in itertools.pairwise(inside)]
    chunks.append(Bounds(inside[-1], upper, upper_closed=bounds.upper_closed))
    return chunks[::-1] if spec.krange.reverse else chunks


# -- messages between workers and the parent ------------------------------------------------------
