"""The Prometheus text exposition format of one run's stats envelope, for node_exporter's
textfile collector (docs/cron.md describes the metrics)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

PREFIX = "kvtool_"

# The envelope's own metrics: (name, help). The figures follow as kvtool_last_run_<figure>.
_ENVELOPE = (
    ("last_run_info", "The last run of a kvtool command on a database: status and versions."),
    ("last_run_exit_code", "Exit code of the last run (0 done; see `kvtool --help`)."),
    ("last_run_success", "1 when the last run's status was ok, else 0."),
    ("last_run_timestamp_seconds", "When the last run ended, in seconds since the Unix epoch."),
    ("last_run_duration_seconds", "How long the last run took, in seconds."),
    (
        "last_success_timestamp_seconds",
        "When the last run whose status was ok ended (kept from the file this run replaced).",
    ),
)

# A list of objects in the figures becomes one sample per object, labelled by its name or level;
# the metric name gets the singular (column_families[].records -> kvtool_last_run_cf_records).
_LISTS = {"column_families": ("cf", "name", "column_family"), "levels": ("level", "level", "level")}

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")
_SUCCESS_SAMPLE = re.compile(
    r"^kvtool_last_success_timestamp_seconds\{(?P<labels>[^\n]*)\}\s+(?P<value>\S+)\s*$", re.M
)


def render(
    envelope: Mapping[str, Any], figures: Mapping[str, Any], previous: str | None = None
) -> str:
    """The text exposition of a run: its `envelope` (kvtool.cli.report builds it) and the numbers
    among the command's own `figures`. `previous` is the text of
    the file this one replaces: its last-success timestamp is kept when this run did not succeed,
    so "the newest good checkpoint is older than N hours" stays answerable."""
    labels = {"command": str(envelope["command"]), "database": str(envelope["database"])}
    engine = envelope.get("engine") or {}
    info = {
        **labels,
        "status": str(envelope["status"]),
        "kvtool_version": str(envelope.get("kvtool_version") or ""),
        "engine": str(engine.get("name") or ""),
        "rocksdb_version": str(engine.get("rocksdb_version") or ""),
    }
    ended = _epoch(str(envelope["ended_at"]))
    ok = envelope["status"] == "ok"
    success = ended if ok else _previous_success(previous, labels)
    values: dict[str, list[tuple[dict[str, str], float]]] = {
        "last_run_info": [(info, 1)],
        "last_run_exit_code": [(labels, envelope["exit_code"])],
        "last_run_success": [(labels, 1 if ok else 0)],
        "last_run_timestamp_seconds": [(labels, ended)],
        "last_run_duration_seconds": [(labels, envelope["elapsed_seconds"])],
        "last_success_timestamp_seconds": [(labels, success)] if success is not None else [],
    }
    lines: list[str] = []
    for name, help_text in _ENVELOPE:
        lines += _family(PREFIX + name, help_text, values[name])
    grouped: dict[str, list[tuple[dict[str, str], float]]] = {}
    helps: dict[str, str] = {}
    for key, figure in figures.items():
        for path, extra, value in _numbers(key, figure):
            metric, factor, side = _metric_name(path)
            name = f"{PREFIX}last_run_{metric}"
            grouped.setdefault(name, []).append(({**labels, **extra, **side}, value * factor))
            helps.setdefault(name, f"The last run's {'.'.join(path)} (docs/cron.md: Monitoring).")
    for name, samples in grouped.items():
        lines += _family(name, helps[name], samples)
    return "\n".join(lines) + "\n"


def _family(name: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> list[str]:
    if not samples:
        return []
    out = [f"# HELP {name} {_escape_help(help_text)}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        pairs = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
        out.append(f"{name}{{{pairs}}} {_number(value)}")
    return out


def _numbers(key: str, value: Any) -> Iterator[tuple[list[str], dict[str, str], float]]:
    """(name path, extra labels, value) of every number below `key`; text is left out."""
    if isinstance(value, bool):
        yield [key], {}, 1 if value else 0
    elif isinstance(value, (int, float)):
        yield [key], {}, value
    elif isinstance(value, Mapping):
        for sub, inner in value.items():
            for path, labels, number in _numbers(str(sub), inner):
                yield [key, *path], labels, number
    elif isinstance(value, list) and key in _LISTS:
        part, field, label = _LISTS[key]
        for item in value:
            if not isinstance(item, Mapping) or field not in item:
                continue
            for sub, inner in item.items():
                if sub == field:
                    continue
                for path, labels, number in _numbers(str(sub), inner):
                    yield [part, *path], {label: str(item[field]), **labels}, number


# Prometheus wants base units, spelled out (promtool's lint): the figures' short suffixes become
# these, with the value multiplied by the factor.
_UNITS = (
    ("mb_per_s", "bytes_per_second", 1_000_000),
    ("_per_s", "_per_second", 1),
    ("_s", "_seconds", 1),
)


def _metric_name(path: list[str]) -> tuple[str, int, dict[str, str]]:
    """The metric name of a figure's path, the factor its value is scaled by, and a label that
    takes the place of a part of the name: diff's records_a and records_b are `records` with
    side="a" and side="b" (a name part `_b` reads as an abbreviated "bytes")."""
    name = "_".join(path)
    side = {}
    if match := re.fullmatch(r"(.+)_([ab])", name):
        name, side = match.group(1), {"side": match.group(2)}
    for suffix, spelled, factor in _UNITS:
        if name.endswith(suffix):
            name, scale = name[: -len(suffix)] + spelled, factor
            break
    else:
        scale = 1
    return _NAME_UNSAFE.sub("_", name), scale, side


def escape_label(value: str) -> str:
    """A label value as the exposition format spells it: backslash, double quote and newline
    escaped; text that is not UTF-8 (a path's surrogate escapes) as backslash escapes."""
    text = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _epoch(iso: str) -> float:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp(), 3)


def _previous_success(previous: str | None, labels: Mapping[str, str]) -> float | None:
    if not previous:
        return None
    wanted = {f'{k}="{escape_label(v)}"' for k, v in labels.items()}
    for match in _SUCCESS_SAMPLE.finditer(previous):
        if set(_split_labels(match.group("labels"))) == wanted:
            try:
                return float(match.group("value"))
            except ValueError:
                return None
    return None


def _split_labels(text: str) -> list[str]:
    """`a="x",b="y,\\"z"` -> ['a="x"', 'b="y,\\"z"']: commas inside quoted values stay."""
    return re.findall(r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"', text)
