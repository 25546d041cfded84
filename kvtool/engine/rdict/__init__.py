"""The rocksdict binding of the engine interface (RocksDB 9.8): the only package that imports
rocksdict.

Its rooms: `native` (error mapping, the files rocksdict writes), `options` (what a database is
opened with), `iterator`, `handles` (snapshots, write batches, SST writers), `database`, `opening`
(shadow opens and recovery checks) and `engine` (the entry point). Native objects are kept only in
`Handle._native` (engine/handles.py); methods that bind a native object or one of its bound
methods to a local drop that local in `finally`, so a traceback that keeps the frame alive cannot
keep the database open (docs/design.md, Engine facts 2).
"""

from __future__ import annotations

# check_database_dir lives in engine/ondisk.py (engine-neutral); named here too for code written
# against the old kvtool/engine/rdict.py module.
from kvtool.engine.ondisk import check_database_dir
from kvtool.engine.rdict.engine import RdictEngine
from kvtool.engine.rdict.native import CONFIG_FILE, from_native
from kvtool.engine.rdict.options import (
    NEW_DB_FORMAT_VERSION,
    bundled_rocksdb_version,
    options_round_trip,
)

__all__ = [
    "CONFIG_FILE",
    "NEW_DB_FORMAT_VERSION",
    "RdictEngine",
    "bundled_rocksdb_version",
    "check_database_dir",
    "from_native",
    "options_round_trip",
]
