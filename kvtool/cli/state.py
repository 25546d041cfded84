"""Per-run settings chosen by the root command's global options (--debug, --trace-handles), and
what the run reports: when it started, and the figures its command recorded for the stats."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordedStats:
    """What a command recorded for its stats: the block's title, the figures (stable names: the
    stats file and `--stats json`), and the text view (`--stats text`; None shows the figures).
    `output_closed`: the reader ended the run (`| head`), so nothing is printed; the file is.
    `shown`: False for a command whose answer is its output (count): its figures go to the
    stats file only, never to stderr."""

    title: str
    figures: dict[str, Any]
    text: dict[str, Any] | None = None
    output_closed: bool = False
    shown: bool = True


@dataclass
class CliState:
    debug: bool = False
    trace_handles: bool = False
    started_at: float = field(default_factory=time.time)  # wall clock, for the stats' times
    started_clock: float = field(default_factory=time.monotonic)  # for their elapsed seconds
    stats: RecordedStats | None = None
    stats_file_refused: bool = False  # --stats-file failed its check: no file to write at the end

    def reset(self) -> None:
        self.debug = False
        self.trace_handles = False
        self.started_at = time.time()
        self.started_clock = time.monotonic()
        self.stats = None
        self.stats_file_refused = False


STATE = CliState()
