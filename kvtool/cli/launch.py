"""The `kvtool` program's entry point (console script and `python -m kvtool`): start-up with the
cyclic garbage collector paused.

Start-up allocates tens of thousands of objects that all live on (modules, functions, classes,
Typer's parameters); the collector ran about 30 times over them during a `kvtool count` run,
finding nothing to free (gc.callbacks): 4 to 8 ms of a 0.1 s run, measured with bench/startup.py.
It is paused while Typer and kvtool's command line are imported and while the command that runs
is imported and built (kvtool.cli.one_command), and runs as usual for the command's work.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No automatic collection inside the block (an enclosing pause is left as it was)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def main() -> None:
    """Console-script entry point: kvtool.cli.app.main, imported with the collector paused."""
    with paused_gc():
        from kvtool.cli.app import main as run

    run()
