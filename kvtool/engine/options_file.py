"""A database's OPTIONS files as read: the newest parsed into its sections, and every one's text
by number."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

OPTIONS_NAME = re.compile(r"^OPTIONS-(\d+)$")
SECTION = re.compile(r'^\[(\S+?)(?:\s+"(.*)")?\]$')


@dataclass(frozen=True)
class OptionsFile:
    """The parsed sections; `column_families` maps a CF name to its CFOptions and table options."""

    path: Path
    version: dict[str, str] = field(default_factory=dict)
    db_options: dict[str, str] = field(default_factory=dict)
    cf_options: dict[str, dict[str, str]] = field(default_factory=dict)
    table_options: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def rocksdb_version(self) -> str | None:
        return self.version.get("rocksdb_version")

    def table_option(self, cf: str, name: str) -> str | None:
        return self.table_options.get(cf, {}).get(name)


def latest_options_path(db_dir: Path) -> Path | None:
    best: tuple[int, Path] | None = None
    for entry in db_dir.iterdir():
        match = OPTIONS_NAME.match(entry.name)
        if match and (best is None or int(match.group(1)) > best[0]):
            best = (int(match.group(1)), entry)
    return best[1] if best else None


def read_options_file(db_dir: Path) -> OptionsFile | None:
    """Parse the newest OPTIONS-* file of `db_dir`, or None when the database has none."""
    path = latest_options_path(db_dir)
    if path is None:
        return None
    parsed = OptionsFile(path=path)
    current: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        section = SECTION.match(line)
        if section:
            kind, name = section.group(1), section.group(2) or ""
            if kind == "Version":
                current = parsed.version
            elif kind == "DBOptions":
                current = parsed.db_options
            elif kind == "CFOptions":
                current = parsed.cf_options.setdefault(name, {})
            elif kind.startswith("TableOptions/"):
                current = parsed.table_options.setdefault(name, {"table_factory": kind[13:]})
            else:
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key.strip()] = value.strip()
    return parsed


def options_texts(db_dir: Path) -> dict[int, str]:
    """Every OPTIONS-<n> file of `db_dir` by number, with its text (none when it is missing)."""
    out: dict[int, str] = {}
    try:
        entries: Iterable[Path] = list(db_dir.iterdir())
    except OSError:
        return out
    for entry in entries:
        match = OPTIONS_NAME.match(entry.name)
        if match:
            try:
                out[int(match.group(1))] = entry.read_bytes().decode("utf-8", "surrogateescape")
            except OSError:
                continue
    return out
