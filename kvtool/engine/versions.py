"""The versions an engine reports, found without slowing start-up: a binding's own version read
from its installed METADATA, and the RocksDB it bundles from a table of known releases.

`--version`, `info`, every stats envelope and every Parquet manifest name them. The general
answers cost a run more than its command often does: `importlib.metadata.version` imports
`email` and friends (47 against 30 ms wall for `python -c`, this machine), and the probe of the
bundled RocksDB creates a database in a temporary directory (about 15 ms, and writes to /tmp).
Both stay as the fallbacks for what the fast paths do not know.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

# A binding's version -> the RocksDB it bundles, as it writes it into a new database's OPTIONS
# file (`rocksdb_version`). tests/test_startup.py checks the installed bindings' entries against
# the probe; a release not listed here is probed.
ROCKSDB_OF_ROCKSDICT: Mapping[str, str] = {"0.3.29": "9.8.4"}
ROCKSDB_OF_FAUST_ROCKSDB: Mapping[str, str] = {"0.9.3": "6.14.6"}


def distribution_version(distribution: str, module: str) -> str:
    """The installed version of `distribution`, whose top-level package is `module`: read from
    the `NAME-VERSION.dist-info` beside the package (where pip puts it), else as
    importlib.metadata finds it."""
    found = _version_beside(distribution, module)
    if found is not None:
        return found
    from importlib.metadata import version

    return version(distribution)


def bundled_rocksdb(
    table: Mapping[str, str], binding_version: str, probe: Callable[[], str]
) -> str:
    """The RocksDB a binding of `binding_version` bundles: from `table`, else `probe()`."""
    return table.get(binding_version) or probe()


def _version_beside(distribution: str, module: str) -> str | None:
    loaded = sys.modules.get(module)
    origin = getattr(loaded, "__file__", None)
    if origin is None:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec is not None else None
    if not origin:
        return None
    package = Path(origin).parent
    if package.name != module:  # a single-file module sits in the site directory itself
        package = Path(origin)
    wanted = _normalized(distribution)
    try:
        candidates = sorted(package.parent.glob("*.dist-info"))
    except OSError:
        return None
    for info in candidates:
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        if _normalized(name) != wanted or not version:
            continue
        # The directory name is the installer's; METADATA is the distribution's own word.
        try:
            head = (info / "METADATA").read_text(encoding="utf-8", errors="replace")[:4096]
        except OSError:
            return None
        match = re.search(r"^Version:[ \t]*(\S+)", head, re.MULTILINE)
        return match.group(1) if match else None
    return None


def _normalized(name: str) -> str:
    # PEP 503: runs of -, _ and . are one separator, case does not matter.
    return re.sub(r"[-_.]+", "-", name).lower()
