"""`trainarena doctor`: the table at 80 and 120 columns, --json, and the exit code."""

from __future__ import annotations

import json
import shutil

import pytest
from rich.console import Console
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.cli.doctor import print_doctor
from trainarena.execution.capabilities import Capabilities, Feature

SAMPLE = Capabilities(
    backend="bwrap",
    can_isolate=True,
    verdict="bwrap can isolate runs here.",
    features=(
        Feature("bwrap", True, "bubblewrap 0.8.0 at /usr/bin/bwrap", True),
        Feature("cgroup memory", True, "cgroup v1 at /sys/fs/cgroup/memory/" + "nested/" * 20, False),
        Feature("cgroup pids", False, "absent", False,
                "no process-count cap at all (RLIMIT_NPROC does not bind root): a fork bomb floods the host",
                "mount the pids controller writable (cgroup v1: /sys/fs/cgroup/pids) or delegate it"),
        Feature("disk cap /output", True, "20000 MB: RLIMIT_FSIZE per file, total measured every 0.5 s", False),
    ),
)


@pytest.mark.parametrize("width", [80, 120])
def test_the_table_keeps_one_line_per_feature_and_explains_what_is_missing(width: int) -> None:
    console = Console(width=width, record=True, color_system=None)
    print_doctor(console, SAMPLE)
    lines = console.export_text().splitlines()
    assert all(len(line) <= width for line in lines)
    for feature in SAMPLE.features:  # one row each, never wrapped
        rows = [line for line in lines if line.startswith("│ ") and feature.name in line]
        assert len(rows) == 1, feature.name
    memory_row = next(line for line in lines if "cgroup memory" in line)
    assert memory_row.rstrip(" │").endswith("…")  # the long path is ellipsised, not wrapped
    assert "│ cgroup pids      │ no      │ absent" in "\n".join(lines)
    text = " ".join(" ".join(lines).split())
    assert "- cgroup pids: no process-count cap at all" in text and "Fix: mount the pids controller" in text
    assert lines[-1] == "bwrap can isolate runs here."


needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")



@needs_bwrap
def test_json_on_this_host_exits_zero_with_bwrap(runner: CliRunner) -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["backend"] == "bwrap" and payload["can_isolate"] is True
    names = [feature["name"] for feature in payload["features"]]
    assert names[:4] == ["bwrap", "user namespace", "pid namespace", "net namespace"]
    assert {"cgroup memory", "cgroup pids", "cgroup cpu", "disk cap /tmp", "disk cap /output", "GPU",
            "docker daemon"} <= set(names)


def test_a_backend_that_cannot_isolate_exits_nonzero(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_SANDBOX__BACKEND", "local-unsafe")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "local-unsafe runs scripts without any isolation." in result.output
