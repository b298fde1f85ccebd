"""Scoring an image artifact (LoRA weights) by img2img reconstruction of the hidden images, as Gradients
does. Runs inside the evaluation child process (``trainarena.tasks.evaluate_worker``).

For each hidden image and each of ``eval_seeds`` noise seeds (derived from the request's
``eval_master_seed``: a stored task's own secret seed, else the public ``ImageRules.eval_master_seed``;
``tasks.secret_split.noise_master_seed``), the base pipeline with the LoRA loaded noises the image to
``eval_strength`` and denoises it over the scheduler's ``eval_steps``; the loss is the pixel mean
squared error (RGB in [0, 1]) between the result and the original. Once with the image's caption as
the prompt, once with an empty prompt; score = ``text_weight`` x mean(with caption) +
``no_text_weight`` x mean(without). ``per_example`` holds each image's share, in hidden-file order: its
weighted loss / images, whose sum is the score (``engine.scores``).

Strength: ``eval_strength`` 0.5 separates training methods best on the tiny pipeline (measured, house /
diffusers-defaults LoRA at 40 s budgets, style and person: 0.90 / 0.94 at 0.5, 0.93 / 0.95 at 0.75, and
at 1.0 the house scored worse on style): at high strength the result is a fresh sample whose layout
differs from the hidden image, so the MSE measures the sampler's luck more than the LoRA.

Sizes: each family's pipeline works on sides that are multiples of its VAE factor (SD/SDXL's, times
two for Flux's latent packing) and resizes other images; every hidden image is centre-cropped to such
sides first, so that the result and the original are compared pixel for pixel, and images of different
sizes are denoised in separate batches.

Determinism: every (image, seed) pair has its own ``torch.Generator``, so the noise does not depend on
batching; the same artifact, hidden split, settings and thread count give the same bits.

Safety: the LoRA is read with ``safetensors`` into a state dict (never unpickled) and handed to
diffusers' loader; no artifact file other than ``*.safetensors`` is opened.
"""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path
from typing import Any

from trainarena.tasks.image.data import read_captions_file
from trainarena.tasks.image.pipelines import FAMILIES, family_of
from trainarena.tasks.result import score_result

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
ADAPTER_NAME = "artifact"


class ArtifactError(Exception):
    """The artifact cannot be scored; the message is the reason stored with the failed evaluation."""


def run_evaluation(request: dict[str, Any]) -> dict[str, Any]:
    """Child-process entry: ``request`` holds hidden_file, artifact_dir, base_model, model_type (sd when
    absent) and image_rules."""
    rules = request["image_rules"]
    pairs = read_captions_file(Path(request["hidden_file"]))
    state, weights_name = read_lora(Path(request["artifact_dir"]))  # before the pipeline: a broken file fails fast
    pipeline = load_pipeline(request["base_model"], request.get("model_type", "sd"))
    apply_lora(pipeline, state, weights_name)
    started = time.monotonic()
    with_text = reconstruction_losses(pipeline, pairs, rules, use_captions=True)
    without_text = reconstruction_losses(pipeline, pairs, rules, use_captions=False)
    weighted = [rules["text_weight"] * t + rules["no_text_weight"] * n for t, n in zip(with_text, without_text, strict=True)]
    details = {
        "images": len(pairs),
        "text_loss": sum(with_text) / len(pairs),
        "no_text_loss": sum(without_text) / len(pairs),
        "seconds": round(time.monotonic() - started, 3),
    }
    return score_result(weighted, len(pairs), details, "the reconstruction loss")


def noise_seeds(master_seed: int, count: int) -> list[int]:
    """The per-image noise seeds, the same for every image and every artifact of one task."""
    rng = random.Random(master_seed)
    return [rng.randrange(2**31) for _ in range(count)]


def load_pipeline(base_model: str, model_type: str = "sd"):
    """The img2img pipeline of ``model_type``'s family (``pipelines.FAMILIES``), float32, on the GPU if any."""
    import diffusers
    import torch
    from diffusers.utils import logging as diffusers_logging

    family = family_of(model_type)
    diffusers_logging.disable_progress_bar()
    extra = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False} if model_type == "sd" else {}
    pipeline = getattr(diffusers, family.img2img).from_pretrained(base_model, use_safetensors=True, **extra)
    pipeline.set_progress_bar_config(disable=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return pipeline.to(device=device, dtype=torch.float32)


def lora_weights_file(artifact_dir: Path) -> Path:
    """The one file of the artifact the evaluation reads: ``pytorch_lora_weights.safetensors``, else the
    artifact's only top-level ``*.safetensors``."""
    weights = artifact_dir / LORA_WEIGHTS
    if weights.is_file():
        return weights
    candidates = sorted(artifact_dir.glob("*.safetensors"))
    if len(candidates) != 1:
        raise ArtifactError(f"expected {LORA_WEIGHTS} in the artifact, found {[p.name for p in candidates]}")
    return candidates[0]


def read_lora(artifact_dir: Path) -> tuple[dict, str]:
    """The artifact's LoRA tensors (read with safetensors, never unpickled) and the file's name."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = lora_weights_file(artifact_dir)
    try:
        state = load_file(weights)
    except (SafetensorError, OSError) as error:
        raise ArtifactError(f"{weights.name} is not readable safetensors ({error})") from None
    if not state:
        raise ArtifactError(f"{weights.name} holds no tensors")
    return state, weights.name


def apply_lora(pipeline, state: dict, weights_name: str) -> None:
    """Load the LoRA into the UNet (and text encoder); raises ArtifactError when nothing of it matches
    the pipeline's layers or when shapes disagree."""
    try:
        pipeline.load_lora_weights(peft_key_format(state), adapter_name=ADAPTER_NAME)
    except (ValueError, RuntimeError, KeyError) as error:
        raise ArtifactError(f"{weights_name} is not a LoRA of this model ({type(error).__name__}: {str(error)[:300]})") from None
    loaded = pipeline.get_list_adapters()
    if not any(ADAPTER_NAME in names for names in loaded.values()):
        raise ArtifactError(f"{weights_name}: no tensor matches a layer of the base model (keys like {sorted(state)[:3]})")


def peft_key_format(state: dict) -> dict:
    """``state`` with every UNet LoRA key in PEFT's naming (``lora_A`` / ``lora_B``).

    diffusers' training examples save ``convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))``,
    which renames attention projections to ``lora.down`` / ``lora.up`` but leaves others (``proj_in``,
    ``ff.net.*``) as ``lora_A`` / ``lora_B``. diffusers' loader decides the format from the *first* key
    only, so such a mixed file silently loses one of the two halves (measured: a LoRA on attention and
    feed-forward layers was scored with its attention half dropped). Renaming every key first scores
    the whole LoRA whatever mix of the two namings a script saved."""
    from diffusers.utils.state_dict_utils import convert_unet_state_dict_to_peft

    unet = {k: v for k, v in state.items() if not k.startswith("text_encoder")}
    rest = {k: v for k, v in state.items() if k.startswith("text_encoder")}
    return convert_unet_state_dict_to_peft(unet) | rest


def family_call_arguments(pipeline, size: tuple[int, int]) -> dict[str, int]:
    """What the loaded pipeline's family must be told besides the shared arguments: Flux resizes to its
    default size and pads T5 to 512 tokens unless given the image's size and the tokenizer's length."""
    family = next(f for f in FAMILIES.values() if f.img2img == type(pipeline).__name__)
    arguments = {"height": size[0], "width": size[1]} if family.explicit_size else {}
    if family.t5_sequence:
        arguments["max_sequence_length"] = pipeline.tokenizer_2.model_max_length
    return arguments


def reconstruction_losses(pipeline, pairs: list[tuple[Path, str]], rules: dict[str, Any], use_captions: bool) -> list[float]:
    """Per image: mean pixel MSE over the noise seeds."""
    import numpy as np
    import torch
    from PIL import Image

    multiple = pipeline.image_processor.config.vae_scale_factor  # Flux's counts its 2x2 latent packing
    originals = [crop_to_multiple(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0, multiple) for path, _ in pairs]
    seeds = noise_seeds(rules["eval_master_seed"], rules["eval_seeds"])
    jobs = [(i, seed) for i in range(len(pairs)) for seed in seeds]
    totals = [0.0] * len(pairs)
    device = pipeline.device
    for batch in same_size_batches(jobs, [image.shape for image in originals], rules["eval_batch_size"]):
        with torch.inference_mode():
            output = pipeline(
                prompt=[pairs[i][1] if use_captions else "" for i, _ in batch],
                image=[originals[i] for i, _ in batch],
                strength=rules["eval_strength"],
                num_inference_steps=rules["eval_steps"],
                guidance_scale=rules["eval_guidance_scale"],
                generator=[torch.Generator(device=device).manual_seed(seed) for _, seed in batch],
                output_type="np",
                **family_call_arguments(pipeline, originals[batch[0][0]].shape[:2]),
            ).images
        for (i, _), result in zip(batch, output, strict=True):
            totals[i] += float(np.mean((result.astype(np.float64) - originals[i]) ** 2))
    return [total / len(seeds) for total in totals]


def crop_to_multiple(image, multiple: int):
    """The centre of ``image`` (H, W, 3) whose sides are multiples of ``multiple``. The pipelines resize
    other sizes down to such sides, so their output could not be compared pixel for pixel with the
    original; a crop keeps the pixels as they are (a 1023x767 photo is scored as its 1016x760 centre)."""
    height, width = image.shape[:2]
    top, left = (height % multiple) // 2, (width % multiple) // 2
    return image[top : top + height - height % multiple, left : left + width - width % multiple]


def same_size_batches(jobs: list[tuple[int, int]], shapes: list[tuple[int, ...]], size: int) -> list[list[tuple[int, int]]]:
    """``jobs`` ((image, seed) pairs) in batches of at most ``size`` whose images share one shape (a
    pipeline call takes one size); a dataset of one size keeps the jobs' order. Each job has its own
    generator, so the batching never changes a result."""
    ordered = sorted(jobs, key=lambda job: shapes[job[0]])  # stable
    groups = [list(group) for _shape, group in itertools.groupby(ordered, key=lambda job: shapes[job[0]])]
    return [group[start : start + size] for group in groups for start in range(0, len(group), size)]
