"""Engine-neutral facts about a database directory on disk: is it a database, its SST and WAL
files, their table format versions (docs/design.md, Engine facts)."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from kvtool.errors import (
    CorruptionError,
    DatabaseNotFoundError,
    PermissionDeniedError,
    UsageError,
)


def check_database_dir(path: Path) -> None:
    """Raise DatabaseNotFoundError unless `path` is a RocksDB dir, PermissionDeniedError (77)
    unless this user may read it and every directory on its path; creates nothing."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise DatabaseNotFoundError(
            f"no database at {path}", hint="check the path; nothing was created"
        ) from None
    except PermissionError:
        raise PermissionDeniedError(
            f"cannot reach {path}: permission denied on a directory on its path",
            hint="run as a user who may read it, e.g. the database's owner",
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise DatabaseNotFoundError(f"{path} is not a directory", hint="give a RocksDB directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise PermissionDeniedError(
            f"cannot read {path}: permission denied",
            hint="run as a user who may read it, e.g. the database's owner",
        )
    if not (path / "CURRENT").is_file():
        refuse_create_in(path, lost_current_only=True)  # a database that lost CURRENT: 74
        raise DatabaseNotFoundError(
            f"{path} is not a RocksDB database (it has no CURRENT file)",
            hint="give the directory that holds CURRENT, MANIFEST-* and *.sst",
        )


_NUMBERED = re.compile(r"^(\d+)\.(sst|log)$")


def file_number(name: str) -> int:
    """The number in a RocksDB file name (`/000017.sst` -> 17), -1 if it has none."""
    match = _NUMBERED.match(name.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else -1


def database_identity(db_dir: Path) -> str | None:
    """The unique id RocksDB writes into `IDENTITY` when it creates a database; None when there
    is none to read (a RocksDB 9.8 checkpoint has none until its first read-write open)."""
    try:
        text = (db_dir / "IDENTITY").read_text("ascii", "replace").strip()
    except OSError:
        return None
    return text[:200] or None


def wal_files(db_dir: Path) -> list[str]:
    """The WAL files of `db_dir` (`000012.log`), oldest first."""
    names = [n for n in os.listdir(db_dir) if n.endswith(".log") and file_number(n) >= 0]
    return sorted(names, key=file_number)


def wal_sizes(path: Path) -> list[int]:
    """The sizes of the directory's WAL files; one a live owner deletes meanwhile is left out."""
    sizes = []
    for p in path.iterdir():
        if p.suffix == ".log" and p.name[:-4].isdigit():
            try:
                sizes.append(p.stat().st_size)
            except FileNotFoundError:
                continue
    return sizes


def sst_bytes(path: Path) -> int:
    """Bytes of SST files in the database directory (read without opening the database)."""
    try:
        with os.scandir(path) as entries:
            return sum(e.stat().st_size for e in entries if e.name.endswith(".sst"))
    except OSError:
        return 0


# A block-based table ends with its format_version (uint32 LE) and an 8-byte magic number;
# format_version 0 files use the legacy magic and carry no version field.
_BLOCK_BASED_MAGIC = 0x88E241B785F4CFF7
_LEGACY_BLOCK_BASED_MAGIC = 0xDB4775248B80FB57


def sst_format_version(path: Path) -> int | None:
    """The table format_version written in an SST file's footer, None if it is not block-based."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            if f.tell() < 12:
                return None
            f.seek(-12, 2)
            tail = f.read(12)
    except OSError:
        return None
    magic = int.from_bytes(tail[4:], "little")
    if magic == _LEGACY_BLOCK_BASED_MAGIC:
        return 0
    if magic == _BLOCK_BASED_MAGIC:
        return int.from_bytes(tail[:4], "little")
    return None


def sst_format_versions(db_dir: Path) -> dict[str, int]:
    """Every SST file of `db_dir` with its table format_version (block-based files only)."""
    out: dict[str, int] = {}
    for entry in sorted(db_dir.glob("*.sst")):
        version = sst_format_version(entry)
        if version is not None:
            out[entry.name] = version
    return out


# What RocksDB keeps of a database that lost its CURRENT file: `repair` rebuilds it from these.
_DATABASE_FILE = re.compile(r"^(\d+\.(sst|log|blob)|MANIFEST-\d+|OPTIONS-\d+|IDENTITY)$")
# What a failed create leaves and a new one may overwrite: RocksDB's lock and info logs.
_LEFTOVER = re.compile(r"^(LOCK|LOG|LOG\.old\.\d+|rocksdict-config\.json)$")


def refuse_create_in(path: Path, *, lost_current_only: bool = False) -> None:
    """A new database goes into a new or empty directory only. Created beside a database's
    files whose CURRENT is lost, RocksDB deletes their SST files as obsolete (measured: an
    `import --create` there, exit 0, every record gone; `kvtool repair` would have recovered
    them): CorruptionError. Among other files, RocksDB's would replace any of the same name:
    UsageError. A missing path, or one that is not a directory, is left to the caller.
    `lost_current_only`: check only for a database that lost CURRENT (any command's open).

    A `..` after a part that does not exist yet (`DB/new/..`) is refused (UsageError): the
    open makes `new` and creates the database in DB, which was never looked at here. So are a
    file where a directory is meant and a name too long, before RocksDB makes any directory.
    """
    if not lost_current_only:
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENAMETOOLONG):  # RocksDB: "File exists"
                raise UsageError(f"{path}: {exc.strerror}") from None
        missing = missing_parts(path)
        below = Path(*path.parts[: len(path.parts) - len(missing)]) if missing else None
        # Checked before RocksDB makes the parts of the path that fit.
        if any(len(os.fsencode(part)) > _name_max(below) for part in missing):
            raise UsageError(f"{path}: {os.strerror(errno.ENAMETOOLONG)}")
        if below is not None and below.parts and not below.is_dir():
            # RocksDB's "Not a directory" is no storage fault: a file where a directory is meant.
            raise UsageError(
                f"{below} is not a directory: {path} cannot be created in it",
                hint="create the new database in a directory",
            )
        if ".." in missing:
            absent = Path(*path.parts[: len(path.parts) - len(missing) + 1])
            raise UsageError(
                f"{path} goes up ('..') past {absent}, which does not exist: the new database "
                "would be created in a directory not checked",
                hint="give the new database's path without '..'",
            )
    try:
        names = os.listdir(path)
    except OSError:
        return
    kept = [name for name in names if _DATABASE_FILE.match(name)]
    if any(name.endswith(".sst") or name.startswith("MANIFEST-") for name in kept):
        raise CorruptionError(
            f"{path} holds a database's files ({', '.join(sorted(kept)[:4])}"
            f"{', ...' if len(kept) > 4 else ''}) but no CURRENT file"
            + ("" if lost_current_only else ": a new database there would delete them"),
            hint=f"kvtool repair {path} rebuilds it from them, after a backup",
        )
    if lost_current_only:
        return
    others = [name for name in names if not _LEFTOVER.match(name)]
    if others:
        raise UsageError(
            f"{path} is a directory of other files ({', '.join(sorted(others)[:3])}"
            f"{', ...' if len(others) > 3 else ''}), not a database",
            hint="create a new database in a new or empty directory",
        )


def missing_parts(path: Path) -> tuple[str, ...]:
    """The trailing parts of `path` that do not exist (all of them when no prefix does)."""
    parts = path.parts
    for end in range(len(parts), 0, -1):
        if os.path.lexists(Path(*parts[:end])):
            return parts[end:]
    return parts


def _name_max(directory: Path | None) -> int:
    """The longest file name the filesystem of `directory` (the current one if None) takes."""
    try:
        return os.pathconf(directory if directory and directory.parts else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255
