"""`KeyRange`: which keys of which column family a reading command covers, and in which order."""

from __future__ import annotations

from dataclasses import dataclass

from kvtool.engine.keyorder import BYTEWISE, Bounds, KeyOrder, prefix_end
from kvtool.errors import UsageError

__all__ = ["Bounds", "KeyRange", "prefix_end"]


@dataclass(frozen=True)
class KeyRange:
    """Keys from `lower` (inclusive) to `upper` (exclusive) that start with `prefix`, of column
    family `cf`, read forward or in reverse.

    `lower`/`upper` are `--start`/`--end` as given: which keys they and the prefix take in depends
    on the column family's key order, known once the database is found (`bounds`).
    """

    cf: str = "default"
    lower: bytes | None = None
    upper: bytes | None = None
    reverse: bool = False
    prefix: bytes | None = None

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
        return cls(cf=cf, lower=start, upper=end, reverse=reverse, prefix=prefix or None)

    def bounds(self, order: KeyOrder = BYTEWISE) -> Bounds:
        """The range in `order`: `--start` after `--end` is a usage error."""
        if self.lower is None and self.upper is None and self.prefix is None:
            return Bounds()
        given = Bounds(lower=self.lower, upper=self.upper)
        if (
            order.known
            and self.lower is not None
            and self.upper is not None
            and order.lt(self.upper, self.lower)
        ):
            raise UsageError(
                "--start sorts after --end",
                hint="--start is inclusive and --end exclusive, in key order, whatever --reverse"
                + ("" if order.kind == "bytewise" else f" (this database's order: {order.name})"),
            )
        if self.prefix is None:
            return given
        return order.intersect(given, order.prefix_bounds(self.prefix))

    @property
    def bounded(self) -> bool:
        """Whether the range is less than the whole column family."""
        return self.lower is not None or self.upper is not None or self.prefix is not None

    def fingerprint(self) -> bytes:
        """8 bytes naming this range and direction; a cursor carries it to refuse another range."""
        import hashlib  # here, not at start-up: only a cursor needs a fingerprint

        digest = hashlib.sha256()
        for part in (self.cf.encode(), self.lower, self.upper):
            if part is None:
                digest.update(b"\x00")
            else:
                digest.update(b"\x01" + len(part).to_bytes(8, "big") + part)
        if self.prefix is not None:
            digest.update(b"P" + len(self.prefix).to_bytes(8, "big") + self.prefix)
        digest.update(b"R" if self.reverse else b"F")
        return digest.digest()[:8]
