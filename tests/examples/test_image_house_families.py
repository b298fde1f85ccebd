"""The house image script's families (examples/competitors/image_baseline/families.py): a fully
fine-tuned denoiser is saved as a LoRA whose product is exactly the change of every layer, and the
evaluator, loading that file on the base pipeline, gets the fine-tuned model back, for SD, SDXL and Flux,
as it does for the LoRA the script trains on larger models."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

FAMILIES_FILE = Path(__file__).resolve().parents[2] / "examples" / "competitors" / "image_baseline" / "families.py"
EVERYTHING = 10**12  # full_finetune_below: every denoiser counts as small


def house_families():
    spec = importlib.util.spec_from_file_location("image_baseline_families", FAMILIES_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("shape", [(7, 5), (5, 7), (6, 4, 3, 3), (3, 8, 1, 1)])
def test_exact_lora_factors_multiply_back_to_the_change(shape: tuple[int, ...]) -> None:
    import torch

    delta = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    down, up = house_families().exact_lora_factors(delta)
    if delta.dim() == 2:
        rebuilt = up @ down
    else:  # PEFT's conv LoRA: a kh x kw convolution to the rank, then a 1x1 convolution up
        rebuilt = (up.flatten(1) @ down.flatten(1)).reshape(shape)
    assert up.shape[1] == down.shape[0] == min(shape[0], delta[0].numel())
    assert torch.allclose(rebuilt, delta, atol=1e-5)


def batch_loss(family, seed: int = 0) -> float:
    """The family's training loss on fixed pixels, captions, noise and timesteps: a function of its denoiser."""
    import torch

    pixels = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        latents, text = family.encode_latents(pixels), family.encode_text(["a zxq person", ""], (32, 32))
        return family.loss(latents, text, [600, 600], random.Random(seed), torch.Generator().manual_seed(seed)).item()


@pytest.mark.parametrize("full", [True, False], ids=["full-finetune", "lora"])
@pytest.mark.parametrize("model_type", ["sd", "sdxl", "flux"])
def test_the_saved_file_gives_the_evaluator_the_trained_denoiser(model_type: str, full: bool, image_assets, tmp_path: Path) -> None:
    import torch

    from trainarena.tasks.image.evaluation import apply_lora, read_lora

    families, base = house_families(), str(image_assets.pipelines[model_type])
    torch.manual_seed(0)  # the LoRA's initial factors: unseeded, sdxl's change was once under the 1e-3 below
    trained = families.load_family(model_type, base, "cpu", 4, full_finetune_below=EVERYTHING if full else 0)
    assert (trained.delta is not None) == full
    before = batch_loss(trained)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():  # "training": every trainable tensor moves
        for parameter in trained.denoiser.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.2)
    after = batch_loss(trained)
    trained.save(str(tmp_path))

    scored = families.load_family(model_type, base, "cpu", 4, full_finetune_below=EVERYTHING)  # the base model, unchanged
    assert batch_loss(scored) == pytest.approx(before, rel=1e-6)
    state, name = read_lora(tmp_path)
    assert all(key.startswith(("unet.", "transformer.")) for key in state)
    apply_lora(scored.pipeline, state, name)  # as the evaluator loads an artifact
    assert abs(after - before) > 1e-3  # the change matters ...
    assert batch_loss(scored) == pytest.approx(after, rel=1e-4)  # ... and the loaded file is exactly it
