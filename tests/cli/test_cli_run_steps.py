"""`trainarena runs show` prints the platform's seconds per step of a run, read from the timings the
pipeline and the orchestrator wrote in the run's folder; `--json` carries the same steps."""

from __future__ import annotations

import json
from pathlib import Path

from cli_store import LONG_NAME, FinishedStore
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.runs import TIMINGS_FILE


def test_show_prints_the_steps_recorded_in_the_run_folder(finished_store: FinishedStore) -> None:
    listed = CliRunner().invoke(app, ["runs", "list", "--json"])
    run_id = next(run["run_id"] for run in json.loads(listed.stdout) if run["competitor"] == LONG_NAME)
    detail = json.loads(CliRunner().invoke(app, ["runs", "show", str(run_id), "--json"]).stdout)
    timings = Path(detail["log_path"]).parent / TIMINGS_FILE
    recorded = json.loads(timings.read_text())
    assert recorded["store"] >= 0 and {"slot", "claimed_at", "slot_freed_at"} <= set(recorded)  # the orchestrator's part
    timings.write_text(json.dumps(recorded | {"script": 12.5, "eval_compute": 1.25}))  # as the pipeline adds them
    shown = CliRunner().invoke(app, ["runs", "show", str(run_id)], env={"COLUMNS": "100"})
    assert shown.exit_code == 0, shown.output
    assert "steps (s)" in shown.stdout and "script 12.50" in shown.stdout and "eval_compute 1.25" in shown.stdout
    as_json = json.loads(CliRunner().invoke(app, ["runs", "show", str(run_id), "--json"]).stdout)
    # the steps in the order a run does them, the slot's own keys (not steps) left out
    assert as_json["steps"] == {"script": 12.5, "eval_compute": 1.25, "store": recorded["store"]}
    assert list(as_json["steps"]) == ["script", "eval_compute", "store"]
    timings.unlink()
    bare = CliRunner().invoke(app, ["runs", "show", str(run_id), "--json"])
    assert json.loads(bare.stdout)["steps"] is None
    assert "steps (s)" not in CliRunner().invoke(app, ["runs", "show", str(run_id)]).stdout
