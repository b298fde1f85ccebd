"""Task, pool and tournament names follow the competitor name rule (contract.stored_name_problem) at
every way in (`task add` by flags, by --file and renamed, `tournament create --name`, the store itself);
a pool stored before the rule keeps its name and can still be added to and played."""

from __future__ import annotations

import json

import pytest
from operator_data import OperatorData, add_tasks, register_example
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.operations.tournaments import create_pool_tournament
from trainarena.store import StoreError, TaskPool, add_stored_task, create_tournament, list_stored_tasks, open_store

runner = CliRunner()
ALLOWED = "use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
BAD_NAMES = ("<script>alert(1)</script>", "a/../b", "..", " ", "x\x00y", "new\nline", "-flag", "a" * 101)


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _add_by_flags(name: str, pool: str = "weekly"):
    return _invoke("task", "add", name, "--type", "instruct", "--base-model", "model", "--dataset", "rows.jsonl",
                   "--field-instruction", "q", "--field-output", "a", "--budget", "5", "--pool", pool, "--json")


def _stored(operator_data: OperatorData) -> list[str]:
    with open_store(operator_data.settings) as store, store.session() as session:
        return [task.name for task in list_stored_tasks(session)]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_task_add_refuses_a_task_name_the_rule_forbids_saying_what_is_allowed(operator_data: OperatorData, name: str) -> None:
    result = _add_by_flags(name)
    assert result.exit_code == 1, result.output
    assert json.loads(result.output)["error"] == f"task name {name!r} is not allowed: {ALLOWED}"
    assert _stored(operator_data) == []


def test_task_add_by_file_renamed_or_into_a_new_pool_follows_the_rule(operator_data: OperatorData) -> None:
    task_file = operator_data.jsonl.parent / "bad.toml"
    task_file.write_text('name = "a/../b"\ntype = "instruct"\nbase_model = "model"\nbudget_seconds = 5\n'
                         '[dataset]\nsource = "rows.jsonl"\nfield_instruction = "q"\nfield_output = "a"\n')
    from_file = _invoke("task", "add", "--file", str(task_file), "--json")
    assert from_file.exit_code == 1 and "task name 'a/../b' is not allowed" in json.loads(from_file.output)["error"]
    renamed = _invoke("task", "add", "new\nline", "--file", str(task_file), "--json")
    assert renamed.exit_code == 1 and "task name 'new\\nline' is not allowed" in json.loads(renamed.output)["error"]
    pool = _add_by_flags("fine", pool="<b>pool</b>")
    assert pool.exit_code == 1 and json.loads(pool.output)["error"] == f"pool name '<b>pool</b>' is not allowed: {ALLOWED}"
    assert _stored(operator_data) == []
    assert _invoke("task", "add", "ok-1.b_2", "--file", str(task_file), "--pool", "week.1_a-b").exit_code == 0
    assert _stored(operator_data) == ["ok-1.b_2"]


def test_tournament_create_refuses_a_name_the_rule_forbids(operator_data: OperatorData) -> None:
    for name in ("baseline", "instruct_only"):
        register_example(operator_data.settings, name)
    add_tasks(operator_data, "t1")
    refused = _invoke("tournament", "create", "--kind", "text", "--pool", "weekly", "--name", "tour<1>", "--json")
    assert refused.exit_code == 1
    assert json.loads(refused.output)["error"] == f"tournament name 'tour<1>' is not allowed: {ALLOWED}"
    created = _invoke("tournament", "create", "--kind", "text", "--pool", "weekly", "--name", "tour-1", "--json")
    assert created.exit_code == 0 and json.loads(created.output)["name"] == "tour-1"


def test_the_store_refuses_such_names_whoever_calls_it(operator_data: OperatorData) -> None:
    with open_store(operator_data.settings) as store, store.transaction() as session:
        with pytest.raises(StoreError, match="tournament name '..' is not allowed"):
            create_tournament(session, name="..", kind="text", seed=1, entrants=[])
        for name, pool, what in (("a b", "weekly", "task"), ("t", "a b", "pool")):
            with pytest.raises(StoreError, match=f"{what} name 'a b' is not allowed"):
                add_stored_task(session, name=name, pool=pool, kind="text", definition={"task_type": "instruct"},
                                base_model_digest="0" * 64, dataset_digest="0" * 64, hidden_digest="0" * 64,
                                train_rows=1, hidden_rows=1)  # fmt: skip


def test_a_pool_named_before_the_rule_takes_tasks_and_tournaments_named_by_the_rule(operator_data: OperatorData) -> None:
    settings = operator_data.settings
    for name in ("baseline", "instruct_only"):
        register_example(settings, name)
    with open_store(settings) as store, store.transaction() as session:
        session.add(TaskPool(name="old pool/1", kind="text"))
    add_tasks(operator_data, "t1", pool="old pool/1")
    with open_store(settings) as store, store.transaction() as session:
        created = create_pool_tournament(session, settings, kind="text", pool="old pool/1", seed=1)
    assert created.pool == "old pool/1" and created.tasks == ("t1",)
    assert created.name == "text-old-pool-1-1"
