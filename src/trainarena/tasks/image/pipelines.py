"""Which diffusers pipeline scores each image ``model_type``, and what a base model of that type is.

A task's ``model_type`` (sd | sdxl | flux) picks the img2img pipeline class the evaluator loads, the
per-call arguments that family needs, and the LoRA layout its artifact must have. A local base model's
``model_index.json`` names the pipeline it was saved as; a task whose base model is of another family is
refused when prepared (``check_base_model``), naming both, rather than failing at scoring time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from trainarena.tasks.base import DatasetError


@dataclass(frozen=True)
class PipelineFamily:
    model_type: str
    img2img: str  # the diffusers class the evaluator loads
    saved_as: tuple[str, ...]  # model_index.json class names of base models of this family
    explicit_size: bool  # the pipeline is told the image's height and width (Flux otherwise resizes to its default)
    t5_sequence: bool  # the pipeline is told the T5 sequence length (the tokenizer's, not Flux's 512 default)


FAMILIES = {
    family.model_type: family
    for family in (
        PipelineFamily(
            "sd", "StableDiffusionImg2ImgPipeline", ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline"),
            explicit_size=False, t5_sequence=False,
        ),
        PipelineFamily(
            "sdxl", "StableDiffusionXLImg2ImgPipeline", ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline"),
            explicit_size=False, t5_sequence=False,
        ),
        PipelineFamily(
            "flux", "FluxImg2ImgPipeline", ("FluxPipeline", "FluxImg2ImgPipeline"),
            explicit_size=True, t5_sequence=True,
        ),
    )
}


def family_of(model_type: str) -> PipelineFamily:
    if model_type not in FAMILIES:
        raise DatasetError(f"image model_type {model_type!r} has no scoring pipeline; supported: {sorted(FAMILIES)}")
    return FAMILIES[model_type]


def check_base_model(base_model: str, model_type: str) -> None:
    """Refuse a local base model saved as another family's pipeline (a hub id is checked when loaded)."""
    family = family_of(model_type)
    index = Path(base_model) / "model_index.json"
    if not index.is_file():
        return
    try:
        saved_as = json.loads(index.read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError) as error:
        raise DatasetError(f"{index}: unreadable ({error})") from None
    if saved_as not in family.saved_as:
        fitting = [f.model_type for f in FAMILIES.values() if saved_as in f.saved_as]
        hint = f"; set model_type = {fitting[0]!r}" if fitting else ""
        raise DatasetError(f"base model {base_model} is a {saved_as}, not a model_type {model_type!r} pipeline{hint}")
