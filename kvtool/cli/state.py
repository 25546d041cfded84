"""Process-wide settings chosen by the root command's global options (--debug, --trace-handles)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CliState:
    debug: bool = False
    trace_handles: bool = False

    def reset(self) -> None:
        self.debug = False
        self.trace_handles = False


STATE = CliState()
