"""`du`: where a database's bytes and records are, grouped by key prefix per column family: the
report's model, the adding up of records into it, each live SST file's table properties
(tombstones per file and level), and the report as a dict. `du_exact` reads every record (in
range workers or one process), `du_sample` estimates the report from a random sample of SST data
blocks."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import compress, groupby
from operator import add, itemgetter
from pathlib import Path
from typing import Any

from kvtool.engine import Entry
from kvtool.ondisk.coding import FormatError
from kvtool.ondisk.manifest import Version, current_manifest, read_edits, replay
from kvtool.ondisk.sst import TableReader

# The estimate's stated error: three standard errors (a 99.7% interval under the normal
# approximation), so that a per-prefix check of many prefixes rarely sees one outside it; for
# a prefix seen in few blocks, the far end of a score interval at the same z if larger
# (du_sample._Measure).
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
            return itemgetter(slice(0, depth))  # key[:depth], without a Python call
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
    # For --sample: data blocks, record entries (every entry but tombstones and merge
    # operands), and key (internal: user key and 8 bytes) plus value bytes of every entry.
    data_blocks: int = 0
    record_entries: int = 0
    merge_operands: int = 0
    raw_bytes: int = 0
    error: OSError | FormatError | None = field(default=None, repr=False, compare=False)


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


class Accumulator:
    """Adds records to a CfUsage: the hot loop of exact mode, kept to local lookups.

    The largest records are the `top` first by (bytes descending, key ascending): one order
    whatever order the records come in, so partial usages of range workers' chunks merge into
    exactly one process's (kvtool.ops.du_exact). Candidates pile up in `usage.largest` and are
    cut back to `top` now and then; a record that cannot beat the last one kept is skipped with
    one comparison (the usual case: keys rise, so an equal size never beats it)."""

    def __init__(
        self,
        usage: CfUsage,
        group_of: Callable[[bytes], bytes],
        top: int,
        *,
        lexicographic: bool = False,
    ) -> None:
        self.usage = usage
        self.group_of = group_of
        self.top = top
        # Records come in a bytewise or reverse bytewise order (a known KeyOrder), where the
        # keys of one group are adjacent: see `add`.
        self.lexicographic = lexicographic
        self.floor: tuple[int, bytes] = (-1, b"")  # the last kept of a full top: to beat

    def add(self, records: Sequence[Entry]) -> int:
        """Add a batch. Its per-record steps run in C (map, Counter, groupby over runs of one
        group: keys that share a prefix are adjacent in key order), and the largest records are
        looked at one by one only when one of the batch can beat the last kept: a per-record
        Python loop cost more than reading the records (bench/bench_du.py)."""
        n = len(records)
        if not n:
            return 0
        usage = self.usage
        groups, sizes = usage.groups, usage.value_sizes
        keys = list(map(_first, records))
        # An entity's len() is the bytes of its column names and values.
        key_lens = list(map(len, keys))
        value_lens = list(map(len, map(_second, records)))
        group_of = self.group_of
        name = group_of(keys[0])
        if self.lexicographic and group_of(keys[-1]) == name:
            # A group is a prefix of its keys: in a bytewise (or reverse) order every key
            # between two of one group is in it too. So is the whole batch, the usual case.
            group = groups.get(name)
            if group is None:
                group = groups[name] = Group()
            group.records += n
            group.key_bytes += sum(key_lens)
            group.value_bytes += sum(value_lens)
        else:
            at = 0
            for name, run in groupby(map(group_of, keys)):
                count = len(list(run))
                group = groups.get(name)
                if group is None:
                    group = groups[name] = Group()
                group.records += count
                group.key_bytes += sum(key_lens[at : at + count])
                group.value_bytes += sum(value_lens[at : at + count])
                at += count
        low_bucket, high_bucket = min(value_lens).bit_length(), max(value_lens).bit_length()
        if low_bucket == high_bucket:  # one bucket: values of similar sizes, the usual case
            sizes[low_bucket] = sizes.get(low_bucket, 0) + n
        else:
            for bucket, count in Counter(map(int.bit_length, value_lens)).items():
                sizes[bucket] = sizes.get(bucket, 0) + count
        if self.top and max(key_lens) + max(value_lens) >= self.floor[0]:
            self._candidates(keys, list(map(add, key_lens, value_lens)), value_lens)
        return n

    def _candidates(self, keys: list[bytes], sizes: list[int], value_lens: list[int]) -> None:
        """Keep the records of a batch that may be among the largest (see the class)."""
        low, low_key = self.floor
        most = max(sizes)
        if most < low:
            return  # all smaller than the last kept
        if most == low:
            # As big as the last kept beats it only with a smaller key. In a bytewise (or
            # reverse) order the batch's smallest key is its first or its last.
            if self.lexicographic:
                smallest = min(keys[0], keys[-1])
            else:
                smallest = min(compress(keys, map(low.__eq__, sizes)))
            if smallest >= low_key:
                return
        largest = self.usage.largest
        room = 2 * self.top + 64  # candidates held before a cut
        for key, size, vl in zip(keys, sizes, value_lens, strict=True):
            if size > low or (size == low and key < low_key):
                largest.append((size, key, vl))
                if len(largest) >= room:
                    self.finish()
                    low, low_key = self.floor

    def finish(self) -> None:
        """Cut the candidates back to the `top` largest."""
        largest = self.usage.largest
        largest.sort(key=largest_first)
        del largest[self.top :]
        if len(largest) == self.top and self.top:
            self.floor = largest[-1][0], largest[-1][1]


_first, _second = itemgetter(0), itemgetter(1)


def largest_first(record: tuple[int, bytes, int]) -> tuple[int, bytes]:
    return -record[0], record[1]


def add_up(usage: CfUsage) -> None:
    """Set a column family's total from its groups."""
    total = Group()
    for g in usage.groups.values():
        total.records += g.records
        total.key_bytes += g.key_bytes
        total.value_bytes += g.value_bytes
    usage.total = total


def current_version(db_path: Path) -> Version:
    """The MANIFEST's current version: column families and their files per level."""
    return replay(read_edits(current_manifest(db_path)))[0]


def live_tables(db_path: Path, version: Version | None = None) -> list[tuple[str, int, Path, int]]:
    """(column family, level, path, size) of each SST file of the MANIFEST's current version."""
    if version is None:
        version = current_version(db_path)
    out = []
    for cf in version.column_families.values():
        for level, files in sorted(cf.levels.items()):
            for number, entry in sorted(files.items()):
                out.append((cf.name, level, db_path / f"{number:06d}.sst", entry.size))
    return out


def table_usage(
    db_path: Path, version: Version | None = None
) -> tuple[list[TableUsage], list[str]]:
    """Each live SST file's entries and tombstones (and what --sample needs), from its table
    properties: one reading of each file's properties block."""
    tables: list[TableUsage] = []
    try:
        live = live_tables(db_path, version)
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
                table = TableUsage(
                    path.name, cf, level, size, p("rocksdb.num.entries"), points, ranges
                )
                table.data_blocks = p("rocksdb.num.data.blocks") or 0
                table.merge_operands = p("rocksdb.merge.operands") or 0
                table.record_entries = (table.entries or 0) - (deleted or 0) - table.merge_operands
                table.raw_bytes = (p("rocksdb.raw.key.size") or 0) + (
                    p("rocksdb.raw.value.size") or 0
                )
                tables.append(table)
        except (OSError, FormatError) as exc:
            # Next to a live owner a compaction may have deleted it since the MANIFEST was read.
            tables.append(
                TableUsage(path.name, cf, level, size, None, None, None, str(exc), error=exc)
            )
    return tables, []


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
                    for size, k, vl in sorted(cf.largest, key=largest_first)
                ],
            }
        )
    # Only the column families shown (--cf): the files of the others are not asked about.
    shown = {cf.name for cf in usage.column_families}
    tables = [t for t in usage.tables if t.cf in shown]
    levels: dict[tuple[str, int], dict[str, Any]] = {}
    for t in tables:
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
        "error": (
            f"{ERROR_SIGMAS:g} standard errors, more for a prefix seen in few blocks"
            if usage.mode == "sample"
            else None
        ),
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
            for t in tables
        ],
        "notes": usage.notes,
    }


def _share(part: int, whole: int | None) -> float | None:
    return round(part / whole, 4) if whole else None


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else round(value, 1)
