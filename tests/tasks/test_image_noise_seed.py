"""A stored image task's evaluation noise comes from its own seed, derived from the operator's secret and
its split key (tasks/secret_split.py), never the public ``eval_master_seed`` that a LoRA could learn;
an ad-hoc task (no split key) keeps the public seed. The slow scoring tests are in test_image_eval.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import trainarena.tasks.child_evaluation as child_evaluation
from trainarena.contract import Direction, TaskType
from trainarena.runs import definition_json
from trainarena.settings import ImageRules, Settings
from trainarena.tasks import get_task_type
from trainarena.tasks.base import Evaluation, PreparedTask, TaskDefinition
from trainarena.tasks.image.evaluation import noise_seeds
from trainarena.tasks.secret_split import noise_master_seed, noise_source, operator_secret, split_seed

PUBLIC = ImageRules().eval_master_seed
STYLE = TaskDefinition("style", TaskType.IMAGE, "tiny-sd", {"source": "style.zip", "kind": "style", "model_type": "sd"},
                       10.0, split_key="style:0a1b2c3d")  # fmt: skip


def operator(tmp_path: Path, secret: str) -> Settings:
    return Settings(data_dir=tmp_path / secret, pools={"split_secret": secret})


def test_each_stored_task_under_each_secret_has_its_own_noise(tmp_path: Path) -> None:
    ours, theirs = operator(tmp_path, "our operator's secret"), operator(tmp_path, "another operator's secret")
    other_task = replace(STYLE, name="person", split_key="person:4e5f6a7b")
    seed = noise_master_seed(STYLE, ours)
    assert noise_master_seed(STYLE, ours) == seed  # the same task and secret: the same noise, every evaluation
    seeds = {seed, noise_master_seed(other_task, ours), noise_master_seed(STYLE, theirs), PUBLIC}
    assert len(seeds) == 4
    assert noise_seeds(seed, 2) != noise_seeds(noise_master_seed(other_task, ours), 2) != noise_seeds(PUBLIC, 2)
    # Derived under its own label: the task's split seed (revealed with it) is another number.
    assert seed != split_seed(operator_secret(ours), STYLE.split_key)
    assert noise_source(STYLE) == "secret"


def test_an_ad_hoc_task_and_a_replayed_older_record_keep_the_public_seed(tmp_path: Path) -> None:
    ours = operator(tmp_path, "our operator's secret")
    ad_hoc, older = replace(STYLE, split_key=None), replace(STYLE, public_noise=True)
    assert noise_master_seed(ad_hoc, ours) == noise_master_seed(older, ours) == PUBLIC
    assert noise_source(ad_hoc) == noise_source(older) == "public"
    # How an audit scores a run, not what the task is: the stored definition and its digest are unchanged.
    assert definition_json(older) == definition_json(STYLE) and "public_noise" not in definition_json(STYLE)


def test_the_evaluator_is_asked_with_the_tasks_seed_and_the_result_says_where_it_came_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    asked: list[dict[str, Any]] = []

    def child(task_type: TaskType, direction: Direction, request: dict[str, Any], rules: object) -> Evaluation:
        asked.append(request)
        return Evaluation(0.25, direction, per_example=(0.25,), details={"images": 1})

    monkeypatch.setattr(child_evaluation, "evaluate_in_child", child)
    ours = operator(tmp_path, "our operator's secret")
    prepared = PreparedTask(tmp_path / "train.zip", {}, tmp_path / "hidden" / "captions.jsonl", 3, 1)
    plugin = get_task_type(TaskType.IMAGE)
    stored = plugin.evaluate(STYLE, prepared, tmp_path / "artifact", ours)
    ad_hoc = plugin.evaluate(replace(STYLE, split_key=None), prepared, tmp_path / "artifact", ours)
    assert [request["image_rules"]["eval_master_seed"] for request in asked] == [noise_master_seed(STYLE, ours), PUBLIC]
    assert (stored.details, ad_hoc.details) == ({"images": 1, "noise_seed": "secret"}, {"images": 1, "noise_seed": "public"})
    rest = {name: value for name, value in asked[0]["image_rules"].items() if name != "eval_master_seed"}
    assert rest == {name: value for name, value in ours.image.model_dump(mode="json").items() if name != "eval_master_seed"}
