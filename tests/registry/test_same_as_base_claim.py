"""A script's claim in /output/trainarena_outcome.json that it saved the base model's weights unchanged
is checked against the weights before the model card repeats it (tasks.base_weights): the script that
trains a customer's job is a competitor's, and the card took its word. A full model must hold the base
model's tensors exactly (names, shapes, values; a floating dtype may be another, the base's values cast to it); an adapter must add nothing (every LoRA
pair's B @ A zero: B zero, A zero, or their product). A claim the weights do not bear out is not shown; the card says the weights differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from registry_data import write_base_model, write_full_artifact, write_image_artifact, write_peft_artifact
from safetensors.torch import save_file

from trainarena.contract import OUTCOME_FILE
from trainarena.registry import ModelSource, model_record, register_model, same_as_base_verdict
from trainarena.registry.card import SAME_AS_BASE_REFUTED, same_as_base_note
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.tasks.base_weights import weights_equal_base

WHY = "no scale of the trained weights beat the base model on 8 held-out pairs"
ADAPTER = "adapter_model.safetensors"
LORA = "base_model.model.layers.0.q_proj.lora_{}.weight"


def _claim(artifact: Path, content: str = json.dumps({"same_as_base": True, "why": WHY})) -> Path:
    (artifact / OUTCOME_FILE).write_text(content)
    return artifact


def _register(settings: Settings, artifact: Path, base: Path, task_type: str = "instruct") -> tuple[dict, str]:
    verdict = same_as_base_verdict(settings, artifact, task_type, "org/base", base)  # before the transaction, as callers do
    with open_store(settings) as store, store.transaction() as session:
        row = register_model(settings, session, artifact_dir=artifact, source=ModelSource.JOB, task_type=task_type,
                             base_model="org/base", dataset_digest="e" * 64, score=None, owner_key_id=None,
                             base_model_dir=base, same_as_base=verdict)  # fmt: skip
        return model_record(session, row), (Path(row.path) / "README.md").read_text()


def _adapter(folder: Path, b: torch.Tensor, a: torch.Tensor | None = None) -> Path:
    artifact = write_peft_artifact(folder)
    save_file({LORA.format("A"): torch.ones(2, 4) if a is None else a, LORA.format("B"): b}, str(artifact / ADAPTER))
    return artifact


def test_a_true_claim_is_shown_for_a_full_model_and_an_adapter(settings: Settings, tmp_path: Path) -> None:
    base = write_base_model(tmp_path / "base")  # weight: ones(2, 2), as the full artifact's
    note = same_as_base_note(WHY)
    for artifact in (write_full_artifact(tmp_path / "full"), _adapter(tmp_path / "adapter", torch.zeros(4, 2))):
        record, card = _register(settings, _claim(artifact), base)
        assert record["same_as_base"] == note and record["same_as_base_refuted"] is None
        assert f"- Same as the base model: {note}" in card and SAME_AS_BASE_REFUTED not in card


def test_the_base_saved_in_another_floating_dtype_is_the_base(settings: Settings, tmp_path: Path) -> None:
    """The house script trains in bf16 on a GPU and saves the base it kept in bf16: the base model's
    values, rounded as any bf16 copy of them; a value off by more than the rounding is not."""
    base = write_base_model(tmp_path / "base")
    artifact = write_full_artifact(tmp_path / "full")
    save_file({"weight": torch.ones(2, 2, dtype=torch.bfloat16)}, str(artifact / "model.safetensors"))
    assert weights_equal_base(artifact, "instruct", lambda: base) is True
    save_file({"weight": torch.tensor([[1.0, 1.0], [1.0, 1.5]], dtype=torch.bfloat16)}, str(artifact / "model.safetensors"))
    assert weights_equal_base(artifact, "instruct", lambda: base) is False
    save_file({"weight": torch.ones(2, 2).to(torch.float8_e4m3fn)}, str(artifact / "model.safetensors"))  # a coarse rounding
    assert weights_equal_base(artifact, "instruct", lambda: base) is False


@pytest.mark.parametrize(
    "saved",
    [
        {"weight": torch.tensor([[1.0, 1.0], [1.0, 1.5]])},  # one value moved
        {"weight": torch.ones(2, 2, dtype=torch.int64)},  # the base's values, but not floating point
        {"weight": torch.ones(4)},  # another shape
        {"weight": torch.ones(2, 2), "extra": torch.ones(1)},  # a tensor the base has not
        {"renamed": torch.ones(2, 2)},  # the base's tensor missing
    ],
    ids=["value", "dtype", "shape", "extra", "missing"],
)
def test_a_false_claim_on_a_full_model_is_caught(settings: Settings, tmp_path: Path, saved: dict) -> None:
    artifact = write_full_artifact(tmp_path / "full")
    save_file(saved, str(artifact / "model.safetensors"))
    record, card = _register(settings, _claim(artifact), write_base_model(tmp_path / "base"))
    assert record["same_as_base"] is None and record["same_as_base_refuted"] == SAME_AS_BASE_REFUTED
    assert "Same as the base model" not in card and f"- Weights: {SAME_AS_BASE_REFUTED}" in card
    assert SAME_AS_BASE_REFUTED == "the training script said it saved the base model's weights unchanged, but they differ from the base model's"


def test_a_false_claim_on_an_adapter_is_caught(settings: Settings, tmp_path: Path) -> None:
    trained = torch.zeros(4, 2)
    trained[3, 1] = 1e-6  # one B entry off zero: B @ A adds to the base's weights
    record, card = _register(settings, _claim(_adapter(tmp_path / "adapter", trained)), write_base_model(tmp_path / "base"))
    assert record["same_as_base"] is None and record["same_as_base_refuted"] == SAME_AS_BASE_REFUTED
    assert "Same as the base model" not in card and SAME_AS_BASE_REFUTED in card


def test_an_image_lora_is_the_base_only_when_its_updates_are_zero(tmp_path: Path) -> None:
    artifact = write_image_artifact(tmp_path / "image")
    weights = artifact / "pytorch_lora_weights.safetensors"
    save_file({"unet.lora.down.weight": torch.ones(2, 4), "unet.lora.up.weight": torch.zeros(4, 2)}, str(weights))
    assert weights_equal_base(artifact, "image", lambda: None) is True
    save_file({"unet.lora.down.weight": torch.zeros(2, 4), "unet.lora.up.weight": torch.ones(4, 2)}, str(weights))
    assert weights_equal_base(artifact, "image", lambda: None) is True  # the down matrix zero: B @ A is zero all the same
    save_file({"unet.lora.down.weight": torch.ones(2, 4), "unet.lora.up.weight": torch.ones(4, 2)}, str(weights))
    assert weights_equal_base(artifact, "image", lambda: None) is False
    # kohya's layout, a convolution's pair (flattened past the first axis) and its scale.
    conv = {"lora_unet_conv.lora_down.weight": torch.zeros(2, 3, 3, 3), "lora_unet_conv.lora_up.weight": torch.ones(4, 2, 1, 1),
            "lora_unet_conv.alpha": torch.tensor(2.0)}  # fmt: skip
    save_file(conv, str(weights))
    assert weights_equal_base(artifact, "image", lambda: None) is True
    save_file({**conv, "lora_unet_conv.lora_down.weight": torch.ones(2, 3, 3, 3)}, str(weights))
    assert weights_equal_base(artifact, "image", lambda: None) is False
    # A module's alpha of 0 scales its update to nothing, whatever its matrices; another module's does not.
    changed = {**conv, "lora_unet_conv.lora_down.weight": torch.ones(2, 3, 3, 3)}
    save_file({**changed, "lora_unet_conv.alpha": torch.tensor(0.0)}, str(weights))
    assert weights_equal_base(artifact, "image", lambda: None) is True
    save_file({**changed, "lora_unet_conv.alpha": torch.tensor(2.0), "lora_unet_other.alpha": torch.tensor(0.0)}, str(weights))
    assert weights_equal_base(artifact, "image", lambda: None) is False


def test_an_adapter_whose_every_pair_multiplies_to_zero_is_the_base(settings: Settings, tmp_path: Path) -> None:
    """B @ A is what an adapter adds: zero when A is zero though B is not (it was taken as an update),
    and zero when neither is but their product is (B's second column meets A's second row only)."""
    base = write_base_model(tmp_path / "base")
    a_zero = _adapter(tmp_path / "a_zero", torch.ones(4, 2), torch.zeros(2, 4))
    b = torch.zeros(4, 2)
    b[:, 0] = 3.0
    a = torch.zeros(2, 4)
    a[1] = 5.0
    orthogonal = _adapter(tmp_path / "orthogonal", b, a)
    for artifact in (a_zero, orthogonal):
        record, _ = _register(settings, _claim(artifact), base)
        assert record["same_as_base"] == same_as_base_note(WHY) and record["same_as_base_refuted"] is None
    a[0, 3] = 1e-3  # now B's first column meets a non-zero row: B @ A has a column of 3e-3
    record, _ = _register(settings, _claim(_adapter(tmp_path / "product", b, a)), base)
    assert record["same_as_base"] is None and record["same_as_base_refuted"] == SAME_AS_BASE_REFUTED


def test_one_pair_that_adds_something_refutes_the_claim_whatever_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs are matched by name (a layer's A with its own B); the product is computed a block of B's rows
    at a time (here one row), so the one non-zero entry in the last block is found; a pair that adds
    something is an update even beside tensors this check does not know."""
    from trainarena.tasks import base_weights

    monkeypatch.setattr(base_weights, "PRODUCT_BLOCK", 4)
    layer = "base_model.model.layers.{}.q_proj.lora_{}.weight"
    last = torch.zeros(4, 2)
    last[3] = 1.0  # B @ A's last row: ones
    tensors = {layer.format(0, "A"): torch.zeros(2, 4), layer.format(0, "B"): torch.ones(4, 2),  # adds nothing
               layer.format(1, "A"): torch.ones(2, 4), layer.format(1, "B"): last}  # fmt: skip
    artifact = write_peft_artifact(tmp_path / "two")
    save_file(tensors, str(artifact / ADAPTER))
    assert weights_equal_base(artifact, "instruct", lambda: None) is False
    save_file({**tensors, "base_model.model.lm_head.modules_to_save.weight": torch.ones(2)}, str(artifact / ADAPTER))
    assert weights_equal_base(artifact, "instruct", lambda: None) is False
    save_file({**tensors, layer.format(1, "B"): torch.zeros(4, 2)}, str(artifact / ADAPTER))
    assert weights_equal_base(artifact, "instruct", lambda: None) is True
    save_file({layer.format(0, "B"): torch.ones(4, 2)}, str(artifact / ADAPTER))  # a B without its A: not known
    assert weights_equal_base(artifact, "instruct", lambda: None) is None


def test_what_cannot_be_checked_neither_confirms_nor_refutes_the_claim(settings: Settings, tmp_path: Path) -> None:
    """A full model without its base on this machine, an adapter holding other tensors than LoRA's pair
    (modules_to_save: whole replaced weights), or without any B matrix, and unreadable weights: the check
    cannot tell (None), and the card then neither repeats the claim nor says the weights differ (it
    said so of an honest script's weights that merely could not be read)."""
    assert weights_equal_base(write_full_artifact(tmp_path / "full"), "instruct", lambda: None) is None
    odd = write_peft_artifact(tmp_path / "odd")
    save_file({LORA.format("B"): torch.zeros(4, 2), "base_model.model.lm_head.modules_to_save.weight": torch.ones(2)}, str(odd / ADAPTER))
    assert weights_equal_base(odd, "instruct", lambda: None) is None
    assert weights_equal_base(write_peft_artifact(tmp_path / "a_only"), "instruct", lambda: None) is None
    broken = write_peft_artifact(tmp_path / "broken")
    (broken / ADAPTER).write_bytes(b"not safetensors")
    assert weights_equal_base(broken, "instruct", lambda: None) is None
    record, card = _register(settings, _claim(odd), write_base_model(tmp_path / "base"))
    assert record["same_as_base"] is None and record["same_as_base_refuted"] is None
    assert "Same as the base model" not in card and SAME_AS_BASE_REFUTED not in card


@pytest.mark.parametrize("content", ["not json {", json.dumps({"same_as_base": "yes", "why": WHY}), json.dumps({"same_as_base": True})])
def test_a_malformed_outcome_file_is_ignored_whatever_the_weights(settings: Settings, tmp_path: Path, content: str) -> None:
    base = write_base_model(tmp_path / "base")
    for artifact in (write_full_artifact(tmp_path / "same"), _adapter(tmp_path / "moved", torch.ones(4, 2))):
        record, card = _register(settings, _claim(artifact, content), base)
        assert record["same_as_base"] is None and record["same_as_base_refuted"] is None
        assert "Same as the base model" not in card and SAME_AS_BASE_REFUTED not in card


def test_an_adapter_whose_lora_alpha_is_0_is_the_base_whatever_its_matrices(settings: Settings, tmp_path: Path) -> None:
    """PEFT scales each update B @ A by lora_alpha / r: with lora_alpha 0 every update is zero, so the
    adapter is its base even where B @ A is not zero (the check said the weights differ) or a B has no A
    (it could not tell). A module alpha_pattern gives another alpha still adds its update, and whole
    replaced weights (modules_to_save) are still not known."""
    product = {LORA.format("A"): torch.ones(2, 4), LORA.format("B"): torch.ones(4, 2)}
    config = {"peft_type": "LORA", "r": 2, "lora_alpha": 0, "base_model_name_or_path": "/model"}

    def adapter(name: str, tensors: dict[str, torch.Tensor], **overrides: object) -> Path:
        artifact = write_peft_artifact(tmp_path / name)
        (artifact / "adapter_config.json").write_text(json.dumps({**config, **overrides}))
        save_file(tensors, str(artifact / ADAPTER))
        return artifact

    assert weights_equal_base(adapter("product", product), "instruct", lambda: None) is True
    assert weights_equal_base(adapter("b_only", {LORA.format("B"): torch.ones(4, 2)}), "instruct", lambda: None) is True
    assert weights_equal_base(adapter("alpha_1", product, lora_alpha=1), "instruct", lambda: None) is False
    assert weights_equal_base(adapter("pattern", product, alpha_pattern={"q_proj": 8}), "instruct", lambda: None) is False
    replaced = {**product, "base_model.model.lm_head.modules_to_save.weight": torch.ones(2)}
    assert weights_equal_base(adapter("replaced", replaced), "instruct", lambda: None) is None
    record, card = _register(settings, _claim(adapter("claimed", product)), write_base_model(tmp_path / "base"))
    assert record["same_as_base"] == same_as_base_note(WHY) and record["same_as_base_refuted"] is None
    assert f"- Same as the base model: {same_as_base_note(WHY)}" in card
