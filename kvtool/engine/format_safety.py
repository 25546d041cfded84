"""Format safety: whether kvtool can write to a database without changing what its owner reads.

A write opens the database with its own options (`Options.load_latest`), so new files keep the
table format_version the owner chose. What the engine cannot carry over is dropped *silently* by
RocksDB (measured on rocksdict 0.3.29 / RocksDB 9.8): an application's own merge operator,
compaction filter or prefix extractor comes back as `nullptr`, and files written after that (a
flush, a compaction) no longer follow the owner's rules. So the check is empirical: the options
are loaded exactly as a write would load them, written by the engine into a scratch database,
and the settings that decide what data means are compared, column family by column family, with
the owner's OPTIONS file. Anything that differs, or cannot be loaded at all, is refused unless
the caller passes `force`.

A comparator or merge operator that the engine cannot load is different: it is not a format
concern but the meaning of the data. RocksDB 9.8 replays a WAL merge record without an operator by
silently dropping the rest of the log (a read then shows fewer records, a write makes the loss
permanent), and a point lookup or reverse step that meets a merge operand without an operator
crashes the process (SIGSEGV). So `unmet_needs` is checked before every open, read or write, and
refused with UnavailableError (exit 69) whatever `force` says.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kvtool.engine.ondisk import sst_format_version as sst_format_version
from kvtool.engine.ondisk import sst_format_versions as sst_format_versions
from kvtool.engine.options_file import OptionsFile, read_options_file
from kvtool.errors import StorageError, UnavailableError, UsageError

# CFOptions that change what the data means or how it is ordered: a difference is refused.
CRITICAL_CF_OPTIONS = (
    "comparator",
    "merge_operator",
    "compaction_filter",
    "compaction_filter_factory",
    "prefix_extractor",
    "memtable_insert_with_hint_prefix_extractor",
    "table_factory",
)
# Table options whose change makes new files unreadable to the owner's RocksDB.
CRITICAL_TABLE_OPTIONS = ("format_version",)

BYTEWISE = "leveldb.BytewiseComparator"
NO_OPERATOR = "nullptr"
# rocksdict's default (pickle) mode orders its own key encoding with a comparator of this name.
# kvtool opens raw mode only, where rocksdict never installs it.
PICKLE_COMPARATOR = "rocksdict"


class UnsafeWriteError(UsageError):
    """A write would change how the owner's RocksDB reads the database (exit 2, `--force`)."""


@dataclass(frozen=True)
class SafetyReport:
    """What was checked; `problems` is empty when writing is safe."""

    path: Path
    owner_version: str | None
    engine_version: str | None
    problems: tuple[str, ...]
    # What no write may override (not even --force): data would be lost.
    unmet: tuple[Need, ...] = ()

    @property
    def safe(self) -> bool:
        return not self.problems and not self.unmet


# The engine writes the loaded options into a scratch database and returns its OPTIONS file,
# or raises with the reason the options could not be loaded.
OptionsRoundTrip = Callable[[Path], OptionsFile]


def _normalise(value: str) -> str:
    """`{id=X;}` and `X` name the same object; a struct's fields are compared in sorted order."""
    text = value.strip()
    if text.startswith("{") and text.endswith("}"):
        fields = sorted(f for f in re.split(r"(?<!\\);", text[1:-1]) if f)
        if len(fields) == 1 and fields[0].startswith("id="):
            return fields[0][3:]
        return "{" + ";".join(fields) + "}"
    return text


def _fields(value: str) -> dict[str, str]:
    """`{id=X;delimiter=,;}` -> {"id": "X", "delimiter": ","}; a bare name is {"id": name}."""
    text = _normalise(value)
    if not text.startswith("{"):
        return {"id": text}
    fields = {}
    for item in re.split(r"(?<!\\);", text[1:-1]):
        name, _, val = item.partition("=")
        if name:
            fields[name] = val.replace("\\", "")
    return fields


@dataclass(frozen=True)
class Need:
    """A comparator or merge operator a column family needs and the engine cannot provide."""

    cf: str
    kind: str  # "comparator" or "merge operator"
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name} (column family {self.cf!r})"


def _names(needs: tuple[Need, ...]) -> str:
    return "; ".join(map(str, needs))


def _hint(needs: tuple[Need, ...], *, writing: bool = False) -> str:
    verb = "write to" if writing else "read"
    if any(n.kind == "comparator" and n.name == PICKLE_COMPARATOR for n in needs):
        return (
            f"rocksdict wrote it in its default (pickle) mode: {verb} it with "
            "rocksdict.Rdict(path); kvtool opens raw-mode databases only"
        )
    hint = f"{verb} it through the application that owns it"
    if writing or all(n.kind == "comparator" for n in needs):
        return hint
    return (
        f"{hint}; kvtool has no raw view of merge operands: see the README, Safe on production data"
    )


def unmet_needs(path: Path, round_trip: OptionsRoundTrip) -> tuple[Need, ...]:
    """What the column families of `path` need, by its newest OPTIONS file, and the engine
    cannot load: a comparator or merge operator the engine's RocksDB does not know by name.

    The common case (every CF bytewise, no merge operator) costs one read of the OPTIONS file.
    Otherwise the options are loaded as an open loads them (`round_trip`, about 10 ms) and what
    came back is compared. Empty when the database has no OPTIONS file, or when its options cannot
    be loaded at all: the open then reports its own error.
    """
    try:
        owner = read_options_file(path)
    except OSError:
        return ()
    if owner is None:
        return ()
    wanted = {
        cf: (
            settings.get("comparator", BYTEWISE),
            _normalise(settings.get("merge_operator", NO_OPERATOR)),
        )
        for cf, settings in owner.cf_options.items()
    }
    if all(c == BYTEWISE and m == NO_OPERATOR for c, m in wanted.values()):
        return ()
    try:
        ours = round_trip(path)
    except Exception:
        return ()
    needs: list[Need] = []
    for cf, (comparator, merge) in wanted.items():
        theirs = ours.cf_options.get(cf, {})
        if comparator == PICKLE_COMPARATOR or theirs.get("comparator", BYTEWISE) != comparator:
            needs.append(Need(cf, "comparator", comparator))
        if merge == NO_OPERATOR:
            continue
        loaded = _normalise(theirs.get("merge_operator", NO_OPERATOR))
        # The engine resolved the owner's name through RocksDB's registry (`uint64add` comes
        # back as `UInt64AddOperator`): the same operator, as long as every setting the owner
        # recorded (a delimiter) came back unchanged.
        want_fields, got_fields = _fields(merge), _fields(loaded)
        settings_kept = all(got_fields.get(k) == v for k, v in want_fields.items() if k != "id")
        if loaded == NO_OPERATOR or not settings_kept:
            needs.append(Need(cf, "merge operator", owner.cf_options[cf]["merge_operator"]))
    return tuple(needs)


def merge_operator_cfs(path: Path) -> set[str]:
    """The column families whose newest OPTIONS file names a merge operator."""
    try:
        owner = read_options_file(path)
    except OSError:
        return set()
    if owner is None:
        return set()
    return {
        cf
        for cf, settings in owner.cf_options.items()
        if _normalise(settings.get("merge_operator", NO_OPERATOR)) != NO_OPERATOR
    }


def database_needs(path: str | Path, round_trip: OptionsRoundTrip) -> tuple[Need, ...]:
    """`unmet_needs` of the database at `path` with an engine's `round_trip`; empty when `path`
    is not a database (the open reports that)."""
    path = Path(path)
    try:
        if not (path / "CURRENT").is_file():
            return ()
    except OSError:
        return ()
    return unmet_needs(path, round_trip)


def refuse_unmet_for_reading(
    path: Path,
    needs: tuple[Need, ...],
    *,
    engine: str = "kvtool's RocksDB",
    hint: str | None = None,
) -> None:
    """Raise UnavailableError (exit 69) naming what `path` needs, if anything, and the `engine`
    that cannot load it (`hint`: another engine that can)."""
    if needs:
        raise UnavailableError(
            f"cannot read {path}: it needs {_names(needs)}, which {engine} cannot load",
            hint=hint or _hint(needs),
        )


def scratch_failure(reason: str) -> StorageError:
    """The error of an options check whose scratch database (in TMPDIR) could not be written: a
    full disk or a file size limit there is an I/O error (74), not options that cannot be
    loaded (which --force would override)."""
    return StorageError(
        f"cannot check the database's options: kvtool's scratch database in "
        f"{tempfile.gettempdir()} could not be written ({reason})",
        hint="free space there, or set TMPDIR to a directory with room",
    )


def _version_tuple(text: str | None) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text or "")[:3])


def assess(path: Path, round_trip: OptionsRoundTrip) -> SafetyReport:
    """Compare the owner's newest OPTIONS file with what the engine would write for it."""
    try:
        owner = read_options_file(path)
    except OSError as exc:
        return SafetyReport(path, None, None, (f"its OPTIONS file cannot be read: {exc}",))
    if owner is None:
        return SafetyReport(
            path,
            None,
            None,
            ("it has no OPTIONS file, so kvtool cannot know the options it was written with",),
        )
    problems: list[str] = []
    try:
        ours = round_trip(path)
    except StorageError:
        raise  # the scratch database's disk, not the owner's options (scratch_failure)
    except Exception as exc:
        return SafetyReport(
            path,
            owner.rocksdb_version,
            None,
            (f"its OPTIONS file ({owner.path.name}) cannot be loaded: {exc}",),
        )
    unmet = unmet_needs(path, lambda _: ours)
    unmet_cfs = {need.cf for need in unmet}
    if _version_tuple(owner.rocksdb_version) > _version_tuple(ours.rocksdb_version):
        problems.append(
            f"it was last written by RocksDB {owner.rocksdb_version}, newer than kvtool's "
            f"{ours.rocksdb_version}: options that version added would be dropped"
        )
    for cf, settings in owner.cf_options.items():
        theirs = ours.cf_options.get(cf, {})
        where = "" if cf == "default" else f" of column family {cf!r}"
        if cf in unmet_cfs:
            continue  # refused whatever --force says (see `unmet_needs`)
        # A comparator the engine loads by name (bytewise, reverse bytewise) is compared with
        # what it would write like any critical option; one it cannot load is in `unmet`.
        for name in CRITICAL_CF_OPTIONS:
            if name not in settings or name == "merge_operator":  # checked by unmet_needs
                continue
            want, got = _normalise(settings[name]), _normalise(theirs.get(name, "nullptr"))
            if want != got:
                problems.append(
                    f"{name}{where} is {settings[name]}, which kvtool's RocksDB cannot restore "
                    f"(it would write {theirs.get(name, 'nullptr')})"
                )
        owner_table, our_table = owner.table_options.get(cf, {}), ours.table_options.get(cf, {})
        for name in CRITICAL_TABLE_OPTIONS:
            if name not in owner_table:
                if owner_table.get("table_factory", "BlockBasedTable") == "BlockBasedTable":
                    problems.append(f"its OPTIONS file does not say the table {name}{where}")
                continue
            if owner_table[name] != our_table.get(name):
                problems.append(
                    f"table {name}{where} is {owner_table[name]}, but kvtool would write "
                    f"{our_table.get(name, 'its default')}"
                )
    return SafetyReport(path, owner.rocksdb_version, ours.rocksdb_version, tuple(problems), unmet)


def refuse_unless_forced(report: SafetyReport, *, force: bool) -> SafetyReport:
    """Raise UnsafeWriteError for an unsafe report, unless `force`; UnavailableError (exit 69)
    whatever `force` says when the engine cannot load a comparator or merge operator the
    database needs (the write would lose merge operands or break the key order)."""
    if report.unmet:
        losses = []
        if any(n.kind == "merge operator" for n in report.unmet):
            losses.append("the merge operands it holds")
        if any(n.kind == "comparator" for n in report.unmet):
            losses.append("its key order")
        raise UnavailableError(
            f"refusing to write to {report.path}: it needs {_names(report.unmet)}, which "
            f"kvtool's RocksDB cannot load; writing would lose {' and '.join(losses)} "
            "(--force does not override this)",
            hint=_hint(report.unmet, writing=True),
        )
    if report.safe or force:
        return report
    reasons = "; ".join(report.problems)
    raise UnsafeWriteError(
        f"refusing to write to {report.path}: {reasons}",
        hint="writing could change how its owner's RocksDB reads it; pass --force to write anyway",
    )


def check_writable_safely(
    path: str | Path, round_trip: OptionsRoundTrip, force: bool = False
) -> SafetyReport:
    """Raise UnsafeWriteError unless kvtool can write to `path` without changing its format.

    Called by the engine on every read-write open of an existing database (`open_db(...,
    force=)`), so put, delete, import, delete-range, compact and cf create/drop all pass it.
    With `force` it returns the report (its `problems` say what will not be preserved).
    """
    return refuse_unless_forced(assess(Path(path), round_trip), force=force)
