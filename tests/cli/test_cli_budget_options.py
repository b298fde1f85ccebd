"""A --budget option takes a finite number of seconds above 0, as a task file's budget_seconds does:
typer's range let inf through (and nan crashed the demo's progress bars with tracebacks), so a demo
played a whole tournament of runs failed for having no deadline, and `task add --file --budget inf`
stored a task every run of which would fail (QA round 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainarena.cli import app

TASK = 'name = "t"\ntype = "instruct"\nbase_model = "tiny"\nbudget_seconds = 30\n[dataset]\nsource = "d.jsonl"\n'


@pytest.mark.parametrize("budget", ["nan", "inf", "-1", "0", "1e400"])
@pytest.mark.parametrize("command", [["demo"], ["task", "add", "t2", "--file", "{task}"]])
def test_a_budget_no_run_can_keep_to_is_refused_before_anything_runs(
    command: list[str], budget: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    task = tmp_path / "t.toml"
    task.write_text(TASK)
    args = [part.replace("{task}", str(task)) for part in command]
    result = CliRunner().invoke(app, [*args, "--budget", budget])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--budget': must be a finite number of seconds above 0" in " ".join(result.output.replace("│", " ").split())
    assert not (tmp_path / "data").exists()  # nothing stored, nothing built
