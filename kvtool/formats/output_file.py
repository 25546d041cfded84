"""`OutputFile`: what `-o PATH` writes to, chosen by what PATH is, and how a stopped export's
`PATH.partial` is resumed into without losing or repeating a record.

The rules (docs/design.md, "Output files"):
- a regular file, or a new one, is written to a temp file beside it and renamed over it when
  complete: it keeps the replaced file's mode (and owner, as root); a new file gets the umask's
  mode; a symlink is followed, so its target gets the data and the link stays a link;
- anything else (a device, a FIFO, a socket, `/dev/stdout`, `/dev/fd/N`) is written in place,
  never replaced by a regular file;
- a target without any write permission bit (chmod 0444), or one this user cannot write, is
  refused before any work (exit 77), as is a directory it cannot create files in; a directory, a
  missing parent directory or a path inside the database directory is a usage error (exit 2);
- the temp file is `.PATH.PID@HOST.XXXXXXXX.tmp`: the next run removes one a killed run left;
- a stop keeps what was written as `PATH.partial` and writes `PATH.partial.cursor` (JSON: the
  cursor that resumes it, its size in bytes, the output options and the database's IDENTITY); a
  run with `--after CURSOR` and the same `-o PATH` appends to that `.partial` only when the
  cursor, the options and the database match (else exit 2), and renames it to PATH when
  complete. So any number of stops and resumes end in the file one uninterrupted run writes
  (for `.gz`, the same content in several gzip members).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import logging
import os
import re
import secrets
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from kvtool.errors import PermissionDeniedError, StorageError, UsageError
from kvtool.formats.output_guards import open_fifo, other_database

# Names that stand for an open descriptor of this process: writing there means that descriptor.
_FD_PATH = re.compile(r"^/(?:dev/fd|proc/self/fd)/(\d+)$")
_STD_PATHS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def cursor_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial.cursor")


def _descriptor(path: Path) -> int | None:
    """The descriptor of this process that `path` names (`/dev/stdout`, `/dev/fd/N`, or a
    symlink chain leading to one), else None."""
    text = str(path)
    for _ in range(40):  # the kernel's own limit on a symlink chain
        if text in _STD_PATHS:
            return _STD_PATHS[text]
        match = _FD_PATH.match(text)
        if match:
            return int(match.group(1))
        try:
            target = os.readlink(text)
        except OSError:  # not a symlink (or not there)
            return None
        text = os.path.normpath(os.path.join(os.path.dirname(text), target))
    return None


def _io_error(what: str, exc: OSError) -> StorageError | PermissionDeniedError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDeniedError(f"cannot write {what}: {reason}")
    return StorageError(f"writing {what}: {reason}")


def resolve(path: Path, *, option: str = "-o") -> tuple[Path, os.stat_result | None]:
    """Where `-o path` writes (symlinks followed) and what is there now (None: nothing).

    Refuses, before any work: a directory or a missing parent (usage, exit 2); a target or a
    directory this user may not write (exit 77).
    """
    if _descriptor(path) is not None:
        return path, None
    real = Path(os.path.realpath(path))
    try:
        st: os.stat_result | None = os.stat(real)
    except FileNotFoundError:
        st = None
    except PermissionError as exc:
        raise PermissionDeniedError(f"{option} {path}: {exc.strerror}") from None
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{option} {path} is a directory", hint="give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        return real, st  # a device, FIFO or socket: written in place
    directory = real.parent
    if not directory.is_dir():
        raise UsageError(
            f"{option} {path}: the directory {directory} does not exist", hint="create it first"
        )
    if st is not None and (not st.st_mode & 0o222 or not os.access(real, os.W_OK)):
        mode = stat.S_IMODE(st.st_mode)
        what = "read-only" if not mode & 0o222 else "not writable by this user"
        raise PermissionDeniedError(
            f"{option} {path} is {what} (mode {mode:04o}): kvtool does not replace it",
            hint="make it writable (chmod u+w) or remove it, or write elsewhere",
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionDeniedError(
            f"{option} {path}: cannot create files in {directory}: permission denied"
        )
    return real, st


def is_terminal(path: Path) -> bool:
    """Whether `-o path` writes to a terminal (`/dev/tty`, `/dev/pts/N`, `/dev/stdout` on one):
    then, as for stdout, control characters from the data are shown as escapes."""
    fd = _descriptor(path)
    if fd is not None:
        return os.isatty(fd)
    try:
        if not stat.S_ISCHR(os.stat(path).st_mode):
            return False
        probe = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.isatty(probe)
    finally:
        os.close(probe)


def compressed(path: Path) -> bool:
    """Whether `OutputFile(path)` compresses what it is given (gzip when the name ends in .gz)."""
    return path.suffix == ".gz"


class OutputFile:
    """The sink of `export -o PATH` (see the module's rules); gzip when the name ends in .gz.

    `resume_from` is the cursor the run continues after (its `--after`), `options` the output
    options that shape the bytes (format, encodings, keys-only): a `.partial` is resumed into
    only when both match what its `.partial.cursor` recorded.
    """

    def __init__(
        self,
        path: Path,
        *,
        resume_from: str | None = None,
        options: Mapping[str, Any] | None = None,
        gzip_by_name: bool = True,
        identity: str | None = None,
        wait_for_reader: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.options = dict(options or {})
        self.identity = identity  # the source database's IDENTITY: a resume must match it
        self.in_place = False
        self.appending = False
        self.tmp: Path | None = None
        self._kept_size = 0  # of a resumed .partial: the bytes its cursor file vouches for
        real, st = resolve(path)
        self.real = real
        fd = _descriptor(path)
        try:
            if fd is not None:
                self.in_place = True
                raw = os.fdopen(os.dup(fd), "wb", buffering=1 << 20)
            elif st is not None and stat.S_ISFIFO(st.st_mode) and wait_for_reader is not None:
                self.in_place = True
                raw = open_fifo(real, wait_for_reader)
            elif st is not None and not stat.S_ISREG(st.st_mode):
                self.in_place = True
                raw = open(real, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in _close
            elif resume_from is not None and partial_path(real).exists():
                raw = self._resume(resume_from)
            elif resume_from is not None and cursor_path(real).exists():
                # The cursor file of a stopped run is here, its .partial is not: the rest
                # alone would be renamed to PATH as if it were the whole export.
                raise UsageError(
                    f"-o {path}: {cursor_path(path)} is here but {partial_path(path)}, which "
                    "holds the records before the cursor, is missing",
                    hint=f"put {partial_path(path)} back, or export again without --after "
                    f"(to write only the rest, give another -o or remove {cursor_path(path)})",
                )
            else:
                if resume_from is None and cursor_path(real).exists():
                    logging.getLogger("kvtool").warning(
                        "%s is a stopped export: this run starts %s anew and, if it stops "
                        "too, replaces it (to resume it instead: --after @%s)",
                        partial_path(path),
                        path,
                        cursor_path(path),
                    )
                raw = self._new_temp(st)
        except OSError as exc:
            raise _io_error(str(path), exc) from None
        self._raw: BinaryIO = raw
        self.stream: BinaryIO = raw
        if gzip_by_name and compressed(path):
            self.stream = gzip.GzipFile(  # type: ignore[assignment]
                filename=path.name[:-3], fileobj=raw, mode="wb", compresslevel=6
            )

    def _new_temp(self, st: os.stat_result | None) -> BinaryIO:
        from kvtool.engine.workdirs import owner_tag, remove_stale_files

        real = self.real
        # The name says whose it is (`.NAME.PID@HOST.XXXXXXXX.tmp`): one a killed run left here
        # (SIGKILL, the OOM killer: no clean-up ran) is removed, never a live run's.
        remove_stale_files(real.parent, f".{real.name}.", ".tmp")
        for _ in range(100):
            tmp = real.with_name(f".{real.name}.{owner_tag()}.{secrets.token_hex(4)}.tmp")
            try:
                # 0o666 less the umask, as any program's new file; O_EXCL: never someone else's.
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except FileExistsError:
                continue
            break
        else:  # pragma: no cover - 100 collisions of 32 random bits
            raise StorageError(f"cannot create a temp file beside {real}")
        self.tmp = tmp
        if st is not None:  # replacing a file: it keeps its mode, and its owner when we may
            try:
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
                if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                    os.fchown(fd, st.st_uid, st.st_gid)
            except OSError:
                os.close(fd)
                tmp.unlink(missing_ok=True)
                raise
        return os.fdopen(fd, "wb", buffering=1 << 20)

    def _resume(self, resume_from: str) -> BinaryIO:
        """Open PATH.partial to append after the bytes its cursor file vouches for."""
        partial, record = partial_path(self.real), cursor_path(self.real)
        hint = f"resume with --after @{record}, or remove {partial} to start a new file"
        try:
            import orjson

            saved = orjson.loads(record.read_bytes())
        except FileNotFoundError:
            raise UsageError(
                f"-o {self.path}: {partial} has no {record.name}, so kvtool cannot tell where it "
                "ends",
                hint=f"remove {partial} (or move it away) and export again",
            ) from None
        except ValueError:
            raise UsageError(f"-o {self.path}: {record} is damaged", hint=hint) from None
        if not isinstance(saved, dict) or saved.get("cursor") != resume_from:
            raise UsageError(
                f"-o {self.path}: {partial} ends at another cursor than --after gives",
                hint=hint,
            )
        if saved.get("options") != self.options:
            raise UsageError(
                f"-o {self.path}: {partial} was written with other output options "
                f"({_describe(saved.get('options'))}; this run: {_describe(self.options)})",
                hint="give the options of the run that stopped, or remove " + str(partial),
            )
        mismatch = other_database(saved, self.identity)
        if mismatch:
            raise UsageError(
                f"-o {self.path}: {partial} {mismatch}: its records after the cursor would "
                "join the file as the rest",
                hint="resume with the database the export began with, or remove " + str(partial),
            )
        size = saved.get("bytes")
        on_disk = partial.stat().st_size
        if not isinstance(size, int) or size > on_disk:
            raise UsageError(
                f"-o {self.path}: {partial} is shorter than its cursor file says "
                f"({on_disk} of {size} bytes): it was changed since the run stopped",
                hint=f"remove {partial} and export again",
            )
        if not partial.stat().st_mode & 0o222 or not os.access(partial, os.W_OK):
            raise PermissionDeniedError(f"-o {self.path}: {partial} is read-only")
        raw = open(partial, "r+b", buffering=1 << 20)  # noqa: SIM115 - closed in _close
        # Bytes past `size` are what a killed run wrote after its last stop: not vouched for.
        raw.truncate(size)
        raw.seek(size)
        self._kept_size = size
        self.appending = True
        return raw

    def _close(self) -> None:
        if self.in_place:
            # A FIFO's reader may have gone (`-o fifo` read by `head`): a quiet end, as for stdout.
            with contextlib.suppress(BrokenPipeError):
                if self.stream is not self._raw:
                    self.stream.close()
                self._raw.flush()
            with contextlib.suppress(BrokenPipeError):
                self._raw.close()
            return
        if self.stream is not self._raw:
            self.stream.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()

    def commit(self) -> Path:
        """The export is complete: PATH holds it (renamed from the temp file or `.partial`)."""
        where = str(self.path)
        try:
            self._close()
            if self.in_place:
                return self.path
            source = partial_path(self.real) if self.appending else self.tmp
            assert source is not None
            os.replace(source, self.real)
            _fsync_dir(self.real.parent)
            if self.appending:
                cursor_path(self.real).unlink(missing_ok=True)
        except OSError as exc:
            self.discard()
            raise _io_error(where, exc) from None
        return self.path

    def keep_partial(self, cursor: str | None) -> Path | None:
        """The export stopped: keep what it wrote as PATH.partial with the cursor that resumes
        it (the device itself when written in place; None when nothing was written)."""
        where = str(self.path)
        try:
            self._close()
            if self.in_place:
                return self.path
            partial, record = partial_path(self.real), cursor_path(self.real)
            if cursor is None:  # nothing written: nothing to resume
                self.discard()
                return None
            if not self.appending:
                assert self.tmp is not None
                # A crash between these steps leaves a .partial without a cursor file (a
                # resume is refused), never one beside another run's cursor file.
                record.unlink(missing_ok=True)
                os.replace(self.tmp, partial)
                self.tmp = None
            import orjson

            size = partial.stat().st_size
            # null too: a database without IDENTITY must not pass for one that has it.
            saved = {
                "cursor": cursor,
                "bytes": size,
                "options": self.options,
                "database_identity": self.identity,
            }
            _write_atomically(record, orjson.dumps(saved) + b"\n")
        except OSError as exc:
            self.discard()
            raise _io_error(where, exc) from None
        # Name it beside the path as given (unless that is a symlink): messages read better.
        return partial if self.path.is_symlink() else partial_path(self.path)

    def discard(self) -> None:
        """The export failed: remove the temp file, or cut a resumed `.partial` back to what its
        cursor file vouches for (so that resume still works)."""
        try:
            if not self._raw.closed:
                with contextlib.suppress(OSError):
                    self._raw.close()
        finally:
            if self.tmp is not None:
                self.tmp.unlink(missing_ok=True)
            elif self.appending:
                with contextlib.suppress(OSError):
                    os.truncate(partial_path(self.real), self._kept_size)


def _describe(options: object) -> str:
    if not isinstance(options, dict):
        return "unknown"
    return ", ".join(f"{k} {v}" for k, v in options.items())


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
