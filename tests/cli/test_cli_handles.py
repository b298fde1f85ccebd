"""At 80 columns no table cuts a handle, a name or id a user types back into another command (run ids,
tournament, task and competitor names, attempt numbers): where the handles do not fit they fold onto
continuation lines; only free text (reasons, outcomes, margins) is cut, and no table line is wider than
80 characters. The store holds a long tournament name, long task names and a long competitor name."""

from __future__ import annotations

import json
from datetime import datetime
from io import StringIO
from pathlib import Path

import pytest
from box_table import read_table
from cli_store import LONG_NAME, LONG_TOURNAMENT, FinishedStore, build_finished_store, build_retried_store, long_named_task
from field_lines import read_fields
from rich.console import Console
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.cli.status import print_status
from trainarena.reporting.run_list import list_runs
from trainarena.settings import Settings
from trainarena.store import open_store

WIDTH = 80
RUN_HEADERS = ["run", "tournament", "round", "task", "competitor", "result↓", "reason"]
TOURNAMENT_HEADERS = ["id", "name", "kind", "status", "where", "runs", "champion", "outcome"]
ATTEMPT_HEADERS = ["#", "status", "driver", "started", "wall", "score↓"]


@pytest.fixture
def long_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FinishedStore:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return build_finished_store(tmp_path / "data", tournament=LONG_TOURNAMENT, task_source=long_named_task)


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    return result.stdout


def _listed_runs() -> list[dict]:
    runs = json.loads(_invoke("runs", "list", "--json"))
    assert runs and all(len(run["task"]) > 40 for run in runs)  # names longer than any column could hold
    return runs


def _assert_runs_whole(rows: list[list[str]], runs: list[dict]) -> None:
    assert [[row[0], row[1], row[3], row[4]] for row in rows] == [
        [str(run["run_id"]), run["tournament"], run["task"], run["competitor"]] for run in runs
    ]


def test_runs_list_keeps_run_ids_and_names_whole(long_names: FinishedStore) -> None:
    output = _invoke("runs", "list")
    assert all(len(line) <= WIDTH for line in output.splitlines()), output
    runs = _listed_runs()
    assert {run["tournament"] for run in runs} == {LONG_TOURNAMENT} and LONG_NAME in {run["competitor"] for run in runs}
    rows = read_table(output, WIDTH, RUN_HEADERS)
    _assert_runs_whole(rows, runs)
    assert any(row[6].endswith("…") for row in rows)  # the reasons are free text: cut to fit


def test_status_keeps_the_tournament_and_champion_names_whole(long_names: FinishedStore) -> None:
    output = _invoke("status")
    (row,) = read_table(output, WIDTH, TOURNAMENT_HEADERS)
    assert (row[0], row[1], row[6]) == (str(long_names.tournament_id), LONG_TOURNAMENT, LONG_NAME)
    assert row[7].endswith("…")  # the outcome is free text


def test_status_runs_table_keeps_names_whole(long_names: FinishedStore) -> None:
    """`status` lists the latest runs outside tournaments with `runs list`'s columns; tournament runs
    stand in for them here, since their names are the long ones."""
    with open_store(Settings()) as store, store.session() as session:
        runs = list_runs(session)
    console = Console(file=StringIO(), width=WIDTH)
    print_status(console, [], {"text": LONG_NAME}, 4, runs)
    output = console.file.getvalue()
    _assert_runs_whole(read_table(output, WIDTH, RUN_HEADERS), [run.to_json() for run in runs])


def test_tournament_list_and_champions_keep_names_whole(long_names: FinishedStore) -> None:
    (row,) = read_table(_invoke("tournament", "list"), WIDTH, TOURNAMENT_HEADERS[:-1])
    assert (row[1], row[6]) == (LONG_TOURNAMENT, LONG_NAME)
    (reign,) = read_table(_invoke("champions"), WIDTH, ["kind", "champion", "since", "tournament", "margin"])
    assert reign[1] == LONG_NAME and reign[3] == f"{LONG_TOURNAMENT} ({long_names.tournament_id})"


def test_runs_show_keeps_attempt_numbers_and_start_times_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    build_retried_store(tournament=LONG_TOURNAMENT, task_source=long_named_task)
    (retried,) = [run for run in _listed_runs() if run["competitor"] == LONG_NAME]
    detail = json.loads(_invoke("runs", "show", str(retried["run_id"]), "--json"))
    output = _invoke("runs", "show", str(retried["run_id"]))
    rows = read_table(output, WIDTH, ATTEMPT_HEADERS)
    assert [row[:2] for row in rows] == [["1", "interrupted"], ["2", "succeeded (counts)"]]
    started = [datetime.fromisoformat(line["started_at"]).strftime("%m-%d %H:%M") for line in detail["attempt_history"]]
    assert [row[3] for row in rows] == started
    # Each attempt's reason whole under the table (`runs show` shows the run in full), within the width.
    after_table = output[output.index("└") :].split("\n", 1)[1]
    reasons, _ = read_fields(after_table, WIDTH)
    expected = {f"attempt {line['number']}": line["reason"] for line in detail["attempt_history"] if line["reason"]}
    assert expected and {key: "".join(reason.split()) for key, reason in reasons.items()} == {
        key: "".join(reason.split()) for key, reason in expected.items()
    }  # where a line ends at the width, a fold and a wrap between words read alike: compare the characters


def test_tournament_show_keeps_task_and_competitor_names_whole(long_names: FinishedStore) -> None:
    output = _invoke("tournament", "show", str(long_names.tournament_id))
    runs = _listed_runs()
    lines = output.splitlines()
    assert f"{LONG_TOURNAMENT} (text)" in lines and all(run["task"] in output for run in runs)  # the bracket's labels
    headers = ["#", "competitor", "reached", "ok", "scores↓", "failed because", "weight"]
    assert sorted(row[1] for row in read_table(output, WIDTH, headers)) == sorted({run["competitor"] for run in runs})
