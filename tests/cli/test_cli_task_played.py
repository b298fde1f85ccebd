"""`trainarena task show NAME` of a task a tournament played: every name a bracket prints (the demo's,
`tournament show`'s) is one `task show` finds in the same store, by that name or a digest prefix, and
shows as it was played, its runs' board with --leaderboard."""

from __future__ import annotations

import json
import re

import pytest
from box_table import read_table
from cli_store import LONG_TOURNAMENT, FinishedStore, build_finished_store, long_named_task
from field_lines import read_fields
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.contract import TaskType
from trainarena.runs import definition_json, task_key
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.adhoc import start_adhoc_run
from trainarena.store.models import RunOrigin
from trainarena.tasks.base import TaskDefinition

WIDE = 400  # no bracket line wraps: the task names are read whole
_BRACKET_TASK = re.compile(r"· task (\S+)$")


def _invoke(args: list[str], width: int = 80, exit_code: int = 0) -> str:
    result = CliRunner().invoke(app, args, env={"COLUMNS": str(width)})
    assert result.exit_code == exit_code, result.output
    return result.stdout if exit_code == 0 else result.stderr


@pytest.fixture
def long_named_tasks(tmp_path, monkeypatch: pytest.MonkeyPatch) -> FinishedStore:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return build_finished_store(tmp_path / "data", tournament=LONG_TOURNAMENT, task_source=long_named_task)


def _bracket_tasks(tournament_id: int) -> list[str]:
    lines = _invoke(["tournament", "show", str(tournament_id)], WIDE).splitlines()
    return [match[1] for match in map(_BRACKET_TASK.search, lines) if match]


@pytest.mark.parametrize("width", [80, 50])
def test_every_task_a_bracket_names_is_one_task_show_finds(long_named_tasks: FinishedStore, width: int) -> None:
    names = _bracket_tasks(long_named_tasks.tournament_id)
    runs = json.loads(_invoke(["runs", "list", "--json"]))
    assert names and set(names) == {run["task"] for run in runs}
    for name in names:
        fields, rest = read_fields(_invoke(["task", "show", name], width), width)
        assert fields["task"] == f"{name} (instruct)" and fields["base model"] == "tiny"
        own = [run for run in runs if run["task"] == name]
        assert fields["runs"] == f"{len(own)} by {len({run['competitor'] for run in own})} entrants"
        assert f"trainarenataskshow{name}--leaderboard" in "".join("".join(rest).split())  # folded at 50
        shown = json.loads(_invoke(["task", "show", name, "--json"]))
        assert shown["name"] == name and fields["digest"] == shown["digest"] and shown["budget_seconds"] == 1.0


def test_a_played_task_is_found_by_a_digest_prefix_and_ranks_its_runs(long_named_tasks: FinishedStore) -> None:
    name = _bracket_tasks(long_named_tasks.tournament_id)[0]
    shown = json.loads(_invoke(["task", "show", name, "--leaderboard", "--json"]))
    assert json.loads(_invoke(["task", "show", shown["digest"][:8], "--json"]))["name"] == name
    entrants = [line["entrant"] for line in shown["leaderboard"]["lines"]]
    output = _invoke(["task", "show", name, "--leaderboard"])
    table = output[output.index("┏"):]
    assert [row[1] for row in read_table(table, 80, ["rank", "entrant", "kind", "best↓", "run", "runs"])] == entrants


def test_a_name_neither_stored_played_nor_a_file_is_a_clear_error(long_named_tasks: FinishedStore) -> None:
    message = " ".join(_invoke(["task", "show", "instruct-r9-k009-0"], exit_code=1).split())
    assert "no task file 'instruct-r9-k009-0': not a file, nor a task in" in message
    assert message.endswith(", nor a task stored or run on in this store")


def test_a_played_task_no_run_scored_on_says_which_way_is_better(runner: CliRunner) -> None:
    """Its type fixes the direction before any score (it said 'none yet'); GRPO's is higher."""
    task = TaskDefinition("rewarded", TaskType.GRPO, "tiny", {"source": "prompts.jsonl"}, 10.0)
    with open_store(Settings()) as store, store.transaction() as session:
        start_adhoc_run(session, origin=RunOrigin.ADHOC, definition=definition_json(task), digest=task_key(task))
    fields, _ = read_fields(_invoke(["task", "show", "rewarded"]), 80)
    assert fields["score"] == "higher is better" and fields["runs"] == "1 by 1 entrant"
    shown = json.loads(_invoke(["task", "show", "rewarded", "--leaderboard", "--json"]))
    assert shown["direction"] == shown["leaderboard"]["direction"] == "higher"
