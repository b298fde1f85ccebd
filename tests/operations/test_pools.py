"""Stored tasks: checked at add time, secret split seeds, digests, pools of one kind, removal."""

from __future__ import annotations

import dataclasses
import hashlib
import stat
from pathlib import Path

import pytest
from operator_data import ROWS, OperatorData

from trainarena.operations.pools import TaskRefused, add_task, stored_definition, task_from_flags
from trainarena.settings import DataRules, Settings
from trainarena.store import list_stored_tasks, open_store, remove_stored_task
from trainarena.store.competitors import StoreError
from trainarena.tasks import TaskFileError
from trainarena.tasks.check import check_task
from trainarena.tasks.secret_split import operator_secret, split_seed
from trainarena.tasks.split import normalise, split_rows

FIELDS = {"field_instruction": "q", "field_output": "a"}


def _flags(name: str, source: Path, model: Path, **fields: str):
    return task_from_flags(name, "instruct", str(model), {"source": str(source), **(fields or FIELDS)}, 5.0)


def _add(data: OperatorData, name: str, source: Path, pool: str | None = None, **fields: str):
    with open_store(data.settings) as store, store.transaction() as session:
        added = add_task(session, data.settings, _flags(name, source, data.model, **fields), pool)
        return added.stored.name, added.stored.hidden_digest, added.check


def test_tasks_are_added_from_jsonl_csv_and_save_to_disk_with_digests(operator_data: OperatorData) -> None:
    for name, source in (("j", operator_data.jsonl), ("c", operator_data.csv), ("s", operator_data.saved)):
        _add(operator_data, name, source)
    with open_store(operator_data.settings) as store, store.session() as session:
        tasks = {task.name: task for task in list_stored_tasks(session, "text")}
        assert set(tasks) == {"j", "c", "s"}
        for task in tasks.values():
            assert task.train_rows + task.hidden_rows == len(ROWS) and task.hidden_rows > 0
            assert all(len(d) == 64 for d in (task.base_model_digest, task.dataset_digest, task.hidden_digest))
        assert tasks["j"].dataset_digest == hashlib.sha256(operator_data.jsonl.read_bytes()).hexdigest()
        assert len({tasks["j"].base_model_digest, tasks["c"].base_model_digest}) == 1
        # The recorded digest is the hidden split the task prepares with (its secret seed), again.
        definition = stored_definition(tasks["s"])
        assert check_task(definition, operator_data.settings).hidden_digest == tasks["s"].hidden_digest


def _hidden_questions(settings: Settings, split_key: str) -> list[str]:
    rules = settings.data.model_copy(update={"split_seed": split_seed(operator_secret(settings), split_key)})
    return [row["q"] for row in split_rows(ROWS, rules, lambda row: normalise(row["q"]))[1]]


def test_two_operators_secrets_give_different_hidden_splits(tmp_path: Path) -> None:
    first, second = Settings(data_dir=tmp_path / "one"), Settings(data_dir=tmp_path / "two")
    assert operator_secret(first) != operator_secret(second)
    assert _hidden_questions(first, "task:1") != _hidden_questions(second, "task:1")
    assert _hidden_questions(first, "task:1") == _hidden_questions(first, "task:1")  # stable for one operator


def test_the_seed_needs_the_secret_and_the_key_file_is_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    secret = operator_secret(settings)
    assert stat.S_IMODE(settings.split_secret_path.stat().st_mode) == 0o600
    assert operator_secret(settings) == secret  # created once, then read
    seed = split_seed(secret, "task:1")
    # Neither the public default seed nor the key alone (an empty or guessed secret) gives it.
    assert seed != DataRules().split_seed
    assert {split_seed(b"", "task:1"), split_seed(b"task:1", "task:1")}.isdisjoint({seed})
    configured = Settings(data_dir=tmp_path / "other", pools={"split_secret": "an operator's configured secret"})
    assert operator_secret(configured) == b"an operator's configured secret"
    assert not (tmp_path / "other" / "split-secret.key").exists()


def test_the_stored_definition_holds_the_split_key_but_no_seed(operator_data: OperatorData) -> None:
    _add(operator_data, "j", operator_data.jsonl)
    with open_store(operator_data.settings) as store, store.session() as session:
        (task,) = list_stored_tasks(session)
        text = str(task.definition)
    secret = operator_secret(operator_data.settings)
    assert task.definition["split_key"].startswith("j:")
    assert str(split_seed(secret, task.definition["split_key"])) not in text and secret.decode() not in text


@pytest.mark.parametrize(
    ("model", "fields", "reason"),
    [
        ("missing-model", FIELDS, "no such folder"),
        ("empty-model", FIELDS, "none of ['config.json', 'model_index.json']"),
        ("model", {"field_instruction": "question", "field_output": "a"}, "missing column 'question'"),
    ],
)
def test_a_task_that_fails_a_check_is_refused_and_nothing_is_stored(
    operator_data: OperatorData, model: str, fields: dict[str, str], reason: str
) -> None:
    (operator_data.model.parent / "empty-model").mkdir()
    with open_store(operator_data.settings) as store, store.transaction() as session:
        with pytest.raises(TaskRefused, match=reason.replace("[", r"\[").replace("]", r"\]")):
            add_task(session, operator_data.settings,
                     _flags("bad", operator_data.jsonl, operator_data.model.parent / model, **fields), None)
    with open_store(operator_data.settings) as store, store.session() as session:
        assert list_stored_tasks(session) == []


def test_a_pool_holds_one_kind_and_names_are_unique(operator_data: OperatorData) -> None:
    _add(operator_data, "j", operator_data.jsonl, pool="mine")
    with pytest.raises(TaskRefused, match="already stored"):
        _add(operator_data, "j", operator_data.csv)
    with open_store(operator_data.settings) as store, store.transaction() as session:
        from trainarena.store import add_stored_task

        with pytest.raises(StoreError, match="pool 'mine' holds text tasks"):
            add_stored_task(session, name="img", pool="mine", kind="image", definition={"task_type": "image"},
                            base_model_digest="", dataset_digest="", hidden_digest="", train_rows=1, hidden_rows=1)


def test_removing_the_last_task_of_a_pool_removes_the_pool(operator_data: OperatorData) -> None:
    _add(operator_data, "j", operator_data.jsonl, pool="mine")
    with open_store(operator_data.settings) as store, store.transaction() as session:
        remove_stored_task(session, "j")
    with open_store(operator_data.settings) as store, store.session() as session:
        with pytest.raises(StoreError, match="no task pool named 'mine'"):
            list_stored_tasks(session, "mine")
        with pytest.raises(StoreError, match="no stored task named 'j'"):
            remove_stored_task(session, "j")


@pytest.mark.parametrize("budget", [float("inf"), float("nan"), 0.0])
def test_flags_are_checked_as_a_task_file_is(tmp_path: Path, budget: float) -> None:
    with pytest.raises(TaskFileError, match=f"^budget_seconds must be a positive number, got {budget}$"):
        task_from_flags("t", "instruct", "model", {"source": "rows.jsonl", **FIELDS}, budget)


def test_table_and_list_keys_are_given_as_json_flags() -> None:
    chat = task_from_flags("c", "chat", "model", {"source": "chats.jsonl", "role_map": '{"human": "user", "bot": "assistant"}'}, 5.0)
    assert chat.dataset["role_map"] == {"human": "user", "bot": "assistant"}
    functions = '[{"source": "def r(completions, **kw):\\n    return [0.0] * len(completions)\\n", "weight": 2}]'
    grpo = task_from_flags("g", "grpo", "model", {"source": "q.jsonl", "field_prompt": "q", "reward_functions": functions}, 5.0)
    assert grpo.dataset["reward_functions"][0]["weight"] == 2
    # A format string may start with "[" or "{": only the table and list keys are JSON.
    assert task_from_flags("i", "instruct", "model", {"source": "r.jsonl", "format": "[INST] {instruction}"}, 5.0).dataset["format"] == (
        "[INST] {instruction}")
    with pytest.raises(TaskFileError, match=r"--role-map takes JSON, .* got 'human=user' \(Expecting value\); or write a task file"):
        task_from_flags("c", "chat", "model", {"source": "chats.jsonl", "role_map": "human=user"}, 5.0)


def test_the_structured_keys_are_the_specs_table_and_list_fields() -> None:
    from trainarena.tasks.chat.spec import ChatDatasetSpec
    from trainarena.tasks.dpo.spec import DpoDatasetSpec
    from trainarena.tasks.grpo.spec import GrpoDatasetSpec
    from trainarena.tasks.image.spec import ImageDatasetSpec
    from trainarena.tasks.instruct.spec import InstructDatasetSpec
    from trainarena.tasks.spec_checks import STRUCTURED_KEYS

    specs = (ChatDatasetSpec, DpoDatasetSpec, GrpoDatasetSpec, ImageDatasetSpec, InstructDatasetSpec)
    structured = {f.name for spec in specs for f in dataclasses.fields(spec) if str(f.type).startswith(("dict", "tuple", "list"))}
    assert structured == STRUCTURED_KEYS
