"""The choices an operation takes by name (import's mode and on-error policy), in a module light
enough for the CLI to import at start-up and use as its option types."""

from __future__ import annotations

import enum


class ImportMode(str, enum.Enum):
    """How import writes: batches as lines are read, or sorted SST files ingested at the end."""

    BATCH = "batch"
    SST = "sst"


class OnError(str, enum.Enum):
    """What a bad input line does: stop the import (exit 65), or skip it and count it."""

    STOP = "stop"
    SKIP = "skip"
