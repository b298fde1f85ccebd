"""Scoring image artifacts: img2img reconstruction MSE of the hidden images with the LoRA loaded,
bit-for-bit repeatable; the LoRA really changes the result; broken LoRAs are failures with reasons."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from trainarena.engine.scores import PER_EXAMPLE_FORM, score_of
from trainarena.settings import Settings
from trainarena.tasks import TaskDefinition, get_task_type
from trainarena.tasks.evaluate_worker import evaluate_request

pytestmark = pytest.mark.slow  # builds (or reuses) the tiny SD pipeline; each scoring loads diffusers


@pytest.fixture(scope="module")
def prepared(image_assets, tmp_path_factory):
    root = tmp_path_factory.mktemp("image-eval")
    name = "style_qrt"
    dataset = {"source": str(image_assets.datasets[name]), "kind": "style", "model_type": "sd"}
    task = TaskDefinition(name, "image", str(image_assets.tiny_sd), dataset, 10)
    return task, get_task_type("image").prepare(task, root / "train", root / "hidden", Settings())


def write_lora(base_model: Path, directory: Path, scale: float, seed: int = 0) -> Path:
    """A LoRA of the tiny UNet whose up-projections are seeded noise times ``scale`` (0: the base model)."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(base_model / "unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(directory, unet_lora_layers=layers, safe_serialization=True)
    return directory


def score(prepared, artifact: Path) -> dict:
    task, prep = prepared
    request = {
        "task_type": "image", "hidden_file": str(prep.hidden_file), "artifact_dir": str(artifact),
        "base_model": task.base_model, "image_rules": Settings().image.model_dump(mode="json"),
    }
    return evaluate_request(request)


def test_scoring_is_bit_for_bit_repeatable_at_the_pinned_thread_count(prepared, image_assets, tmp_path):
    """The default settings pin torch's CPU threads; the child evaluator applies and records the count,
    and two evaluations of one artifact give the same bits. The per-image shares add up to the score."""
    task, prep = prepared
    artifact = write_lora(image_assets.tiny_sd, tmp_path / "lora", scale=0.05)
    plugin = get_task_type("image")
    pinned = Settings().data.eval_cpu_threads
    assert pinned > 0
    first = plugin.evaluate(task, prep, artifact, Settings())
    second = plugin.evaluate(task, prep, artifact, Settings())
    assert first.failure is None and first.score is not None and 0.0 < first.score < 1.0
    assert first.details["cpu_threads"] == second.details["cpu_threads"] == pinned
    assert first.score == second.score and first.per_example == second.per_example
    assert len(first.per_example) == prep.hidden_rows
    details = first.details
    assert first.score == score_of(first.per_example) and details["per_example_form"] == PER_EXAMPLE_FORM
    assert first.score == pytest.approx(0.25 * details["text_loss"] + 0.75 * details["no_text_loss"], rel=1e-12)


def test_a_stored_task_is_noised_by_its_own_seed_from_the_operators_secret(prepared, image_assets, tmp_path):
    """One artifact on one hidden split: two stored tasks (split keys) are noised apart, so score apart;
    the same task under the same secret scores the same bits again; another operator's secret noises
    (and scores) it otherwise."""
    task, prep = prepared
    artifact = write_lora(image_assets.tiny_sd, tmp_path / "lora", scale=0.05)
    plugin = get_task_type("image")
    ours = Settings(data_dir=tmp_path / "ours", pools={"split_secret": "our operator's secret"})
    theirs = Settings(data_dir=tmp_path / "theirs", pools={"split_secret": "another operator's secret"})
    stored, other = replace(task, split_key="style:0a1b2c3d"), replace(task, split_key="style:4e5f6a7b")
    first, again = plugin.evaluate(stored, prep, artifact, ours), plugin.evaluate(stored, prep, artifact, ours)
    other_task, other_secret = plugin.evaluate(other, prep, artifact, ours), plugin.evaluate(stored, prep, artifact, theirs)
    assert first.score is not None and first.details["noise_seed"] == "secret"
    assert (first.score, first.per_example) == (again.score, again.per_example)
    assert len({first.score, other_task.score, other_secret.score}) == 3


def test_the_lora_changes_the_reconstructions(prepared, image_assets, tmp_path):
    neutral = score(prepared, write_lora(image_assets.tiny_sd, tmp_path / "zero", scale=0.0))
    strong = score(prepared, write_lora(image_assets.tiny_sd, tmp_path / "strong", scale=0.5))
    assert neutral["score"] is not None and strong["score"] is not None
    assert strong["score"] != neutral["score"]


@pytest.mark.parametrize("broken", ["foreign_keys", "not_safetensors", "missing"])
def test_broken_loras_are_failures_with_reasons(prepared, tmp_path, broken):
    import torch
    from safetensors.torch import save_file

    artifact = tmp_path / "artifact"
    artifact.mkdir()
    if broken == "foreign_keys":
        save_file({"model.layers.0.q_proj.lora_A.weight": torch.zeros(4, 8)}, artifact / "pytorch_lora_weights.safetensors")
    elif broken == "not_safetensors":
        (artifact / "pytorch_lora_weights.safetensors").write_bytes(b"\x00" * 64)
    result = score(prepared, artifact)
    assert result["score"] is None
    reason = {"foreign_keys": "pytorch_lora_weights", "not_safetensors": "pytorch_lora_weights", "missing": "expected pytorch_lora_weights"}[broken]
    assert reason in result["failure"]


def test_mixed_lora_key_namings_are_all_loaded():
    """diffusers' example save renames attention keys (lora.down) but not the others (lora_A); its loader
    looks at the first key only. The evaluator renames all, so neither half is dropped."""
    import torch

    from trainarena.tasks.image.evaluation import peft_key_format

    mixed = {
        "unet.down_blocks.1.attentions.0.proj_in.lora_A.weight": torch.zeros(2, 4),
        "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.lora.down.weight": torch.zeros(2, 4),
        "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.lora.up.weight": torch.zeros(4, 2),
        "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(2, 4),
    }
    renamed = peft_key_format(mixed)
    assert sorted(renamed) == sorted([
        "unet.down_blocks.1.attentions.0.proj_in.lora_A.weight",
        "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.lora_A.weight",
        "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.lora_B.weight",
        "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight",
    ])
