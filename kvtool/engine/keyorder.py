"""`KeyOrder`: the order a column family's comparator gives keys, and `Bounds` in that order.

RocksDB sorts keys with the column family's comparator, which the database names in its
OPTIONS file. Every place above the engine that compares, sorts, splits or bounds keys asks the
order, never Python's `<` on bytes: a database may use `rocksdb.ReverseBytewiseComparator`. An
order kvtool does not know cannot compare; what needs a comparison then raises
`UnavailableError` (exit 69) naming the comparator.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kvtool.errors import UnavailableError, UsageError

BYTEWISE_NAMES = frozenset({"leveldb.BytewiseComparator", "rocksdb.BytewiseComparator"})
REVERSE_BYTEWISE_NAME = "rocksdb.ReverseBytewiseComparator"


def prefix_end(prefix: bytes) -> bytes | None:
    """The bytewise-smallest key greater than every key starting with `prefix` (None: none)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


@dataclass(frozen=True)
class Bounds:
    """Keys from `lower` to `upper` in a key order; None is unbounded on that side.

    `lower` is included unless `lower_open`, `upper` excluded unless `upper_closed`: RocksDB's
    own bounds are [lower, upper), but under a reverse order a prefix's keys run from just after
    one key through another, which no half-open pair of keys can name.
    """

    lower: bytes | None = None
    upper: bytes | None = None
    lower_open: bool = False
    upper_closed: bool = False


@dataclass(frozen=True)
class KeyOrder:
    """A comparator's order: `bytewise`, `reverse` (reverse bytewise) or unknown (`kind` None)."""

    name: str
    kind: str | None

    @property
    def known(self) -> bool:
        return self.kind is not None

    def _need(self, what: str) -> None:
        if self.kind is None:
            raise UnavailableError(
                f"{what} needs the key order of comparator {self.name}, which kvtool does not "
                "know (it knows leveldb.BytewiseComparator and rocksdb.ReverseBytewiseComparator)",
                hint="read the whole column family (no --prefix/--start/--end/--after), "
                "forward, with --workers 1",
            )

    @property
    def lt(self) -> Callable[[bytes, bytes], bool]:
        """a < b in this order."""
        self._need("comparing keys")
        return operator.lt if self.kind == "bytewise" else operator.gt

    @property
    def le(self) -> Callable[[bytes, bytes], bool]:
        self._need("comparing keys")
        return operator.le if self.kind == "bytewise" else operator.ge

    def sorted(self, keys: Iterable[bytes]) -> list[bytes]:
        self._need("sorting keys")
        return sorted(keys, reverse=self.kind == "reverse")

    def prefix_bounds(self, prefix: bytes) -> Bounds:
        """The keys that start with `prefix`: one contiguous run in either bytewise order."""
        if self.kind is None:
            raise UsageError(
                f"--prefix needs the key order of comparator {self.name}, which kvtool does not "
                "know: keys with one prefix may not be next to each other",
                hint="use --start/--end, which the database itself applies",
            )
        end = prefix_end(prefix)
        if self.kind == "bytewise":
            return Bounds(lower=prefix, upper=end)
        # Reversed: from just after `end` (bytewise just below it) through `prefix` itself.
        return Bounds(lower=end, upper=prefix, lower_open=end is not None, upper_closed=True)

    def intersect(self, a: Bounds, b: Bounds) -> Bounds:
        """The keys both `a` and `b` hold."""
        lower, lower_open = a.lower, a.lower_open
        if b.lower is not None:
            if lower is None or self.lt(lower, b.lower):
                lower, lower_open = b.lower, b.lower_open
            elif lower == b.lower:
                lower_open = lower_open or b.lower_open
        upper, upper_closed = a.upper, a.upper_closed
        if b.upper is not None:
            if upper is None or self.lt(b.upper, upper):
                upper, upper_closed = b.upper, b.upper_closed
            elif upper == b.upper:
                upper_closed = upper_closed and b.upper_closed
        return Bounds(lower, upper, lower_open, upper_closed)

    def is_empty(self, bounds: Bounds) -> bool:
        lower, upper = bounds.lower, bounds.upper
        if lower is None or upper is None:
            return False
        if lower == upper:
            return bounds.lower_open or not bounds.upper_closed
        return self.known and self.lt(upper, lower)

    def after(self, bounds: Bounds, key: bytes, *, reverse: bool) -> Bounds:
        """`bounds` cut to what a scan (forward or `reverse`) reads strictly after `key`."""
        if reverse:
            return self.intersect(bounds, Bounds(upper=key))
        return self.intersect(bounds, Bounds(lower=key, lower_open=True))

    def contains(self, bounds: Bounds, key: bytes) -> bool:
        lt = self.lt
        if bounds.lower is not None and (
            lt(key, bounds.lower) or (bounds.lower_open and key == bounds.lower)
        ):
            return False
        return bounds.upper is None or (
            lt(key, bounds.upper) or (bounds.upper_closed and key == bounds.upper)
        )


BYTEWISE = KeyOrder("leveldb.BytewiseComparator", "bytewise")
REVERSE_BYTEWISE = KeyOrder(REVERSE_BYTEWISE_NAME, "reverse")


def order_named(name: str | None) -> KeyOrder:
    """The order of the comparator called `name` (None: RocksDB's default, bytewise)."""
    if name is None or name in BYTEWISE_NAMES:
        return BYTEWISE
    if name == REVERSE_BYTEWISE_NAME:
        return REVERSE_BYTEWISE
    return KeyOrder(name, None)


def key_order(path: Path, cf: str = "default") -> KeyOrder:
    """The key order of column family `cf` of the database at `path`, from its newest OPTIONS
    file, read without opening the database (so a parent can ask before it forks workers).

    A database without an OPTIONS file (RocksDB < 4.x) opens only with the default comparator.
    """
    from kvtool.engine.options_file import read_options_file

    try:
        parsed = read_options_file(path)
    except OSError:
        parsed = None
    if parsed is None:
        return BYTEWISE
    return order_named(parsed.cf_options.get(cf, {}).get("comparator"))
