"""Pacing and stopping: a token bucket for --rate/--bytes-rate, and the deadline and signals a run
stops at, always between whole records.

Signal handlers are the whole process's, so only the command line installs them: `Stopper` and
`SignalGuard` take over SIGINT/SIGTERM/SIGHUP only once `handle_stop_signals()` was called
(kvtool.cli.app does, for one run) or when asked to (`signals=True`). A library caller keeps its
own handlers, and its Ctrl-C arrives as the KeyboardInterrupt it expects.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

from kvtool.errors import STOP_SIGNALS, ExitCode, Interrupted

Clock = Callable[[], float]

_handle_signals = False


def handle_stop_signals(enabled: bool = True) -> None:
    """Whether stoppers and guards install their stop-signal handlers by default: on for the
    kvtool process (the CLI), off for an application that calls the library."""
    global _handle_signals
    _handle_signals = enabled


def _installs(signals: bool | None) -> bool:
    wanted = _handle_signals if signals is None else signals
    return wanted and threading.current_thread() is threading.main_thread()


class StopRequested(Exception):
    """A run must stop at the next record boundary: deadline reached or a signal arrived."""

    def __init__(self, exit_code: ExitCode, reason: str) -> None:
        super().__init__(reason)
        self.exit_code = exit_code
        self.reason = reason


class TokenBucket:
    """Lets `rate` units per second through, with bursts of at most `burst` units.

    The bucket starts empty, so a run's average rate is the target from its first record on; a
    consumer that falls behind catches up by at most `burst` units, never by a flood.
    """

    def __init__(self, rate: float, *, burst: float | None = None, clock: Clock = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate / 20)
        self._clock = clock
        self._tokens = 0.0
        self._last = clock()

    def take(self, amount: float) -> float:
        """Take `amount` units; returns how many seconds to wait before using them."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= amount
        return -self._tokens / self.rate if self._tokens < 0 else 0.0


class Stopper:
    """Where a run stops: a deadline, and (as a context manager) the stop signals.

    While active (when it handles signals: see the module docstring) it replaces the handlers of
    SIGINT, SIGTERM and SIGHUP with ones that only take note, so a signal never cuts a write in
    half; the stream checks `check()` between batches.
    A second signal does not cut the records being written either (a slow reader would get a
    torn line and the cursor would skip it): it only says on stderr what the stop waits for.
    A third signal raises `Interrupted` at once: the way out when the reader never reads again,
    at the price of a record cut in half.
    """

    _SIGNALS = STOP_SIGNALS
    HARD_STOP_AFTER = 3  # signals; see the class docstring

    def __init__(
        self,
        timeout: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        signals: bool | None = None,
    ) -> None:
        self._clock = clock
        self._signals = signals  # None: as handle_stop_signals() chose
        self._sleep = sleep
        self.deadline = clock() + timeout if timeout is not None else None
        self.timeout = timeout
        self.signum: int | None = None
        self.signals = 0  # how many stop signals arrived while active
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Stopper:
        if _installs(self._signals):
            for sig in self._SIGNALS:
                self._previous[sig] = signal.signal(sig, self._note)
        return self

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
        if self.signum is None:
            self.signum = signum
            return
        if self.signals >= self.HARD_STOP_AFTER:
            raise Interrupted(signum)
        # os.write, not sys.stderr: this handler may run in the middle of a write to stderr.
        with contextlib.suppress(OSError):
            os.write(
                2,
                b"kvtool: stopping: writing out the whole records already under way "
                b"(a third signal stops at once and may cut a record)\n",
            )

    def check(self) -> None:
        if self.signum is not None:
            stop = Interrupted(self.signum)
            raise StopRequested(stop.exit_code, stop.reason)
        if self.deadline is not None and self._clock() >= self.deadline:
            raise StopRequested(ExitCode.TIMEOUT, f"--timeout {self.timeout:g}s reached")

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake for a signal or the deadline (then raise StopRequested)."""
        end = self._clock() + seconds
        while True:
            self.check()
            now = self._clock()
            remaining = end - now
            if remaining <= 0:
                return
            if self.deadline is not None:
                remaining = min(remaining, max(self.deadline - now, 0.0))
            self._sleep(min(remaining, 0.1))
            if self.deadline is not None and self._clock() >= self.deadline:
                self.check()


class SignalGuard:
    """Stop signals for writing commands: inside `hold()` (a batch written and counted, an
    ingest, a checkpoint) a signal is held back and raised as `Interrupted` when the block ends,
    so a stop never falls between a write and its bookkeeping; elsewhere it raises at once, which
    also ends a read blocked on stdin."""

    def __init__(self, *, signals: bool | None = None) -> None:
        self._signals = signals  # None: as handle_stop_signals() chose
        self.holding = False
        self.pending: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
        if _installs(self._signals):
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: object) -> None:
        if self.holding:
            if self.pending is None:
                self.pending = signum
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self.begin_hold()
        try:
            yield
        finally:
            signum = self.end_hold()
            if signum is not None:
                raise Interrupted(signum)

    def begin_hold(self) -> None:
        """Hold signals from now on (for a span that is not one block; see `hold`)."""
        self.holding = True

    def end_hold(self) -> int | None:
        """Stop holding; the signal that arrived meanwhile, if any (not raised)."""
        self.holding = False
        signum, self.pending = self.pending, None
        return signum
