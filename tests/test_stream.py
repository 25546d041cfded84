"""The stream layer without the CLI: ranges, cursors, the token bucket, the stopper, and the
pipeline over a real database (handles released however a run ends)."""

from __future__ import annotations

import io
import signal
from pathlib import Path

import orjson
import pytest

from kvtool.engine import TRACER, OpenMode, open_db
from kvtool.engine.keyorder import BYTEWISE, REVERSE_BYTEWISE, Bounds, order_named
from kvtool.errors import ExitCode, UnavailableError, UsageError
from kvtool.formats.jsonl import jsonl_renderer
from kvtool.ops.count import count_records
from kvtool.ops.export import export
from kvtool.ops.scan import scan_page
from kvtool.stream import (
    Cursor,
    KeyRange,
    ReadSpec,
    ScanStats,
    Stopper,
    StopRequested,
    TokenBucket,
    limited,
    read_batches,
    record_stream,
)
from kvtool.stream.keyrange import prefix_end

from .conftest import make_db


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


# ---------------------------------------------------------------- ranges and cursors


def test_prefix_end() -> None:
    assert prefix_end(b"ab") == b"ac"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None
    assert prefix_end(b"") is None


def test_range_intersects_prefix_and_bounds() -> None:
    r = KeyRange.build(prefix=b"b", start=b"a", end=b"bm")
    assert r.bounds(BYTEWISE) == Bounds(b"b", b"bm")
    assert BYTEWISE.is_empty(KeyRange.build(prefix=b"b", start=b"c").bounds(BYTEWISE))
    with pytest.raises(UsageError):
        KeyRange.build(start=b"z", end=b"a").bounds(BYTEWISE)


def test_range_in_reverse_bytewise_order() -> None:
    """Under rocksdb.ReverseBytewiseComparator keys run bytewise-down: a prefix's keys run from
    just after the next prefix through the prefix itself, and --start may be bytewise above
    --end."""
    rev = REVERSE_BYTEWISE
    keys = [b"c", b"b\xff", b"b\x01", b"b", b"a\xff", b"a"]  # in that order
    r = KeyRange.build(prefix=b"b")
    assert r.bounds(rev) == Bounds(b"c", b"b", lower_open=True, upper_closed=True)
    assert [k for k in keys if rev.contains(r.bounds(rev), k)] == [b"b\xff", b"b\x01", b"b"]
    assert KeyRange.build(start=b"z", end=b"a").bounds(rev) == Bounds(b"z", b"a")
    with pytest.raises(UsageError):
        KeyRange.build(start=b"a", end=b"z").bounds(rev)
    both = KeyRange.build(prefix=b"b", start=b"b\x01", end=b"a").bounds(rev)
    assert [k for k in keys if rev.contains(both, k)] == [b"b\x01", b"b"]
    assert rev.is_empty(KeyRange.build(prefix=b"b", start=b"a").bounds(rev))
    after = rev.after(r.bounds(rev), b"b\x01", reverse=False)
    assert [k for k in keys if rev.contains(after, k)] == [b"b"]
    after = rev.after(r.bounds(rev), b"b\x01", reverse=True)
    assert [k for k in keys if rev.contains(after, k)] == [b"b\xff"]
    top = KeyRange.build(prefix=b"\xff").bounds(rev)  # no key sorts before its keys
    assert top == Bounds(None, b"\xff", upper_closed=True)


def test_cursor_round_trip_and_binding() -> None:
    krange = KeyRange.build(prefix=b"user:", reverse=True)
    token = Cursor.after(b"user:\x00\xff\n", krange).encode()
    assert token.startswith("kv2.") and "\n" not in token
    assert Cursor.decode(token).check(krange) == b"user:\x00\xff\n"
    for other in (
        KeyRange.build(prefix=b"user:"),
        KeyRange.build(prefix=b"user:", reverse=True, cf="other"),
        KeyRange.build(prefix=b"usr:", reverse=True),
    ):
        with pytest.raises(UsageError, match="cursor"):
            Cursor.decode(token).check(other)
    for bad in ("", "kv2.", "kv2.*", "xx1.AAAA", token.replace("kv2.A", "kv2.B"), "kv1.AQ"):
        with pytest.raises(UsageError, match="not a valid cursor"):
            Cursor.decode(bad)


# ---------------------------------------------------------------- pacing and stopping


def test_token_bucket_holds_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000, clock=clock)
    start = clock.now
    for _ in range(500):
        clock.sleep(bucket.take(20))
    assert clock.now - start == pytest.approx(10.0)  # 10,000 units at 1000/s


def test_token_bucket_bursts_only_up_to_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, burst=10, clock=clock)
    clock.sleep(60)  # an idle minute does not bank 6000 tokens
    assert bucket.take(10) == 0.0
    assert bucket.take(10) == pytest.approx(0.1)


def test_stopper_deadline_cuts_a_sleep_short() -> None:
    clock = FakeClock()
    stopper = Stopper(2.0, clock=clock, sleep=clock.sleep)
    stopper.sleep(1.5)
    with pytest.raises(StopRequested) as caught:
        stopper.sleep(5.0)
    assert caught.value.exit_code is ExitCode.TIMEOUT
    assert clock.now == pytest.approx(102.0)


def test_stopper_turns_a_signal_into_a_stop_at_the_boundary() -> None:
    with Stopper(signals=True) as stopper:
        signal.raise_signal(signal.SIGTERM)  # the handler only takes note
        with pytest.raises(StopRequested) as caught:
            stopper.check()
    assert caught.value.exit_code is ExitCode.SIGTERM


def test_limited() -> None:
    batches = [[(b"a", b"")] * 3, [(b"b", b"")] * 3]
    assert [len(b) for b in limited(iter(batches), 4)] == [3, 1]
    assert list(limited(iter(batches), 0)) == []
    assert [len(b) for b in limited(iter(batches), None)] == [3, 3]


# ---------------------------------------------------------------- the pipeline on a real DB


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return make_db(tmp_path / "s.db", {b"k%03d" % i: b"v%d" % i for i in range(300)})


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("batch_size", [1, 7, 1024])
def test_read_batches_respects_both_bounds(db_path: Path, reverse: bool, batch_size: int) -> None:
    with open_db(db_path) as db, db.iterator(lower=b"k100", upper=b"k200") as it:
        keys = [
            k
            for batch in read_batches(it, reverse=reverse, batch_size=batch_size)
            for k, _ in batch
        ]
    expected = [b"k%03d" % i for i in range(100, 200)]
    assert keys == (expected[::-1] if reverse else expected)


def test_scan_pages_chain_to_the_whole_range(db_path: Path) -> None:
    spec = ReadSpec(krange=KeyRange.build(prefix=b"k1", reverse=True))
    seen: list[bytes] = []
    token = None
    while True:
        page = scan_page(db_path, spec.with_cursor(token), page_size=13)
        seen += [k for k, _ in page.records]
        token = page.cursor
        if token is None:
            break
    assert seen == [b"k%03d" % i for i in range(199, 99, -1)]


def test_export_library_call_and_stats(db_path: Path) -> None:
    out = io.BytesIO()
    result = export(db_path, ReadSpec(limit=10), out=out)
    lines = out.getvalue().splitlines()
    assert [orjson.loads(x)["key"] for x in lines] == [f"k{i:03d}" for i in range(10)]
    assert result.stats["records"] == 10 and result.stats["pages"] == 1
    assert result.cursor is not None  # --limit cut the range: the cursor continues it
    rest = io.BytesIO()
    assert export(db_path, ReadSpec().with_cursor(result.cursor), out=rest).cursor is None
    assert len(rest.getvalue().splitlines()) == 290


def test_count_library_call(db_path: Path) -> None:
    assert count_records(db_path, ReadSpec()).count == 300
    assert count_records(db_path, ReadSpec(krange=KeyRange.build(prefix=b"k2"))).count == 100


def test_an_abandoned_stream_releases_its_iterator(db_path: Path) -> None:
    TRACER.enable(io.StringIO())
    # Handles other tests of this process keep on purpose (e.g. a close deferred to the last
    # holder of a python-rocksdb database) are not this test's.
    before = set(TRACER.open_handles())
    try:
        stats = ScanStats()
        with open_db(db_path, OpenMode.READ_ONLY) as db:
            with record_stream(db, ReadSpec(batch_size=10), stats, Stopper()) as batches:
                next(batches)  # stop after one batch, mid-stream
            assert [h.kind for h in TRACER.open_handles() if h not in before] == ["db"]
        assert set(TRACER.open_handles()) == before
        assert stats.records == 0  # the consumer never came back for more
    finally:
        TRACER.disable()


def test_renderer_fallback_for_invalid_utf8() -> None:
    render = jsonl_renderer()
    data = render([(b"ok", b"fine"), (b"\xff", b"\x00")])
    assert data == b'{"key":"ok","value":"fine"}\n{"key":{"base64":"/w=="},"value":"\\u0000"}\n'


def test_an_unknown_order_refuses_what_needs_it() -> None:
    """A comparator kvtool does not know: bounds it need not compare pass; --prefix is a usage
    error (keys with one prefix may not be adjacent); comparing is unavailable (69)."""
    unknown = order_named("myapp.Order")
    assert not unknown.known and order_named(None) == BYTEWISE
    assert order_named("rocksdb.ReverseBytewiseComparator") == REVERSE_BYTEWISE
    assert KeyRange.build(start=b"b", end=b"a").bounds(unknown) == Bounds(b"b", b"a")
    with pytest.raises(UsageError, match=r"myapp\.Order"):
        KeyRange.build(prefix=b"a").bounds(unknown)
    with pytest.raises(UnavailableError, match=r"myapp\.Order"):
        unknown.after(Bounds(lower=b"a"), b"k", reverse=False)
