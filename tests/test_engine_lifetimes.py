"""Every native handle is released however an operation ends: LOCK free, no SST left pinned."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kvtool.engine import TRACER, HandleClosedError, OpenMode, open_db
from kvtool.errors import CorruptionError

from .conftest import make_db

# Every test runs on each installed engine (conftest.engine).
pytestmark = pytest.mark.usefixtures("engine")


def _lock_is_free(db: Path) -> bool:
    """Whether another process can open the database read-write right now."""
    code = (
        "import sys\n"
        "from kvtool.engine import open_db, OpenMode\n"
        "with open_db(sys.argv[1], OpenMode.READ_WRITE):\n"
        "    pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(db)], capture_output=True, text=True, check=False
    )
    return result.returncode == 0


def _obsolete_ssts_after_compaction(db: Path) -> set[str]:
    """Rewrite and compact everything, then list SST files on disk that are no longer live."""
    with open_db(db, OpenMode.READ_WRITE) as handle:
        for i in range(200):
            handle.put(b"key:%03d" % i, b"rewritten")
        handle.flush()
        handle.compact_range(None, None)
        live = {f.name for f in handle.live_files()}
    on_disk = {name for name in os.listdir(db) if name.endswith(".sst")}
    return on_disk - live


def _end_normally(db: Any, kept: list[Any]) -> None:
    for _batch in db.batches(batch_size=7):
        pass


def _end_by_error(db: Any, kept: list[Any]) -> None:
    with db.iterator() as it:
        it.seek_to_first()
        it.read_batch(3)
        raise RuntimeError("operation failed half-way")


def _end_by_early_break(db: Any, kept: list[Any]) -> None:
    batches = db.batches(batch_size=5)
    next(batches)
    kept.append(batches)  # an abandoned, still-referenced generator: its finally has not run


def _end_by_keyboard_interrupt(db: Any, kept: list[Any]) -> None:
    batches = db.batches(batch_size=5)
    next(batches)
    kept.append(batches)
    raise KeyboardInterrupt


def _end_with_kept_traceback(db: Any, kept: list[Any]) -> None:
    it = db.iterator()
    it.seek_to_first()
    try:
        it.read_batch(2)
        raise ValueError("kept")
    except ValueError:
        kept.append(sys.exc_info())  # frames (and their locals) outlive the operation
    kept.append(it)


ENDINGS: dict[str, Callable[[Any, list[Any]], None]] = {
    "normal-end": _end_normally,
    "error": _end_by_error,
    "early-break": _end_by_early_break,
    "keyboard-interrupt": _end_by_keyboard_interrupt,
    "kept-traceback": _end_with_kept_traceback,
}


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("mode", [OpenMode.READ_WRITE, OpenMode.READ_ONLY])
def test_handles_released_on_every_exit_path(tmp_path: Path, ending: str, mode: OpenMode) -> None:
    db_path = make_db(tmp_path / "db", {b"key:%03d" % i: b"v%d" % i for i in range(200)})
    kept: list[Any] = []
    try:
        with open_db(db_path, mode) as db:
            with db.snapshot():
                pass
            snapshot = db.snapshot()  # left open on purpose: the DB's close must release it
            kept.append(snapshot)
            ENDINGS[ending](db, kept)
    except (RuntimeError, KeyboardInterrupt):
        kept.append(sys.exc_info())

    assert TRACER.open_handles() == []
    assert _lock_is_free(db_path)
    assert _obsolete_ssts_after_compaction(db_path) == set()
    # Whatever was kept is now a dead handle that says so instead of crashing.
    for obj in kept:
        if hasattr(obj, "released"):
            assert obj.released
    del kept


def test_released_handles_raise_clearly(small_db: Path) -> None:
    db = open_db(small_db)
    it = db.iterator()
    snapshot = db.snapshot()
    batch_gen = db.batches()
    db.close()
    db.close()  # idempotent
    with pytest.raises(HandleClosedError):
        it.seek_to_first()
    with pytest.raises(HandleClosedError):
        snapshot.get(b"key:001")
    with pytest.raises(HandleClosedError):
        next(batch_gen)
    with pytest.raises(HandleClosedError):
        db.get(b"key:001")


def test_read_only_open_leaves_no_temporary_directory(
    small_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A temp directory of the test's own: other processes on the machine share /tmp.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    with open_db(small_db) as db:
        assert db.get(b"key:001") == b"value-1"
        used = tempfile.gettempdir()
    assert used == str(tmp)
    assert list(tmp.iterdir()) == []


def test_iteration_reports_corruption_instead_of_ending(tmp_path: Path) -> None:
    db_path = make_db(tmp_path / "db", {b"key:%05d" % i: b"x" * 100 for i in range(5000)})
    sst = max(db_path.glob("*.sst"), key=lambda p: p.stat().st_size)
    data = bytearray(sst.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    sst.write_bytes(bytes(data))
    seen = 0
    with pytest.raises(CorruptionError), open_db(db_path) as db:
        for batch in db.batches(batch_size=100):
            seen += len(batch)
    assert seen < 5000
    assert TRACER.open_handles() == []


def test_snapshot_get_sees_the_past(tmp_path: Path) -> None:
    db_path = make_db(tmp_path / "db", {b"a": b"1"})
    with open_db(db_path, OpenMode.READ_WRITE) as db, db.snapshot() as snap:
        db.put(b"a", b"2")
        db.put(b"b", b"new")
        assert snap.get(b"a") == b"1"
        assert snap.get(b"b") is None
        assert db.get(b"a") == b"2"


def test_iterator_is_a_consistent_view(tmp_path: Path) -> None:
    db_path = make_db(tmp_path / "db", {b"k%d" % i: b"old" for i in range(10)})
    with open_db(db_path, OpenMode.READ_WRITE) as db, db.iterator() as it:
        it.seek_to_first()
        db.put(b"k5", b"new")
        db.delete(b"k1")
        db.put(b"zz", b"added")
        records = it.read_batch(100)
    assert records == [(b"k%d" % i, b"old") for i in range(10)]


def test_write_batch_is_reusable_after_write(tmp_path: Path) -> None:
    db_path = make_db(tmp_path / "db", {})
    with open_db(db_path, OpenMode.READ_WRITE) as db, db.write_batch() as batch:
        batch.put(b"a", b"1")
        db.write(batch)
        assert len(batch) == 0
        batch.put(b"b", b"2")
        db.write(batch)
        assert (db.get(b"a"), db.get(b"b")) == (b"1", b"2")


def test_traceback_of_an_error_inside_the_engine_pins_nothing(tmp_path: Path) -> None:
    db_path = make_db(tmp_path / "db", {b"a": b"1"})
    kept: list[Any] = []
    with open_db(db_path, OpenMode.READ_WRITE) as db:
        it = db.iterator()
        it.seek_to_first()
        try:
            it.read_batch("not a number")  # type: ignore[arg-type]
        except Exception:
            kept.append(sys.exc_info())  # holds read_batch's frame, locals included
    assert kept
    assert _lock_is_free(db_path)


def _abandon_cycle(db: Any, i: int) -> None:
    """Start a read, take part of it, and walk away without release(); every third one raises."""
    it = db.iterator()
    it.seek(b"key:%03d" % (i % 200))
    it.read_batch(3)
    batches = db.batches(batch_size=4)
    next(batches)
    snapshot = db.snapshot()
    snapshot.get(b"key:001")
    if i % 3 == 0:
        raise ValueError("raised mid-iteration")


def test_abandoned_handles_are_freed_when_collected(tmp_path: Path) -> None:
    """10,000 reads abandoned through the library API, none released by hand: each is freed
    when nothing refers to it any more, and the database's close finds nothing left."""
    db_path = make_db(tmp_path / "db", {b"key:%03d" % i: b"v%d" % i for i in range(200)})
    with open_db(db_path, OpenMode.READ_WRITE) as db:
        for i in range(10_000):
            with contextlib.suppress(ValueError):
                _abandon_cycle(db, i)
        # Only the database itself is left: no iterator, generator or snapshot outlived its cycle.
        assert [h.kind for h in TRACER.open_handles()] == ["db"]
        kept: list[Any] = []
        try:
            _abandon_cycle(db, 0)
        except ValueError:
            kept.append(sys.exc_info())  # a kept traceback pins that cycle's handles ...
        assert len(TRACER.open_handles()) > 1
    # ... until the database closes: children first, whatever still refers to them.
    assert TRACER.open_handles() == []
    assert _lock_is_free(db_path)
    del kept
