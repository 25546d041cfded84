"""`du`: where a database's bytes and records are, grouped by key prefix per column family,
exactly (every record, through the engine) or from a random sample of SST data blocks (read
from the files), with the table properties' tombstones per file and level."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvtool.errors import UsageError
from kvtool.ondisk.coding import FormatError
from kvtool.ondisk.manifest import current_manifest, read_edits, replay
from kvtool.ondisk.sst import TableReader

# Types of the records a read returns (puts, entities, BlobDB references); tombstones, merge
# operands and older versions are not records.
_RECORD_TYPES = frozenset({0x1, 0x11, 0x16, 0x18})
# The estimate's stated error: three standard errors (a 99.7% interval under the normal
# approximation), so that a per-prefix check of many prefixes rarely sees one outside it.
ERROR_SIGMAS = 3.0


@dataclass(frozen=True)
class Grouping:
    """How keys are grouped: the first `depth` bytes, or the first `levels` fields that
    `separator` ends (a key with fewer fields is its own group)."""

    depth: int | None = None
    separator: bytes | None = b":"
    levels: int = 1

    def function(self) -> Callable[[bytes], bytes]:
        if self.depth is not None:
            depth = self.depth
            return lambda key: key[:depth]
        sep = self.separator or b":"
        levels = self.levels
        if levels == 1:

            def first(key: bytes) -> bytes:
                i = key.find(sep)
                return key if i < 0 else key[: i + len(sep)]

            return first

        def prefix(key: bytes) -> bytes:
            at = 0
            for _ in range(levels):
                i = key.find(sep, at)
                if i < 0:
                    return key
                at = i + len(sep)
            return key[:at]

        return prefix


@dataclass
class Group:
    records: int = 0
    key_bytes: int = 0
    value_bytes: int = 0
    # sample mode: the 3-standard-error half widths of the estimates
    records_error: float | None = None
    bytes_error: float | None = None

    @property
    def bytes(self) -> int:
        return self.key_bytes + self.value_bytes


@dataclass
class CfUsage:
    name: str
    total: Group = field(default_factory=Group)
    groups: dict[bytes, Group] = field(default_factory=dict)
    value_sizes: dict[int, int] = field(default_factory=dict)  # bucket (bit length) -> records
    largest: list[tuple[int, bytes, int]] = field(default_factory=list)  # (bytes, key, value)
    other_groups: int = 0  # groups folded into the last one past `max_groups`


@dataclass
class TableUsage:
    file: str
    cf: str
    level: int
    size: int
    entries: int | None
    deletions: int | None
    range_deletions: int | None
    note: str | None = None


@dataclass
class Usage:
    path: Path
    mode: str  # exact | sample
    fraction: float | None
    column_families: list[CfUsage]
    tables: list[TableUsage]
    sampled_blocks: int | None = None
    total_blocks: int | None = None
    notes: list[str] = field(default_factory=list)


def _bucket_bounds(bucket: int) -> tuple[int, int]:
    return (0, 0) if bucket == 0 else (1 << (bucket - 1), (1 << bucket) - 1)


class _Accumulator:
    """Adds records to a CfUsage: the hot loop of exact mode, kept to local lookups."""

    def __init__(self, usage: CfUsage, group_of: Callable[[bytes], bytes], top: int) -> None:
        self.usage = usage
        self.group_of = group_of
        self.top = top

    def add(self, records: Iterable[tuple[bytes, bytes]]) -> int:
        usage, group_of, top = self.usage, self.group_of, self.top
        groups, sizes, largest = usage.groups, usage.value_sizes, usage.largest
        n = 0
        for key, value in records:
            n += 1
            kl, vl = len(key), len(value)
            g = group_of(key)
            group = groups.get(g)
            if group is None:
                group = groups[g] = Group()
            group.records += 1
            group.key_bytes += kl
            group.value_bytes += vl
            b = vl.bit_length()
            sizes[b] = sizes.get(b, 0) + 1
            if top:
                size = kl + vl
                if len(largest) < top:
                    heapq.heappush(largest, (size, key, vl))
                elif size > largest[0][0]:
                    heapq.heapreplace(largest, (size, key, vl))
        return n


def exact_usage(
    db_path: Path,
    grouping: Grouping,
    *,
    cfs: list[str] | None = None,
    top: int = 10,
    progress: Callable[[int], None] | None = None,
) -> Usage:
    """Read every record of each column family through a read-only open."""
    from kvtool.engine import OpenMode, open_db
    from kvtool.stream import Stopper

    group_of = grouping.function()
    out: list[CfUsage] = []
    with Stopper() as stopper, open_db(db_path, OpenMode.READ_ONLY) as db:
        names = cfs or db.column_families
        for name in names:
            if name not in db.column_families:
                raise UsageError(f"no column family {name!r}")
            usage = CfUsage(name)
            acc = _Accumulator(usage, group_of, top)
            for batch in db.batches(name, batch_size=4096):
                n = acc.add(batch)
                if progress is not None:
                    progress(n)
                stopper.check()
            _totals(usage)
            out.append(usage)
    tables, notes = table_usage(db_path)
    return Usage(db_path, "exact", None, out, tables, notes=notes)


def _totals(usage: CfUsage) -> None:
    total = Group()
    for g in usage.groups.values():
        total.records += g.records
        total.key_bytes += g.key_bytes
        total.value_bytes += g.value_bytes
    usage.total = total


def _cf_names(db_path: Path) -> list[str]:
    version, _ = replay(read_edits(current_manifest(db_path)))
    return [cf.name for cf in version.column_families.values()]


def live_tables(db_path: Path) -> list[tuple[str, int, Path, int]]:
    """(column family, level, path, size) of each SST file of the MANIFEST's current version."""
    version, _ = replay(read_edits(current_manifest(db_path)))
    out = []
    for cf in version.column_families.values():
        for level, files in sorted(cf.levels.items()):
            for number, entry in sorted(files.items()):
                out.append((cf.name, level, db_path / f"{number:06d}.sst", entry.size))
    return out


def table_usage(db_path: Path) -> tuple[list[TableUsage], list[str]]:
    """Each live SST file's entries and tombstones, from its table properties."""
    tables: list[TableUsage] = []
    notes: list[str] = []
    try:
        live = live_tables(db_path)
    except (OSError, FormatError) as exc:
        return [], [f"MANIFEST not read ({exc}): no per-file tombstones"]
    for cf, level, path, size in live:
        try:
            with TableReader(path) as reader:
                p = reader.table.prop_int
                # rocksdb.deleted.keys and rocksdb.num.entries count range deletions too.
                ranges = p("rocksdb.num.range-deletions")
                deleted = p("rocksdb.deleted.keys")
                points = None if deleted is None else deleted - (ranges or 0)
                tables.append(
                    TableUsage(path.name, cf, level, size, p("rocksdb.num.entries"), points, ranges)
                )
        except (OSError, FormatError) as exc:
            # Next to a live owner a compaction may have deleted it since the MANIFEST was read.
            tables.append(TableUsage(path.name, cf, level, size, None, None, None, str(exc)))
    return tables, notes


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

    A ratio estimate: the table properties give each column family's exact totals of entries
    and of key+value bytes over all its files (X); a prefix's share of them in the sampled
    blocks (R = sum y / sum x, y its records or bytes, x every entry's) times X is its
    estimate, and the stated error is ERROR_SIGMAS standard errors of that estimate,
    N * sqrt((1 - n/N) * var(y - R x) / n) over the n of N blocks. A column family holding
    one prefix is thus exact. Older versions and tombstones waiting for compaction are in X
    but not in y. Data only in the WAL or memtables is not sampled (a note says how much WAL
    there is); values in BlobDB blob files count as their references."""
    if not 0 < fraction <= 1:
        raise UsageError("--sample takes a fraction in (0, 1], e.g. 0.01")
    group_of = grouping.function()
    rng = random.Random(seed)
    every = live_tables(db_path)
    version_cfs = _cf_names(db_path)
    for name in cfs or []:
        if name not in version_cfs:
            raise UsageError(f"no column family {name!r}")
    live = [t for t in every if cfs is None or t[0] in cfs]
    names = cfs or sorted(version_cfs, key=lambda c: (c != "default", c))
    out: list[CfUsage] = []
    sampled = total_blocks = 0
    for name in names:
        usage = CfUsage(name)
        out.append(usage)
        files: list[tuple[Path, int]] = []  # (path, data blocks)
        known_records = known_bytes = 0
        for cf, _level, path, _size in live:
            if cf != name:
                continue
            with TableReader(path) as reader:
                p = reader.table.prop_int
                files.append((path, p("rocksdb.num.data.blocks") or 0))
                known_records += p("rocksdb.num.entries") or 0
                known_bytes += (p("rocksdb.raw.key.size") or 0) + (p("rocksdb.raw.value.size") or 0)
        n_blocks = sum(b for _, b in files)
        total_blocks += n_blocks
        if not n_blocks:
            continue
        n = min(n_blocks, max(2, math.ceil(fraction * n_blocks)))
        sampled += n
        chosen = sorted(rng.sample(range(n_blocks), n))
        blocks: list[_BlockSums] = []
        first = 0
        for path, count in files:
            mine = [i - first for i in chosen if first <= i < first + count]
            first += count
            if not mine:
                continue
            with TableReader(path) as reader:
                for handle in reader.data_handles_at(mine):
                    sums = _BlockSums()
                    visible = []
                    for key, value in reader.entries(handle):
                        sums.entries += 1
                        sums.entry_bytes += len(key) + len(value)
                        # An internal key ends in 8 bytes (LE) whose lowest is the type.
                        if len(key) >= 8 and key[-8] in _RECORD_TYPES:
                            visible.append((key[:-8], value))
                    # One pass per record: the block's own usage, then merged into the CF's.
                    block = CfUsage(name)
                    _Accumulator(block, group_of, top).add(visible)
                    sums.groups = {g: (grp.records, grp.bytes) for g, grp in block.groups.items()}
                    _merge(usage, block, top)
                    blocks.append(sums)
        _estimate(usage, blocks, n_blocks, known_records, known_bytes)
    tables, notes = table_usage(db_path)
    wal = sum(p.stat().st_size for p in db_path.glob("*.log"))
    if wal:
        notes.append(f"{wal} bytes of WAL are not sampled (kvtool wal shows them)")
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


def _merge(into: CfUsage, part: CfUsage, top: int) -> None:
    for g, grp in part.groups.items():
        mine = into.groups.get(g)
        if mine is None:
            mine = into.groups[g] = Group()
        mine.records += grp.records
        mine.key_bytes += grp.key_bytes
        mine.value_bytes += grp.value_bytes
    for b, c in part.value_sizes.items():
        into.value_sizes[b] = into.value_sizes.get(b, 0) + c
    for item in part.largest:
        if len(into.largest) < top:
            heapq.heappush(into.largest, item)
        elif item[0] > into.largest[0][0]:
            heapq.heapreplace(into.largest, item)


@dataclass
class _BlockSums:
    entries: int = 0
    entry_bytes: int = 0
    groups: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # records, bytes


def _estimate(
    usage: CfUsage, blocks: list[_BlockSums], total: int, known_records: int, known_bytes: int
) -> None:
    """Turn the sampled sums into ratio estimates, with the error of each."""
    n = len(blocks)
    x_records = [b.entries for b in blocks]
    x_bytes = [b.entry_bytes for b in blocks]
    r_scale = known_records / (sum(x_records) or 1)
    b_scale = known_bytes / (sum(x_bytes) or 1)
    for name, group in usage.groups.items():
        y_records = [b.groups.get(name, (0, 0))[0] for b in blocks]
        y_bytes = [b.groups.get(name, (0, 0))[1] for b in blocks]
        group.records_error = _ratio_error(y_records, x_records, n, total)
        group.bytes_error = _ratio_error(y_bytes, x_bytes, n, total)
        share = group.key_bytes / (group.bytes or 1)
        group.records = round(group.records * r_scale)
        estimated_bytes = sum(y_bytes) * b_scale
        group.key_bytes = round(estimated_bytes * share)
        group.value_bytes = round(estimated_bytes) - group.key_bytes
    usage.value_sizes = {b: round(c * r_scale) for b, c in usage.value_sizes.items()}
    _totals(usage)
    all_records = [sum(r for r, _ in b.groups.values()) for b in blocks]
    all_bytes = [sum(v for _, v in b.groups.values()) for b in blocks]
    usage.total.records_error = _ratio_error(all_records, x_records, n, total)
    usage.total.bytes_error = _ratio_error(all_bytes, x_bytes, n, total)


def _ratio_error(y: list[int], x: list[int], n: int, total: int) -> float:
    """ERROR_SIGMAS standard errors of the ratio estimate of sum(y) over `total` blocks."""
    if n < 2:
        return math.inf
    ratio = sum(y) / (sum(x) or 1)
    d = [yi - ratio * xi for yi, xi in zip(y, x, strict=True)]
    mean = sum(d) / n
    var = sum((v - mean) ** 2 for v in d) / (n - 1)
    return ERROR_SIGMAS * total * math.sqrt(max(0.0, 1 - n / total) * var / n)


def usage_dict(usage: Usage, key: Callable[[bytes], Any], max_groups: int) -> dict[str, Any]:
    def group(g: Group) -> dict[str, Any]:
        out: dict[str, Any] = {
            "records": g.records,
            "key_bytes": g.key_bytes,
            "value_bytes": g.value_bytes,
            "bytes": g.bytes,
        }
        if g.bytes_error is not None:
            out["records_error"] = _finite(g.records_error)
            out["bytes_error"] = _finite(g.bytes_error)
        return out

    cfs = []
    for cf in usage.column_families:
        ordered = sorted(cf.groups.items(), key=lambda kv: (-kv[1].bytes, kv[0]))
        cfs.append(
            {
                "name": cf.name,
                **group(cf.total),
                "groups": len(ordered),
                "prefixes": [{"prefix": key(p), **group(g)} for p, g in ordered[:max_groups]],
                "value_sizes": [
                    {"min": lo, "max": hi, "records": cf.value_sizes[b]}
                    for b in sorted(cf.value_sizes)
                    for lo, hi in [_bucket_bounds(b)]
                ],
                "largest": [
                    {"key": key(k), "bytes": size, "key_bytes": len(k), "value_bytes": vl}
                    for size, k, vl in sorted(cf.largest, key=lambda t: (-t[0], t[1]))
                ],
            }
        )
    levels: dict[tuple[str, int], dict[str, Any]] = {}
    for t in usage.tables:
        lv = levels.setdefault(
            (t.cf, t.level),
            {
                "cf": t.cf,
                "level": t.level,
                "files": 0,
                "bytes": 0,
                "entries": 0,
                "deletions": 0,
                "range_deletions": 0,
            },
        )
        lv["files"] += 1
        lv["bytes"] += t.size
        for name in ("entries", "deletions", "range_deletions"):
            lv[name] += getattr(t, name) or 0
    for lv in levels.values():
        lv["tombstone_share"] = _share(lv["deletions"] + lv["range_deletions"], lv["entries"])
    return {
        "path": str(usage.path),
        "mode": usage.mode,
        "fraction": usage.fraction,
        "error": f"{ERROR_SIGMAS:g} standard errors" if usage.mode == "sample" else None,
        "sampled_blocks": usage.sampled_blocks,
        "total_blocks": usage.total_blocks,
        "column_families": cfs,
        "levels": sorted(levels.values(), key=lambda v: (v["cf"], v["level"])),
        "tables": [
            {
                "file": t.file,
                "cf": t.cf,
                "level": t.level,
                "bytes": t.size,
                "entries": t.entries,
                "deletions": t.deletions,
                "range_deletions": t.range_deletions,
                "tombstone_share": _share((t.deletions or 0) + (t.range_deletions or 0), t.entries),
                **({"note": t.note} if t.note else {}),
            }
            for t in usage.tables
        ],
        "notes": usage.notes,
    }


def _share(part: int, whole: int | None) -> float | None:
    return round(part / whole, 4) if whole else None


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else round(value, 1)
