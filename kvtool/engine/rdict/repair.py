"""RocksDB's RepairDB through rocksdict, with the database's own options (comparator, table
format) so that what repair rewrites stays readable by the database's owner."""

from __future__ import annotations

from pathlib import Path

import rocksdict as rd

from kvtool.engine.rdict.native import from_native
from kvtool.engine.rdict.options import load_options


def repair(path: Path) -> None:
    """Run RocksDB's repair on `path` (the caller has checked nobody holds its LOCK).

    Repair rebuilds the MANIFEST from the SST files it finds, turns WAL files into SST files
    and moves what it cannot read into `lost/`. It uses the options of the newest OPTIONS file
    (or defaults that keep the SST files' format_version): fresh defaults would rewrite WAL
    data in table format_version 6 (docs/design.md, Engine facts 5).
    """
    opts, cfs = load_options(path, fallback=True)
    # The table format is a column family option: rocksdict's DB-wide options object from
    # load_latest carries the default table factory (format_version 6), so repair gets the
    # default column family's options (measured: with the DB-wide ones, the SST file repair
    # made of an ldb 7.8 WAL was format_version 6, which ldb 7.8 cannot read).
    try:
        rd.Rdict.repair(str(path), cfs.get("default", opts))
    except Exception as exc:
        raise from_native(exc, context="repairing the database") from None
