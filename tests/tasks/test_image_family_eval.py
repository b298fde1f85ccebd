"""Scoring SDXL and Flux image artifacts with their own img2img pipelines: an untrained LoRA scores,
bit for bit the same at the pinned thread count; a LoRA really changes the result (the family's loader
took it); a LoRA of another family is a failure with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainarena.settings import Settings
from trainarena.tasks import TaskDefinition, get_task_type
from trainarena.tasks.evaluate_worker import evaluate_request

pytestmark = pytest.mark.slow  # uses the built tiny pipelines; each scoring loads diffusers

FAMILIES = ("sdxl", "flux")
# SDXL's Euler scheduler (diffusers 0.42) hands np.interp a torch tensor; numpy 2 warns. Harmless, and
# outside pytest (the evaluation child) warnings are not errors; in-process scoring here must allow it.
EULER_NUMPY_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"


@pytest.fixture(scope="module")
def prepared(image_assets, tmp_path_factory):
    """(task, prepared task) of style_qrt for each family."""
    tasks = {}
    for model_type in FAMILIES:
        root = tmp_path_factory.mktemp(f"eval-{model_type}")
        dataset = {"source": str(image_assets.datasets["style_qrt"]), "kind": "style", "model_type": model_type}
        task = TaskDefinition(f"style-{model_type}", "image", str(image_assets.pipelines[model_type]), dataset, 10)
        tasks[model_type] = (task, get_task_type("image").prepare(task, root / "train", root / "hidden", Settings()))
    return tasks


def write_family_lora(base_model: Path, model_type: str, directory: Path, scale: float) -> Path:
    """A LoRA of the family's denoiser (UNet or transformer) whose up-projections are seeded noise x ``scale``."""
    import torch
    from diffusers import FluxPipeline, FluxTransformer2DModel, StableDiffusionXLPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    if model_type == "sdxl":
        denoiser, saver, argument = UNet2DConditionModel.from_pretrained(base_model / "unet"), StableDiffusionXLPipeline, "unet_lora_layers"
    else:
        denoiser, saver, argument = FluxTransformer2DModel.from_pretrained(base_model / "transformer"), FluxPipeline, "transformer_lora_layers"
    denoiser.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in denoiser.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    saver.save_lora_weights(directory, **{argument: get_peft_model_state_dict(denoiser)}, safe_serialization=True)
    return directory


def score_in_process(task, prep, artifact: Path) -> dict:
    request = {
        "task_type": "image", "hidden_file": str(prep.hidden_file), "artifact_dir": str(artifact), "base_model": task.base_model,
        "model_type": task.dataset["model_type"], "image_rules": Settings().image.model_dump(mode="json"),
    }
    return evaluate_request(request)


@pytest.mark.filterwarnings(EULER_NUMPY_WARNING)
@pytest.mark.parametrize("model_type", FAMILIES)
def test_an_untrained_lora_scores_repeatably_and_a_trained_one_differs(prepared, image_assets, tmp_path, model_type):
    """The evaluation child pins and records the thread count; scoring again here at that count (another
    process, another interpreter state) gives the same bits."""
    import torch

    task, prep = prepared[model_type]
    base = image_assets.pipelines[model_type]
    untrained = write_family_lora(base, model_type, tmp_path / "untrained", scale=0.0)
    pinned = Settings().data.eval_cpu_threads
    first = get_task_type("image").evaluate(task, prep, untrained, Settings())
    assert first.failure is None and first.score is not None and 0.0 < first.score < 1.0
    assert first.details["cpu_threads"] == pinned and len(first.per_example) == prep.hidden_rows
    threads = torch.get_num_threads()
    torch.set_num_threads(pinned)
    try:
        again = score_in_process(task, prep, untrained)
        changed = score_in_process(task, prep, write_family_lora(base, model_type, tmp_path / "changed", scale=0.5))
    finally:
        torch.set_num_threads(threads)
    assert (again["score"], list(again["per_example"])) == (first.score, list(first.per_example))
    assert changed["score"] is not None and changed["score"] != first.score


def test_a_lora_of_another_family_is_a_failure_with_a_reason(prepared, image_assets, tmp_path):
    sdxl_lora = write_family_lora(image_assets.pipelines["sdxl"], "sdxl", tmp_path / "sdxl", scale=0.1)
    flux_lora = write_family_lora(image_assets.pipelines["flux"], "flux", tmp_path / "flux", scale=0.1)
    for model_type, foreign in (("flux", sdxl_lora), ("sdxl", flux_lora)):
        result = score_in_process(*prepared[model_type], foreign)
        assert result["score"] is None and "pytorch_lora_weights.safetensors" in result["failure"], (model_type, result)


def test_hidden_images_of_odd_and_mixed_sizes_are_scored(image_assets, tmp_path):
    """Sides that are not multiples of the pipeline's factor (Flux: 4 on the tiny one) are cropped, and
    two sizes in one dataset are denoised in separate batches; both used to fail the whole evaluation."""
    from PIL import Image

    from trainarena.assets.image import write_image_folder
    from trainarena.tasks.image.data import read_captions_file

    source = image_assets.datasets["style_qrt"]
    sizes = ((34, 34), (30, 38), (40, 24))
    pairs = [(Image.open(path).resize(sizes[n % 3]), caption) for n, (path, caption) in enumerate(read_captions_file(source / "captions.jsonl"))]
    write_image_folder(pairs, tmp_path / "odd")
    dataset = {"source": str(tmp_path / "odd"), "kind": "style", "model_type": "flux"}
    task = TaskDefinition("odd-flux", "image", str(image_assets.pipelines["flux"]), dataset, 10)
    prep = get_task_type("image").prepare(task, tmp_path / "train", tmp_path / "hidden", Settings())
    hidden_sizes = set()
    for path, _caption in read_captions_file(prep.hidden_file):
        with Image.open(path) as image:
            hidden_sizes.add(image.size)
    assert len(hidden_sizes) > 1
    result = score_in_process(task, prep, write_family_lora(image_assets.pipelines["flux"], "flux", tmp_path / "lora", scale=0.0))
    assert result["score"] is not None, result.get("failure")
    assert len(result["per_example"]) == prep.hidden_rows
