"""`diff`: the records that differ between two databases, by merging their two sorted streams."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from kvtool.engine import Database, Entity, Entry, OpenMode, open_db
from kvtool.errors import StoppedError, UnavailableError
from kvtool.formats.jsonl import columns_field
from kvtool.formats.records import Encoder, FieldFormat, encoder
from kvtool.formats.writers import write_all
from kvtool.stream import ReadSpec, ScanStats, Stopper, StopRequested, record_stream
from kvtool.stream.memory import collect_less, keep_freed_memory

_NL = orjson.OPT_APPEND_NEWLINE


@dataclass
class DiffResult:
    """How a diff ended. `cursor` resumes a stopped one (None when it compared the whole range):
    the differences of the run after it and of this one together are those of a whole run."""

    added: int = 0
    removed: int = 0
    changed: int = 0
    same: int = 0
    stopped: StopRequested | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    cursor: str | None = None

    @property
    def differ(self) -> bool:
        """Whether the records compared differ (as far as a stopped diff got)."""
        return bool(self.added or self.removed or self.changed)

    def raise_for_status(self) -> None:
        """Raise StoppedError if a deadline or a signal stopped the diff (after its stats)."""
        if self.stopped is not None:
            resume = (
                f"; resume with --after {self.cursor}"
                if self.cursor
                else "; nothing was compared: run it again"
            )
            raise StoppedError(
                f"{self.stopped.reason}: the diff is incomplete{resume}",
                exit_code=self.stopped.exit_code,
                cursor=self.cursor,
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "same": self.same,
            **self.stats,
            "cursor": self.cursor,
        }


def _records(batches: Iterator[list[Entry]]) -> Generator[Entry, None, None]:
    for batch in batches:
        yield from batch


def _merge_order(
    db_a: Database, db_b: Database, cf: str, a_path: object, b_path: object, *, reverse: bool
) -> Callable[[bytes, bytes], bool]:
    """Whether one key comes before another in the scan: the merge walks both streams in one
    key order, the databases' own (from their comparators), which must agree."""
    order, other = db_a.key_order(cf), db_b.key_order(cf)
    if order != other:
        raise UnavailableError(
            f"{a_path} orders keys by {order.name} and {b_path} by {other.name}: kvtool's "
            "diff merges two streams in one key order",
            hint="export both, sort each by key (e.g. jq -s 'sort_by(.key)') and compare those",
        )
    lt = order.lt
    return (lambda x, y: lt(y, x)) if reverse else lt


def _value_fields(
    value: bytes | Entity, plain: str, columns: str, ek: Encoder, ev: Encoder
) -> dict[str, Any]:
    """`{plain: V}` for a value, `{columns: [...]}` for a wide-column entity (export's shape)."""
    if isinstance(value, Entity):
        return {columns: columns_field(value, ek, ev)}
    return {plain: ev(value)}


def diff(
    a_path: str | Path,
    b_path: str | Path,
    spec: ReadSpec,
    out: BinaryIO,
    *,
    key_format: FieldFormat | str = FieldFormat.AUTO,
    value_format: FieldFormat | str = FieldFormat.AUTO,
) -> DiffResult:
    """Write one JSON line per difference, in key order (of the scan's direction):

    {"op": "added", "key": K, "value": V} (only in B), {"op": "removed", "key": K, "value": V}
    (only in A), {"op": "changed", "key": K, "old": V_A, "new": V_B}. `keys_only` drops values
    (and then compares keys only). A wide-column entity is compared column by column and written
    with `"columns"` (added, removed) or `"old_columns"`/`"new_columns"` (changed) in place of
    the value fields, in export's record shape.

    A deadline or a signal stops it between two keys, every difference before written; its
    `cursor` names the last key compared in both, and `spec.after` set to it compares the rest.
    """
    keep_freed_memory()
    collect_less()
    ek, ev = encoder(key_format), encoder(value_format)
    dumps = orjson.dumps
    keys_only = spec.keys_only
    result = DiffResult()
    stats_a, stats_b = ScanStats(), ScanStats()
    reverse = spec.krange.reverse
    pending: list[bytes] = []
    # The last key compared in both databases (its difference, if any, is in `pending`): a stop
    # resumes strictly after it.
    done = spec.after

    def emit(obj: dict[str, Any]) -> None:
        pending.append(dumps(obj, option=_NL))
        if len(pending) >= 1024:
            write_all(out, b"".join(pending))
            pending.clear()

    with (
        Stopper(spec.timeout) as stopper,
        open_db(a_path, OpenMode.READ_ONLY) as db_a,
        open_db(b_path, OpenMode.READ_ONLY) as db_b,
        record_stream(db_a, spec, stats_a, stopper) as batches_a,
        record_stream(db_b, spec, stats_b, stopper) as batches_b,
    ):
        before = _merge_order(db_a, db_b, spec.krange.cf, a_path, b_path, reverse=reverse)
        a_it, b_it = _records(batches_a), _records(batches_b)
        try:
            a = next(a_it, None)
            b = next(b_it, None)
            while a is not None or b is not None:
                if b is None or (a is not None and before(a[0], b[0])):
                    assert a is not None
                    result.removed += 1
                    if keys_only:
                        emit({"op": "removed", "key": ek(a[0])})
                    else:
                        fields = _value_fields(a[1], "value", "columns", ek, ev)
                        emit({"op": "removed", "key": ek(a[0]), **fields})
                    done = a[0]
                    a = next(a_it, None)
                elif a is None or a[0] != b[0]:
                    result.added += 1
                    if keys_only:
                        emit({"op": "added", "key": ek(b[0])})
                    else:
                        fields = _value_fields(b[1], "value", "columns", ek, ev)
                        emit({"op": "added", "key": ek(b[0]), **fields})
                    done = b[0]
                    b = next(b_it, None)
                else:
                    if a[1] != b[1]:
                        result.changed += 1
                        emit(
                            {
                                "op": "changed",
                                "key": ek(a[0]),
                                **_value_fields(a[1], "old", "old_columns", ek, ev),
                                **_value_fields(b[1], "new", "new_columns", ek, ev),
                            }
                        )
                    else:
                        result.same += 1
                    done = a[0]
                    a = next(a_it, None)
                    b = next(b_it, None)
        except StopRequested as exc:
            result.stopped = exc
        finally:
            a_it.close()
            b_it.close()
        write_all(out, b"".join(pending))
        out.flush()
    stats_a.finish()
    if result.stopped is not None:
        result.cursor = spec.cursor_after(done)
    # Every record read is compared: from A removed or matched, from B added or matched (the
    # streams' own counts leave out a batch that a stop cut short).
    matched = result.changed + result.same
    result.stats = {
        "records_a": result.removed + matched,
        "records_b": result.added + matched,
        "elapsed_s": round(stats_a.elapsed, 3),
    }
    return result
