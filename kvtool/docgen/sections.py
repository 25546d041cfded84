"""The man page's hand-written sections: exit status, environment, files and examples."""

from __future__ import annotations

from dataclasses import dataclass

from kvtool.docgen.commands import COMPLETE_VAR
from kvtool.errors import ExitCode

# The exit-code table for the man page (docs/design.md, Exit codes): tests/test_exit_codes.py
# fails when it and ExitCode differ.
EXIT_STATUS: dict[ExitCode, str] = {
    ExitCode.OK: "Done.",
    ExitCode.NOT_FOUND: "Not found (get of a key that is not there) or differences found (diff).",
    ExitCode.USAGE: "Usage: a bad option, bad cursor or bad key encoding.",
    ExitCode.DATA_ERROR: "Bad input data (import): the message gives the line number and why.",
    ExitCode.NO_DATABASE: "No such database; nothing was created.",
    ExitCode.UNAVAILABLE: "Unavailable: the database needs what kvtool or the chosen engine cannot "
    "provide (a comparator or merge operator it cannot load, a feature the engine lacks); the "
    "message names it.",
    ExitCode.SOFTWARE: "Unexpected failure: a bug in kvtool, please report it (--debug shows the "
    "traceback).",
    ExitCode.IO_ERROR: "Corruption or I/O error while reading or writing.",
    ExitCode.BUSY: "Database busy: its LOCK is held by another process, or --wait-lock timed "
    "out. Retry later.",
    ExitCode.NO_PERMISSION: "Permission denied: the database, or a directory on its path, cannot "
    "be read (or, for a write, written).",
    ExitCode.TIMEOUT: "--timeout reached; the cursor to resume from is printed.",
    ExitCode.SIGHUP: "Interrupted by SIGHUP (the terminal or ssh session closed); the cursor to "
    "resume from is printed.",
    ExitCode.SIGINT: "Interrupted by SIGINT (Ctrl-C); the cursor to resume from is printed.",
    ExitCode.SIGTERM: "Interrupted by SIGTERM; the cursor to resume from is printed.",
}

# Variables read by kvtool itself or by the libraries it drives; options with an envvar are
# added from the app, so only the ones no option declares are listed here.
ENVIRONMENT: dict[str, str] = {
    "NO_COLOR": "When set and not empty, --help is plain text without colours or boxes (as it "
    "is whenever standard output is not a terminal, or TERM is dumb).",
    "COLUMNS": "Width of --help output (default: the terminal's, or 80).",
    COMPLETE_VAR: "Set by the completion scripts when they re-run kvtool to ask for the words "
    "that complete the command line (complete_bash, complete_zsh, complete_fish). Not for "
    "interactive use.",
}

FILES: list[tuple[str, str]] = [
    (
        "DB/LOCK",
        "The database's lock file. Writing commands take it and exit 75 when another process "
        "holds it (see --wait-lock). Reading commands never take it and leave every file in "
        "the database directory as they found it.",
    ),
    ("DB/OPTIONS-*", "The options the database was last opened with; info reads them."),
    (
        "completions/kvtool.bash, completions/_kvtool, completions/kvtool.fish",
        "Completion scripts for bash, zsh and fish, generated from the commands (in the "
        "source tree; kvtool --install-completion writes the same script for your shell).",
    ),
    ("man/kvtool.1", "This manual page, generated from the commands (in the source tree)."),
]


@dataclass(frozen=True)
class Example:
    """One line for the man page's EXAMPLES, shown only when its command is registered."""

    command: str
    text: str
    line: str


EXAMPLES: list[Example] = [
    Example(
        "generate",
        "Create a database of 100,000 synthetic records to try things on:",
        "kvtool generate demo.db",
    ),
    Example("info", "What a database is and what needs attention:", "kvtool info demo.db"),
    Example(
        "info",
        "The estimated number of keys of each column family, with jq:",
        "kvtool info --json demo.db | jq '.column_families[] | {name, estimated_keys}'",
    ),
    Example(
        "scan",
        "Page through keys that start with user: (the next page's cursor is printed on stderr):",
        "kvtool scan --prefix user: --page-size 20 demo.db",
    ),
    Example(
        "export",
        "Export everything as JSON Lines and keep records whose value has status failed:",
        "kvtool export --value-format json demo.db | jq -c 'select(.value.status == \"failed\")'",
    ),
    Example(
        "export",
        "Export to a file (written to a temporary name, renamed on success):",
        "kvtool export -o backup.jsonl demo.db",
    ),
    Example(
        "import",
        "Load an export back into another database:",
        "kvtool import copy.db backup.jsonl",
    ),
    Example("count", "Count the keys of a range exactly:", "kvtool count --prefix user: demo.db"),
    Example(
        "info",
        "crontab(5) line: a snapshot of the database's health every hour, for monitoring:",
        "0 * * * * kvtool info --json /srv/app/db > /var/lib/kvtool/info.json",
    ),
    Example(
        "get",
        "Read one value and pretty-print it with jq:",
        "kvtool get demo.db config:app | jq .",
    ),
    Example("put", "Store one key:", "kvtool put demo.db greeting hello"),
    Example(
        "diff",
        "Records that differ between a database and its copy:",
        "kvtool diff demo.db copy.db",
    ),
    Example(
        "verify",
        "crontab(5) line: verify every checksum at 03:15, mail on failure:",
        "15 3 * * * kvtool verify -q /srv/app/db || echo 'verify failed' | mail -s kvtool ops",
    ),
    Example(
        "checkpoint",
        "crontab(5) line: a nightly hard-linked copy, waiting up to 5 "
        "minutes for the LOCK (% must be escaped in crontab):",
        "0 2 * * * kvtool checkpoint --wait-lock 5m /srv/app/db /backup/db-$(date +\\%F)",
    ),
    Example(
        "compact",
        "crontab(5) line: a weekly full compaction that writes its stats for monitoring:",
        "30 4 * * 0 kvtool compact --stats-file /var/lib/kvtool/compact.json /srv/app/db",
    ),
]
