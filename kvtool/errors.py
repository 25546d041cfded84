"""The one exception tree of kvtool and the one table of exit codes it maps to."""

from __future__ import annotations

import re
import signal
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """Process exit codes: the table in README and the man page (sysexits where one fits)."""

    OK = 0
    NOT_FOUND = 1  # `get` of a key that is not there; `diff` found differences
    USAGE = 2  # bad option, bad cursor, bad key encoding
    DATA_ERROR = 65  # bad input data (import)
    NO_DATABASE = 66  # no such database; nothing was created
    UNAVAILABLE = 69  # the database needs what kvtool or the engine cannot provide
    SOFTWARE = 70  # unexpected failure: a bug in kvtool
    IO_ERROR = 74  # corruption or I/O error while reading or writing
    BUSY = 75  # LOCK held by another process, or lock wait timed out
    NO_PERMISSION = 77  # the database, or a directory on its path, cannot be read (or written)
    TIMEOUT = 124  # --timeout reached
    SIGHUP = 129
    SIGINT = 130
    SIGTERM = 143


class KvtoolError(Exception):
    """Base of every error kvtool reports to a user; `hint` says what to do next."""

    exit_code: ExitCode = ExitCode.SOFTWARE
    # Set where a native error crosses the engine boundary (`from_native`), so that no layer
    # above reads native text: the status text itself (database paths, no context prefix), the
    # database file it names (`000012.sst`, `000015.blob`) and whether it concerns a blob file.
    detail: str = ""
    file: str | None = None
    blob: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(KvtoolError):
    """A bad option, argument, key encoding or cursor."""

    exit_code = ExitCode.USAGE


class BadInputError(KvtoolError):
    """Bad input data, e.g. an import line; `line` is its 1-based number when known."""

    exit_code = ExitCode.DATA_ERROR

    def __init__(self, message: str, *, line: int | None = None, hint: str | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message, hint=hint)
        self.line = line


class DatabaseNotFoundError(KvtoolError):
    """The path is not an existing, readable RocksDB database."""

    exit_code = ExitCode.NO_DATABASE


class KeyNotFoundError(KvtoolError):
    """`get` of a key that the database does not hold (exit 1, as grep and git config do)."""

    exit_code = ExitCode.NOT_FOUND


class StorageError(KvtoolError):
    """An I/O error reported by the storage engine."""

    exit_code = ExitCode.IO_ERROR


class CorruptionError(StorageError):
    """A checksum mismatch or otherwise corrupt file."""


class DamagedDatabaseError(CorruptionError):
    """RocksDB would recover the database by leaving data out (a MANIFEST that lost edits, a WAL
    damaged before its end); `files` are the damaged metadata files, in the database directory."""

    def __init__(self, message: str, *, files: tuple[str, ...], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.files = files


class PermissionDeniedError(KvtoolError):
    """The database, or a directory on its path, cannot be read (or, for a write, written)."""

    exit_code = ExitCode.NO_PERMISSION


class UnavailableError(KvtoolError):
    """The database needs what kvtool or the chosen engine cannot provide: a comparator or merge
    operator it cannot load, a feature the engine lacks. The message names it."""

    exit_code = ExitCode.UNAVAILABLE


class DatabaseBusyError(KvtoolError):
    """Another process holds the database's LOCK; `waited` is how long the open waited for it
    (`--wait-lock`) before giving up, 0 when it did not wait."""

    exit_code = ExitCode.BUSY
    waited: float = 0.0


class InvalidArgumentError(UsageError):
    """The engine refused an argument (e.g. an unknown column family)."""


class EngineError(KvtoolError):
    """An engine failure that fits no other class; a bug in kvtool or the binding."""


class StoppedError(KvtoolError):
    """A run stopped early by a deadline or a signal; `cursor` resumes it."""

    def __init__(self, message: str, *, exit_code: ExitCode, cursor: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.cursor = cursor


# RocksDB status strings start with a fixed code name ("Corruption: ...", "IO error: ...").
# They are parsed here, once; nothing else in kvtool looks at native error text.
_BUSY_MARKERS = (
    "lock hold by",
    "While lock file",
    "Resource temporarily unavailable",
    "No locks available",
)

# What RocksDB says when it meets a merge operand and has no operator: in a WAL being replayed
# (with a WAL recovery mode that does not drop the rest of the log), in a read, in a compaction.
_NO_MERGE_OPERATOR_MARKERS = (
    "merge_operator != nullptr",
    "merge_operator_ must be set",
    "merge_operator is not properly initialized",
)


# Private directories the engine opens in place of a database's own (its read-only shadow), each
# with the database path as the user gave it: native messages name the shadow's files, and an
# operator must be sent to the database's own. The engine registers and unregisters them.
_PATH_ALIASES: dict[str, str] = {}


def register_path_alias(private: str, public: str | None) -> None:
    """Make `from_native` name `public`'s files where RocksDB names `private`'s (None: forget)."""
    if public is None:
        _PATH_ALIASES.pop(private, None)
    else:
        _PATH_ALIASES[private] = public


def public_paths(text: str) -> str:
    """`text` with every registered private directory replaced by its database's path."""
    for private, public in _PATH_ALIASES.items():
        text = text.replace(private, public)
    return text


_DB_FILE_IN_TEXT = re.compile(r"(?:\S*/)?(\d+\.(?:sst|blob))\b")


def name_files_in(text: str, directory: Path) -> str:
    """`text` with each SST or blob file it names given as a file of `directory`."""
    return _DB_FILE_IN_TEXT.sub(lambda m: str(directory / m.group(1)), text)


def from_native(exc: BaseException, *, context: str = "") -> KvtoolError:
    """Map an exception raised by the native binding to kvtool's tree by its status text, with
    the text, the file it names and whether it concerns a blob file as fields (see KvtoolError).

    A KvtoolError (raised by kvtool's own checks inside a native call's `try`) passes through.
    """
    if isinstance(exc, KvtoolError):
        return exc
    text = public_paths(str(exc).strip()) or type(exc).__name__
    # RocksDB wraps a status in another of the same code ("Corruption: Corruption: IO error").
    while text.startswith("Corruption: Corruption:"):
        text = text.removeprefix("Corruption: ")
    error = _classify(text, f"{context}: " if context else "")
    error.detail = text
    named = _DB_FILE_IN_TEXT.search(text)
    error.file = named.group(1) if named else None
    error.blob = "lob" in text  # "Blob", "blob file", "000015.blob"
    return error


def _classify(text: str, where: str) -> KvtoolError:
    if any(marker in text for marker in _BUSY_MARKERS):
        return DatabaseBusyError(
            f"{where}database is locked by another process ({text})",
            hint="retry later, or pass --wait-lock DURATION",
        )
    if "Permission denied" in text or "os error 13" in text:
        return PermissionDeniedError(
            f"{where}{text}", hint="run as a user who may read (and, to write, write) it"
        )
    if "does not match existing comparator" in text:
        # "Invalid argument: leveldb.BytewiseComparator: does not match existing comparator X"
        name = text.rsplit("comparator", 1)[-1].strip()
        return UnavailableError(
            f"{where}the database needs comparator {name}, which kvtool's RocksDB cannot load",
            hint="read it through the application that owns it",
        )
    if any(marker in text for marker in _NO_MERGE_OPERATOR_MARKERS):
        return UnavailableError(
            f"{where}the database holds merge operands but kvtool has no merge operator for "
            f"them ({text})",
            hint="read it through the application that owns it",
        )
    if text.startswith("Corruption"):
        return CorruptionError(f"{where}{text}", hint="run `kvtool verify` to locate the damage")
    if text.startswith("IO error") and "No such file or directory" in text:
        return StorageError(f"{where}{text}", hint="a database file is missing")
    if text.startswith(("IO error", "IOError")):
        return StorageError(f"{where}{text}")
    if text.startswith("Invalid argument"):
        return InvalidArgumentError(f"{where}{text}")
    if text.startswith("Not implemented") or text.startswith("Not supported"):
        return InvalidArgumentError(f"{where}{text}")
    if text.startswith("Operation aborted") or text.startswith("Shutdown in progress"):
        return StorageError(f"{where}{text}")
    return EngineError(f"{where}{text}")


# The signals that stop a run cleanly, at a record boundary: Ctrl-C, a supervisor's SIGTERM, and a
# terminal or ssh session closing (SIGHUP). The one definition every stop path uses.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_STOP_CODES = {
    signal.SIGINT: ExitCode.SIGINT,
    signal.SIGTERM: ExitCode.SIGTERM,
    signal.SIGHUP: ExitCode.SIGHUP,
}


def stop_reason(signum: int) -> str:
    """How a stop by `signum` is named in messages: "interrupted" (Ctrl-C) or "interrupted by X"."""
    if signum == signal.SIGINT:
        return "interrupted"
    try:
        return f"interrupted by {signal.Signals(signum).name}"
    except ValueError:
        return f"interrupted by signal {signum}"


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived; a BaseException, so only code meant to stop catches it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> ExitCode:
        return _STOP_CODES.get(signal.Signals(self.signum), ExitCode.SIGINT)

    @property
    def reason(self) -> str:
        return stop_reason(self.signum)
