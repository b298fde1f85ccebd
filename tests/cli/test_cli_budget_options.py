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


@pytest.mark.parametrize("budget", ["1e-300", "0.5", "1e300", "604801"])
def test_a_budget_outside_the_settings_bounds_is_refused_by_flag_and_task_file(
    budget: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1e300 s gives a run no deadline in practice, 1e-300 s fails every run at its start (QA cli 13):
    a budget is from data.budget_seconds_min (1 s) to data.budget_seconds_max (7 days)."""
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    task = tmp_path / "t.toml"
    task.write_text(TASK)
    flag = CliRunner().invoke(app, ["task", "add", "t2", "--file", str(task), "--budget", budget])
    assert flag.exit_code == 2, flag.output
    assert (f"Invalid value for '--budget': must be from 1 to 604800 seconds (settings data.budget_seconds_min and "
            f"data.budget_seconds_max), got {float(budget):g}") in " ".join(flag.output.replace("│", " ").split())
    task.write_text(TASK.replace("budget_seconds = 30", f"budget_seconds = {budget}"))
    checked = CliRunner().invoke(app, ["task", "check", str(task)])
    assert checked.exit_code == 1 and "budget_seconds must be from 1 to 604800 seconds" in checked.output
    assert not (tmp_path / "data").exists()


def test_the_budget_bounds_are_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trainarena.settings import Settings
    from trainarena.tasks import TaskFileError, budget_problem, task_file_from_data

    rules = Settings(data={"budget_seconds_max": 60}).data
    assert budget_problem(61, rules) is not None and budget_problem(60, rules) is None
    assert budget_problem(6e5) is None and budget_problem(7e5) is not None  # the defaults: up to 7 days
    data = {"name": "t", "type": "instruct", "base_model": "m", "dataset": {"source": "d"}, "budget_seconds": 61}
    with pytest.raises(TaskFileError, match="^budget_seconds must be from 1 to 60 seconds"):
        task_file_from_data(tmp_path / "body", data, written=False, rules=rules)


def test_bounds_that_leave_no_budget_are_refused() -> None:
    from pydantic import ValidationError

    from trainarena.settings import Settings

    with pytest.raises(ValidationError, match=r"data.budget_seconds_min \(10\) is above data.budget_seconds_max \(5\)"):
        Settings(data={"budget_seconds_min": 10, "budget_seconds_max": 5})
