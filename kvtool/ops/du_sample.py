"""`du --sample`: the usage report estimated from a simple random sample of each column family's
SST data blocks, read from the files, with the error of each estimate."""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kvtool.errors import UsageError
from kvtool.ondisk.coding import FormatError, Reader, fixed32_at
from kvtool.ondisk.sst import TableReader
from kvtool.ondisk.writebatch import entity_column_bytes
from kvtool.ops.du import (
    ERROR_SIGMAS,
    CfUsage,
    Group,
    Grouping,
    Usage,
    add_up,
    current_version,
    table_usage,
)
from kvtool.ops.ondisk_errors import reading

# Types of the records a read returns (puts, entities, BlobDB references); tombstones, merge
# operands and older versions are not records.
_RECORD_TYPES = frozenset({0x1, 0x11, 0x16, 0x18})
_ENTITY = 0x16  # a wide-column entity: its value is the columns, serialized


@dataclass
class _BlockSums:
    entries: int = 0
    entry_bytes: int = 0
    groups: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # records, bytes


def sample_usage(
    db_path: Path,
    grouping: Grouping,
    fraction: float,
    *,
    cfs: list[str] | None = None,
    top: int = 10,
    seed: int | None = None,
) -> Usage:
    """Estimate from a simple random sample of each column family's SST data blocks.

    A ratio estimate: the table properties give each column family's exact totals over all
    its files (X) of record entries (every entry but tombstones and merge operands) and of
    every entry's key+value bytes; a prefix's share of them in the sampled blocks (R = sum y /
    sum x, y its records or bytes, x the blocks' record entries or every entry's bytes) times
    X is its estimate. Its standard error is N * sqrt((1 - n/N) * var(y - R x) / n) over the
    n of N blocks; the stated error is ERROR_SIGMAS of them (`_Measure.wald`), or for a prefix
    the far end of a score interval of its share if larger (`_Measure.wilson`: seen in few
    blocks). Each estimate is within its error with a probability of about 99.7%. What the
    sample cannot see: an older version that a newer write or a tombstone hides is a record
    entry until compaction drops it; merge operands are no records (a note counts them), so a
    key that only merges wrote is missing; tombstones' and operands' bytes are in X; data
    only in the WAL or memtables is not in the files (a note says how much WAL there is);
    values in BlobDB blob files count as their references. A wide-column entity counts its
    column names and values (exact du's and export's bytes), read from its serialized header.

    The blocks are found through each chosen file's index, read at the chosen entries only
    where the index allows (sst.TableReader.data_handles_at)."""
    if not 0 < fraction <= 1:
        raise UsageError("--sample takes a fraction in (0, 1], e.g. 0.01")
    with reading(db_path, "database"):
        return _sample(db_path, grouping, fraction, cfs, top, seed)


def _sample(
    db_path: Path,
    grouping: Grouping,
    fraction: float,
    cfs: list[str] | None,
    top: int,
    seed: int | None,
) -> Usage:
    group_of = grouping.function()
    rng = random.Random(seed)
    version = current_version(db_path)
    version_cfs = [cf.name for cf in version.column_families.values()]
    for name in cfs or []:
        if name not in version_cfs:
            raise UsageError(f"no column family {name!r}")
    tables, notes = table_usage(db_path, version)
    for t in tables:
        # A file a live owner's compaction deleted since the MANIFEST was read is left out
        # (its note says so); a damaged one is an error, as in every other read.
        if t.error is not None and not isinstance(t.error, FileNotFoundError):
            raise t.error
    gone = sum(t.error is not None for t in tables)
    if gone:
        notes.append(f"{gone} file(s) gone since the MANIFEST was read are not in the estimate")
    names = cfs or sorted(version_cfs, key=lambda c: (c != "default", c))
    out: list[CfUsage] = []
    sampled = total_blocks = 0
    for name in names:
        usage = CfUsage(name)
        out.append(usage)
        files = [t for t in tables if t.cf == name and t.error is None]
        n_blocks = sum(t.data_blocks for t in files)
        total_blocks += n_blocks
        if not n_blocks:
            continue
        n = min(n_blocks, max(2, math.ceil(fraction * n_blocks)))
        sampled += n
        chosen = sorted(rng.sample(range(n_blocks), n))
        blocks: list[_BlockSums] = []
        first = 0
        for t in files:
            lo = bisect.bisect_left(chosen, first)
            hi = bisect.bisect_left(chosen, first + t.data_blocks)
            mine = [i - first for i in chosen[lo:hi]]
            first += t.data_blocks
            if not mine:
                continue
            with TableReader(db_path / t.file) as reader:
                for handle in reader.data_handles_at(mine):
                    data = reader.block(handle)
                    blocks.append(_read_block(data, handle.offset, group_of, usage, top))
        known_records = sum(t.record_entries for t in files)
        _estimate(usage, blocks, n_blocks, known_records, sum(t.raw_bytes for t in files))
    operands = sum(t.merge_operands for t in tables if t.cf in names and t.error is None)
    if operands:
        # A key that only merges wrote has no record entry: without this note a database of
        # merge operands reads as 0 records with an error of 0.
        notes.append(
            f"{operands} merge operand entries are not counted: a key that only merges wrote "
            "is missing from the estimate (the exact mode reads its merged value)"
        )
    blobs = list(db_path.glob("*.blob"))
    if blobs:
        # The sampled blocks hold only a reference to each such value (about 10 bytes).
        notes.append(
            f"{sum(p.stat().st_size for p in blobs)} bytes of BlobDB blob files "
            f"({len(blobs)} file(s)) are not sampled: their values count as the references "
            "in the SST files (the exact mode reads them)"
        )
    wal = sum(p.stat().st_size for p in db_path.glob("*.log"))
    if wal:
        notes.append(f"{wal} bytes of WAL are not sampled (kvtool wal shows them)")
    notes.append(
        "records: the record entries of the SST files, so an older version that a newer "
        "write or a tombstone hides counts until compaction drops it"
    )
    if top:
        notes.append("largest records: among the sampled blocks only")
    return Usage(
        db_path,
        "sample",
        fraction,
        out,
        tables,
        sampled_blocks=sampled,
        total_blocks=total_blocks,
        notes=notes,
    )


def _read_block(
    data: bytes, offset: int, group_of: Callable[[bytes], bytes], usage: CfUsage, top: int
) -> _BlockSums:
    """One pass over a sampled data block's entries: the block's sums for the estimate (every
    entry's bytes, each group's records and bytes), and its records added to the column
    family's sampled sums, value sizes and largest records.

    The hot loop of --sample, so it walks the block itself (the entry format of
    block.data_entries: shared, unshared and value lengths, then the key's new bytes and the
    value, which it never copies) and keeps to locals: a group's records are adjacent (keys
    come in order), so its sums are looked up when the group changes; equal value sizes are
    counted as a run; the largest records are compared with the smallest kept."""
    end = len(data) - 4
    if end < 0:
        raise FormatError(f"block of {len(data)} bytes", offset)
    packed = fixed32_at(data, end)
    if packed >> 31:  # a data block hash index sits between the restarts and the footer
        if end < 2:
            raise FormatError("block too short for its hash index", offset)
        end -= 2 + (data[end - 2] | (data[end - 1] << 8))
    limit = end - 4 * (packed & 0x7FFFFFFF)
    if not packed & 0x7FFFFFFF or limit < 0:
        raise FormatError(f"block has {packed & 0x7FFFFFFF} restart points", offset)
    groups: dict[bytes, list[int]] = {}  # group -> [records, key bytes, value bytes]
    sizes, largest = usage.value_sizes, usage.largest
    floor = (largest[0][0] if len(largest) >= top else -1) if top else 1 << 62
    types = _RECORD_TYPES
    pos = n = nbytes = run = 0
    key = b""
    last: bytes | None = None
    current: list[int] = []
    last_vl = -1
    while pos < limit:
        shared, unshared, vl = data[pos], data[pos + 1], data[pos + 2]
        if (shared | unshared | vl) < 128:  # nearly always: one-byte varints
            pos += 3
        else:
            reader = Reader(data[:limit], pos, base=offset)
            shared, unshared, vl = reader.varint(32), reader.varint(32), reader.varint(32)
            pos = reader.pos
        start = pos
        pos += unshared + vl
        if shared > len(key) or pos > limit or shared + unshared < 8:
            raise FormatError("entry runs past its block or its key's prefix", offset + start)
        key = key[:shared] + data[start : start + unshared]
        kl = len(key)
        n += 1
        nbytes += kl + vl
        # An internal key ends in 8 bytes (LE) whose lowest is the type.
        kind = key[-8]
        if kind not in types:
            continue
        if kind == _ENTITY:
            # Its columns' names and values, what exact du and export count, not the bytes
            # of their serialization (about 3% more with short names: lengths, a version).
            vl = entity_column_bytes(data, start + unshared, vl, offset)
        user = key[:-8]
        kl -= 8
        g = group_of(user)
        if g != last:
            found = groups.get(g)
            if found is None:
                found = groups[g] = [0, 0, 0]
            current, last = found, g
        current[0] += 1
        current[1] += kl
        current[2] += vl
        if vl != last_vl:
            if run:
                b = last_vl.bit_length()
                sizes[b] = sizes.get(b, 0) + run
            last_vl, run = vl, 0
        run += 1
        if kl + vl > floor:
            if len(largest) < top:
                heapq.heappush(largest, (kl + vl, user, vl))
            else:
                heapq.heapreplace(largest, (kl + vl, user, vl))
            if len(largest) >= top:
                floor = largest[0][0]
    if run:
        b = last_vl.bit_length()
        sizes[b] = sizes.get(b, 0) + run
    into = usage.groups
    for g, (records, key_bytes, value_bytes) in groups.items():
        mine = into.get(g)
        if mine is None:
            mine = into[g] = Group()
        mine.records += records
        mine.key_bytes += key_bytes
        mine.value_bytes += value_bytes
    return _BlockSums(n, nbytes, {g: (r, kb + vb) for g, (r, kb, vb) in groups.items()})


def _estimate(
    usage: CfUsage, blocks: list[_BlockSums], total: int, known_records: int, known_bytes: int
) -> None:
    """Turn the sampled sums into ratio estimates, with the error of each. Records are
    estimated against the record entries the table properties count exactly (the total is
    that count), bytes against every entry's bytes. A prefix is in few of the blocks: its
    sums run over those (`_Measure`), not over every block drawn."""
    visible = [
        (sum(r for r, _ in b.groups.values()), sum(v for _, v in b.groups.values())) for b in blocks
    ]
    in_records = [r for r, _ in visible]
    records = _Measure(in_records, in_records, total)
    nbytes = _Measure([b.entry_bytes for b in blocks], [v for _, v in visible], total)
    seen: dict[bytes, list[tuple[int, int, int]]] = {}  # group -> (block, records, bytes)
    for i, block in enumerate(blocks):
        for name, (r, v) in block.groups.items():
            seen.setdefault(name, []).append((i, r, v))
    r_scale = known_records / (records.sum_x or 1)
    b_scale = known_bytes / (nbytes.sum_x or 1)
    for name, group in usage.groups.items():
        share = group.key_bytes / (group.bytes or 1)
        group.records = round(group.records * r_scale)
        estimated_bytes = group.bytes * b_scale
        group.key_bytes = round(estimated_bytes * share)
        group.value_bytes = round(estimated_bytes) - group.key_bytes
        drawn = seen[name]
        group.records_error = records.error([(i, r) for i, r, _ in drawn], known_records)
        group.bytes_error = nbytes.error([(i, v) for i, _, v in drawn], known_bytes)
    usage.value_sizes = {b: round(c * r_scale) for b, c in usage.value_sizes.items()}
    add_up(usage)
    usage.total.records = known_records  # the groups' rounded estimates add up to about it
    usage.total.records_error = 0.0
    usage.total.bytes_error = nbytes.wald(list(enumerate(nbytes.visible)))


class _Measure:
    """One measure (records or bytes) of the blocks drawn: each block's x (every entry's, the
    base the table properties count) and visible records' sum, for the errors of estimates
    whose y is nonzero in few blocks (given as (block, y) pairs)."""

    def __init__(self, x: list[int], visible: list[int], total: int) -> None:
        self.x, self.visible, self.total, self.n = x, visible, total, len(x)
        self.sum_x = sum(x)
        self.sum_x2 = sum(v * v for v in x)
        self.sum_v = sum(visible)

    def error(self, drawn: list[tuple[int, int]], known: int) -> float:
        """The stated error of a prefix's estimate: the larger of `wald` and `wilson`."""
        return max(self.wald(drawn), self.wilson(drawn, known))

    def wald(self, drawn: list[tuple[int, int]]) -> float:
        """ERROR_SIGMAS standard errors of the ratio estimate, the standard error estimated
        from the sample's spread: N * sqrt((1 - n/N) * var(d) / n), d = y - R x, whose mean
        is 0 (R = sum y / sum x); the blocks without y add R^2 x^2 each."""
        n, total, x = self.n, self.total, self.x
        if n < 2:
            return math.inf
        ratio = sum(y for _, y in drawn) / (self.sum_x or 1)
        square = ratio * ratio * self.sum_x2
        for i, y in drawn:
            square += (y - ratio * x[i]) ** 2 - (ratio * x[i]) ** 2
        var = max(0.0, square) / (n - 1)
        return ERROR_SIGMAS * total * math.sqrt(max(0.0, 1 - n / total) * var / n)

    def wilson(self, drawn: list[tuple[int, int]], known: int) -> float:
        """The far end of a Wilson score interval (at the same z) of the prefix's share of the
        visible records' sum, times that sum's estimate, with the blocks drawn as the trials.

        `wald` understates the error exactly when a prefix's estimate is low, because few of
        its blocks were drawn and its spread looks small too: on the 2M-record bench database
        5 of 800 prefix estimates fell outside it, all low; on a database of small blocks, one
        drawn block holding a prefix's last two records gave an estimate a twentieth of the
        truth and an error a ninth of it. A block either wholly in the prefix or not at all is
        the case of greatest spread for a given share, and the score interval keeps its
        coverage for a share seen in few trials."""
        n, total, sum_v = self.n, self.total, self.sum_v
        sum_y = sum(y for _, y in drawn)
        if n >= total or not sum_y:
            return 0.0  # every block was read, or the prefix holds no bytes
        if n < 2:
            return math.inf
        share = sum_y / sum_v
        # Trials: blocks of the visible size the prefix's own blocks have (its y-weighted
        # mean), more by the finite-population correction.
        weighted = sum(y * self.visible[i] for i, y in drawn) / sum_y
        trials = sum_v / weighted / (1 - n / total)
        z2 = ERROR_SIGMAS * ERROR_SIGMAS / trials
        centre = (share + z2 / 2) / (1 + z2)
        half = ERROR_SIGMAS / (1 + z2) * math.sqrt(share * (1 - share) / trials + z2 / trials / 4)
        return max(centre + half - share, share - centre + half) * sum_v * known / self.sum_x
