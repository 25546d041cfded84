"""`KeyRange`: which keys of which column family a reading command covers, and in which order."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from kvtool.errors import UsageError


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix` (None: no such key)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


@dataclass(frozen=True)
class KeyRange:
    """Keys in [lower, upper) of column family `cf`, read forward or in reverse.

    `prefix`, `start` (inclusive) and `end` (exclusive) combine: the range is their intersection.
    """

    cf: str = "default"
    lower: bytes | None = None
    upper: bytes | None = None
    reverse: bool = False

    @classmethod
    def build(
        cls,
        *,
        cf: str = "default",
        prefix: bytes | None = None,
        start: bytes | None = None,
        end: bytes | None = None,
        reverse: bool = False,
    ) -> KeyRange:
        lower, upper = start, end
        if prefix:
            lower = prefix if lower is None else max(lower, prefix)
            stop = prefix_end(prefix)
            if stop is not None:
                upper = stop if upper is None else min(upper, stop)
        if start is not None and end is not None and start > end:
            raise UsageError(
                "--start sorts after --end",
                hint="--start is inclusive and --end exclusive, in key order, whatever --reverse",
            )
        return cls(cf=cf, lower=lower, upper=upper, reverse=reverse)

    @property
    def empty(self) -> bool:
        return self.lower is not None and self.upper is not None and self.lower >= self.upper

    def fingerprint(self) -> bytes:
        """8 bytes naming this range and direction; a cursor carries it to refuse another range."""
        digest = hashlib.sha256()
        for part in (self.cf.encode(), self.lower, self.upper):
            if part is None:
                digest.update(b"\x00")
            else:
                digest.update(b"\x01" + len(part).to_bytes(8, "big") + part)
        digest.update(b"R" if self.reverse else b"F")
        return digest.digest()[:8]

    def contains(self, key: bytes) -> bool:
        return (self.lower is None or key >= self.lower) and (
            self.upper is None or key < self.upper
        )
