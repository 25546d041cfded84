"""Docs generated from the registered Typer app: the shell completion scripts and the man page.

Run `python -m kvtool.docgen` to rewrite `completions/` and `man/kvtool.1`; `--check` only
compares them with what the app would generate now and exits 1 when they are stale.
"""

from kvtool.docgen.commands import (
    COMPLETE_VAR,
    PROG,
    REGENERATE,
    ROOT,
    CommandInfo,
    OptionDoc,
    example_lines,
    help_text,
    options,
    summary,
    unknown_options,
    usage,
    walk,
)
from kvtool.docgen.files import (
    COMPLETION_FILES,
    MAN_FILE,
    completion_script,
    generated_files,
    main,
    stale_files,
)
from kvtool.docgen.manpage import man_page, page_date, roff_escape
from kvtool.docgen.sections import ENVIRONMENT, EXAMPLES, EXIT_STATUS, FILES, Example

__all__ = [
    "COMPLETE_VAR",
    "COMPLETION_FILES",
    "ENVIRONMENT",
    "EXAMPLES",
    "EXIT_STATUS",
    "FILES",
    "MAN_FILE",
    "PROG",
    "REGENERATE",
    "ROOT",
    "CommandInfo",
    "Example",
    "OptionDoc",
    "completion_script",
    "example_lines",
    "generated_files",
    "help_text",
    "main",
    "man_page",
    "options",
    "page_date",
    "roff_escape",
    "stale_files",
    "summary",
    "unknown_options",
    "usage",
    "walk",
]
