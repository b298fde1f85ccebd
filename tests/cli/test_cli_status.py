"""`trainarena status` through typer's CliRunner, on a store under a temporary data dir."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

from sqlalchemy import delete, inspect
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.model import Stage
from trainarena.orchestrator import create_tournament, drive
from trainarena.runs import RunReport, RunRequest
from trainarena.settings import LeaseRules, Settings
from trainarena.store import TournamentLease, add_competitor, open_store, open_store_url
from trainarena.store.leases import DriverIdentity, try_acquire
from trainarena.tasks.base import Evaluation, TaskDefinition


def _task(kind: str, stage: Stage, match_id: str, index: int, seed: int) -> TaskDefinition:
    return TaskDefinition(f"{match_id}-{index}", TaskType.INSTRUCT, "tiny", {"seed": seed}, 1.0, seed)


class SkillByName:
    """c0 is best, c1 next, ...: loss equals the competitor's number."""

    def execute(self, request: RunRequest) -> RunReport:
        loss = float(request.competitor.name.removeprefix("c"))
        return RunReport(RunStatus.SUCCEEDED, 0.0, 1.0, evaluation=Evaluation(loss, Direction.LOWER))



def _fill_store() -> None:
    settings = Settings()
    names = [f"c{i}" for i in range(4)]
    with open_store(settings) as store:
        with store.transaction() as session:
            for name in names:
                add_competitor(session, name=name, repo_url="u", commit="0" * 40, tree_hash=name,
                               source_digest=name, entrypoint="train.py")
            first = create_tournament(session, name="week-1", kind="text", seed=1, entrants=names).id
        common = {"task_source": _task, "executor": SkillByName(), "rules": settings.rules,
                  "weight_rules": settings.weights, "work_dir": settings.work_dir}
        drive(store, first, **common)
        with store.transaction() as session:
            second = create_tournament(session, name="week-2", kind="text", seed=2, entrants=names[1:]).id
        assert drive(store, second, max_steps=2, **common) is None  # round 0 created, one run done


def test_status_json_reports_each_tournament(runner: CliRunner) -> None:
    _fill_store()
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["competitors"] == 4
    assert payload["champions"] == {"text": "c0", "image": None}
    first, second = payload["tournaments"]
    assert (first["name"], first["status"], first["champion_after"]) == ("week-1", "finished", "c0")
    assert first["runs_done"] == first["runs_total"] > 0 and first["finished_at"] is not None
    assert (second["name"], second["status"], second["champion_before"]) == ("week-2", "running", "c0")
    assert (second["round_index"], second["stage"], second["runs_done"]) == (0, "knockout", 1)
    assert second["runs_total"] == 2  # three entrants: one pair plays, one bye


def test_status_tables_show_where_each_stands(runner: CliRunner) -> None:
    _fill_store()
    result = runner.invoke(app, ["status"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "4 competitors registered; champions: text: c0, image: -" in result.output
    lines = {line.split("│")[2].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert "finished" in lines["week-1"] and "c0" in lines["week-1"]
    assert "round 1 (knockout)" in lines["week-2"] and "1/2" in lines["week-2"] and "c0 (defending)" in lines["week-2"]


def test_status_on_an_empty_data_dir(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"competitors": 0, "champions": {"text": None, "image": None}, "tournaments": [],
                                         "latest_adhoc_runs": []}
    with open_store_url(Settings().db_url, migrate=False) as store:  # made where the settings say (a SQLite file by default)
        assert inspect(store.engine).has_table("tournament")
    assert "No tournaments yet." in runner.invoke(app, ["status"]).output


def test_status_at_80_columns_keeps_where_whole_and_leaves_the_outcome_out() -> None:
    """The QA saw `round 1…`, `not sta…` and `nobody …` at 80 columns, where `tournament list` shows
    "where" whole: "where" was free text, so it was cut first; it is a short value now, and the outcome,
    the free text, gives way (named under the table) where both do not fit."""
    from datetime import UTC, datetime
    from io import StringIO

    from rich.console import Console

    from trainarena.cli.status import print_status
    from trainarena.store import TournamentSummary

    def summary(id: int, name: str, status: str, round_index: int | None, champion: str | None, reason: str | None) -> TournamentSummary:
        return TournamentSummary(id, name, "text", status, 1, 2, round_index, None if round_index is None else "knockout",
                                 2 if round_index is not None else 0, 2 if round_index is not None else 0, None, champion,
                                 reason, datetime.now(UTC), None, None)  # fmt: skip

    console = Console(file=StringIO(), width=80)
    print_status(console, [
        summary(1, "text-w-1", "finished", 0, None, "nobody produced a valid score in the last round; no champion to retain: no winner"),
        summary(2, "x\x1b[31mred", "created", None, None, None),  # the QA's store: a name written escaped, 12 cells
    ], {"text": None, "image": None}, 2, [])  # fmt: skip
    output = console.file.getvalue()
    assert all(len(line) <= 80 for line in output.splitlines())
    assert "round 1 (knockout)" in output and "not started" in output and "…" not in output
    assert "left out at this width: outcome" in output


def _hold_lease(host: str, pid: int) -> None:
    with open_store(Settings()) as store, store.transaction() as session:
        assert try_acquire(session, 2, DriverIdentity("someone", host, pid), LeaseRules()) is None


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_status_says_no_driver_holds_a_running_tournament_left_stopped(runner: CliRunner) -> None:
    _fill_store()  # week-2 driven two steps, then left: its lease released
    second = json.loads(runner.invoke(app, ["status", "--json"]).output)["tournaments"][1]
    assert second["driver"]["alive"] is False and second["driver"]["pid"] is None and second["driver"]["since"]
    assert json.loads(runner.invoke(app, ["status", "--json"]).output)["tournaments"][0].get("driver") is None
    result = runner.invoke(app, ["status"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert re.search(r"tournament 2: stopped: no driver since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC;", said) and "`trainarena tournament run 2` resumes it" in said
    assert max(len(line) for line in result.output.splitlines()) <= 80
    shown = runner.invoke(app, ["tournament", "show", "2"], env={"COLUMNS": "80"})
    assert "stopped: no driver since" in " ".join(shown.output.split()), shown.output
    assert json.loads(runner.invoke(app, ["tournament", "show", "2", "--json"]).output)["driver"]["alive"] is False
    assert json.loads(runner.invoke(app, ["tournament", "show", "1", "--json"]).output)["driver"] is None  # finished
    listed = json.loads(runner.invoke(app, ["tournament", "list", "--json"]).output)
    assert [t["driver"] and t["driver"]["alive"] for t in listed] == [None, False]
    said = " ".join(runner.invoke(app, ["tournament", "list"], env={"COLUMNS": "80"}).output.split())
    assert "tournament 2: stopped: no driver since" in said and "`trainarena tournament run 2` resumes it" in said


def test_status_names_the_live_driver_or_the_dead_one(runner: CliRunner) -> None:
    _fill_store()
    _hold_lease(socket.gethostname(), _dead_pid())  # killed: its lease is left behind
    driver = json.loads(runner.invoke(app, ["status", "--json"]).output)["tournaments"][1]["driver"]
    assert driver["alive"] is False and driver["host"] == socket.gethostname()
    assert "tournament 2: stopped: no driver since" in " ".join(runner.invoke(app, ["status"]).output.split())
    with open_store(Settings()) as store, store.transaction() as session:
        session.execute(delete(TournamentLease))
    _hold_lease("elsewhere", 4242)  # a live driver on another host (its lease not expired)
    driver = json.loads(runner.invoke(app, ["status", "--json"]).output)["tournaments"][1]["driver"]
    assert driver == {"alive": True, "host": "elsewhere", "pid": 4242, "since": None}
    assert "tournament 2: driven by elsewhere pid 4242" in runner.invoke(app, ["status"]).output
    shown = runner.invoke(app, ["tournament", "show", "2"], env={"COLUMNS": "80"})
    assert "driven by elsewhere pid 4242" in shown.output
