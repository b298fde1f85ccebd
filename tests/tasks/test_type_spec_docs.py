"""The dataset-spec examples of docs/contract.md for dpo, grpo and chat parse as the task code says, and
their documented scoring keys are the ones the code writes; the image one is what the platform writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trainarena.settings import Settings
from trainarena.tasks.chat.spec import SCORING as CHAT_SCORING
from trainarena.tasks.chat.spec import ChatDatasetSpec
from trainarena.tasks.dpo.spec import SCORING as DPO_SCORING
from trainarena.tasks.dpo.spec import DpoDatasetSpec
from trainarena.tasks.grpo.spec import SCORING as GRPO_SCORING
from trainarena.tasks.grpo.spec import GrpoDatasetSpec
from trainarena.tasks.image import script_dataset_spec
from trainarena.tasks.image.spec import ImageDatasetSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"


def block(tag: str) -> dict:
    (text,) = re.findall(rf"^```json {tag}\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    return json.loads(text)


@pytest.mark.parametrize(
    ("tag", "spec_class", "scoring"),
    [("dpo-spec", DpoDatasetSpec, DPO_SCORING), ("grpo-spec", GrpoDatasetSpec, GRPO_SCORING), ("chat-spec", ChatDatasetSpec, CHAT_SCORING)],
)
def test_documented_specs_parse_and_name_real_scoring_keys(tag, spec_class, scoring):
    data = block(tag)
    spec = spec_class.from_dict(data)
    assert spec.source == "train.jsonl" and data["task_type"] == tag.split("-")[0]
    assert set(data["scoring"]) - {"..."} <= set(scoring)
    assert data["scoring"]["direction"] == scoring["direction"]


def test_documented_reward_function_is_named_from_its_source():
    spec = GrpoDatasetSpec.from_dict(block("grpo-spec"))
    assert [f.name for f in spec.reward_functions] == ["correct_answer"] and spec.weights() == [1.0]


def test_documented_image_spec_is_what_a_script_gets():
    """Every key and every scoring constant, as the platform's defaults write them (the image count is the task's)."""
    documented = block("image-spec")
    settings = Settings()
    spec = ImageDatasetSpec.from_dict({"source": "x", "kind": documented["kind"], "model_type": documented["model_type"]},
                                      settings.image.model_types)
    assert documented == script_dataset_spec(spec, settings, train_images=documented["images"])
