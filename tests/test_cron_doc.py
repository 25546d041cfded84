"""docs/cron.md: its crontab lines, wrapper script and monitoring commands run as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import make_db, require_tool

DOC = Path(__file__).resolve().parent.parent / "docs" / "cron.md"
CRON_LINE = re.compile(r"^(?:\S+\s+){5}(?P<command>kvtool .*)$")


def blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```$", DOC.read_text(), flags=re.M | re.S)


def crontab_commands(which: int = 0) -> list[str]:
    """The command part of each entry of the doc's first (or `which`) crontab, as cron hands it
    to /bin/sh (`\\%` -> `%`)."""
    crontab = blocks("crontab")[which]
    return [
        m.group("command").replace("\\%", "%")
        for line in crontab.splitlines()
        if (m := CRON_LINE.match(line))
    ]


class Site:
    """The doc's paths mapped into a temporary directory, and a shell that runs its lines there."""

    def __init__(self, root: Path) -> None:
        self.db = make_db(root / "app" / "db", {b"key:%04d" % i: b"v" * 20 for i in range(500)})
        self.stats = root / "stats"
        self.backup = root / "backup"
        for directory in (self.stats, self.backup):
            directory.mkdir()
        self.tmp = root / "tmp"
        self.tmp.mkdir()
        self.textfile = root / "textfile_collector"
        self.textfile.mkdir()

    def localize(self, text: str) -> str:
        return (
            text.replace("/tmp/kvtool-", f"{self.tmp}/kvtool-")
            .replace("/srv/app/db", str(self.db))
            .replace("/var/lib/kvtool", str(self.stats))
            .replace("/var/lib/node_exporter/textfile_collector", str(self.textfile))
            .replace("/srv/backup", str(self.backup))
            .replace("--wait-lock 10m", "--wait-lock 1s")  # the tests' owner does not let go
        )

    def sh(self, script: str) -> subprocess.CompletedProcess[bytes]:
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        return subprocess.run(
            ["/bin/sh", "-c", self.localize(script)],
            capture_output=True,
            env={**os.environ, "PATH": path},
            timeout=120,
            check=False,
        )


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_the_doc_has_a_crontab_line_per_maintenance_command() -> None:
    commands = crontab_commands()
    assert [c.split()[1] for c in commands] == ["compact", "verify", "checkpoint"]
    assert all(" -q " in c for c in commands)


def test_crontab_lines_run_quietly_and_write_their_stats(site: Site) -> None:
    for command in crontab_commands():
        result = site.sh(command)
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout == result.stderr == b"", command

    compact = json.loads((site.stats / "compact.json").read_text())
    verify = json.loads((site.stats / "verify.json").read_text())
    assert compact["status"] == "ok" and compact["io_rate"] == 50_000_000
    assert verify["status"] == "ok" and verify["records"] == 500
    (copy,) = site.backup.iterdir()
    assert re.fullmatch(r"app-\d{4}-\d{2}-\d{2}", copy.name)
    assert site.sh(f"kvtool verify -q {copy}").returncode == 0


def test_monitoring_commands_work_on_the_stats_files(site: Site) -> None:
    require_tool("jq")
    for command in crontab_commands()[:2]:
        assert site.sh(command).returncode == 0
    (monitoring,) = [b for b in blocks("sh") if "jq" in b]
    check, reclaimed = [line for line in monitoring.splitlines() if line.startswith(("find", "jq"))]

    assert site.sh(check).returncode == 0
    assert int(site.sh(reclaimed).stdout) >= 0
    (site.stats / "verify.json").write_text('{"status": "failed"}\n')
    assert site.sh(check).returncode != 0


def test_the_wrapper_keeps_quiet_about_a_busy_night_only(
    site: Site, writer_process: Callable[[Path], subprocess.Popen[str]]
) -> None:
    (wrapper,) = [b for b in blocks("sh") if b.startswith("#!/bin/sh")]
    writer_process(site.db)

    first = site.sh(wrapper)  # busy, and no successful run on record: report it
    (site.stats / "compact.ok").touch()  # as the wrapper does after a success
    later = site.sh(wrapper)  # busy, but the last success is recent: keep quiet

    assert first.returncode == 75
    assert b"locked by another process" in first.stderr
    assert later.returncode == 0
    assert later.stdout == later.stderr == b""


def test_digest_comparison_line(site: Site) -> None:
    (compare,) = [b for b in blocks("sh") if "--digest" in b]
    assert site.sh(f"kvtool checkpoint -q /srv/app/db {site.backup}/app-2026-11-22").returncode == 0

    result = site.sh(compare)

    assert result.returncode == 0, result.stderr
    assert result.stdout == b"same\n"


def test_prometheus_crontab_lines_write_what_the_alert_rules_read(site: Site) -> None:
    from .test_stats import require_module

    parser = require_module("prometheus_client.parser")
    commands = crontab_commands(1)
    assert [c.split()[1] for c in commands] == ["verify", "checkpoint"]
    for command in commands:
        result = site.sh(command)
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout == result.stderr == b"", command

    names: set[str] = set()
    for prom in sorted(site.textfile.iterdir()):
        assert prom.suffix == ".prom", prom  # no temporary file left for the collector to read
        families = list(parser.text_string_to_metric_families(prom.read_text()))
        names |= {f.name for f in families}
        success = {f.name: f.samples[0] for f in families}["kvtool_last_run_success"]
        assert success.value == 1 and success.labels["database"] == str(site.db)
    (rules,) = blocks("yaml")
    used = set(re.findall(r"\b(kvtool_[a-z_]+)", rules))
    assert used and used <= names, used - names
