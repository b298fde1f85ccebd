"""Image tasks: a diffusion LoRA trained on a person or a style (a folder or zip of captioned images);
scored by img2img reconstruction of the hidden images, pixel MSE, lower is better (``evaluation.py``).

Scripts get ``/inputs/train.zip`` (``images/*.png`` + ``captions.jsonl``) and a dataset spec naming the
kind, the base model's type (sd | sdxl | flux) and the scoring constants; they leave LoRA weights as
``pytorch_lora_weights.safetensors`` (diffusers' ``save_lora_weights`` layout).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from trainarena.contract import Direction, TaskType
from trainarena.settings import Settings
from trainarena.tasks.base import Evaluation, PreparedTask, TaskDefinition
from trainarena.tasks.image.data import (
    CAPTIONS_FILE,
    load_images,
    split_images,
    write_hidden_folder,
    write_train_zip,
    written_image_keys,
)
from trainarena.tasks.image.pipelines import check_base_model
from trainarena.tasks.image.spec import ImageDatasetSpec
from trainarena.tasks.secret_split import noise_master_seed, noise_source

TRAIN_FILE = "train.zip"
SPEC_FILE = "dataset_spec.json"
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"

__all__ = ["LORA_WEIGHTS", "ImageDatasetSpec", "ImageTask", "plugin"]


class ImageTask:
    task_type = TaskType.IMAGE
    direction = Direction.LOWER

    def prepare(self, task: TaskDefinition, train_dir: Path, hidden_dir: Path, settings: Settings) -> PreparedTask:
        spec = ImageDatasetSpec.from_dict(task.dataset, settings.image.model_types)
        check_base_model(task.base_model, spec.model_type)
        train, hidden = split_images(load_images(spec, settings.data), settings.data, spec.source)
        write_train_zip(train, Path(train_dir) / TRAIN_FILE)
        hidden_file = write_hidden_folder(hidden, Path(hidden_dir))
        script_spec = script_dataset_spec(spec, settings, len(train))
        (Path(train_dir) / SPEC_FILE).write_text(json.dumps(script_spec, indent=2, sort_keys=True))
        return PreparedTask(
            train_file=Path(train_dir) / TRAIN_FILE,
            dataset_spec=script_spec,
            hidden_file=hidden_file,
            train_rows=len(train),
            hidden_rows=len(hidden),
        )

    def group_keys(self, prepared: PreparedTask) -> tuple[list[str], list[str]]:
        return written_image_keys(prepared.train_file, prepared.hidden_file)

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        from trainarena.tasks.child_evaluation import evaluate_in_child

        rules = {**settings.image.model_dump(mode="json"), "eval_master_seed": noise_master_seed(task, settings)}
        request = {
            "hidden_file": str(prepared.hidden_file),
            "artifact_dir": str(artifact_dir),
            "base_model": task.base_model,
            "model_type": task.dataset["model_type"],
            "image_rules": rules,
        }
        evaluation = evaluate_in_child(self.task_type, self.direction, request, settings.data)
        # Which master seed the noise came from (never the seed itself: a stored task's is revealed with
        # its split seed): what an audit needs to score the run again the same way.
        return replace(evaluation, details={**evaluation.details, "noise_seed": noise_source(task)})


def script_dataset_spec(spec: ImageDatasetSpec, settings: Settings, train_images: int) -> dict:
    """What ``/inputs/dataset_spec.json`` tells a script: the data layout, what to train, how it is scored."""
    rules = settings.image
    return {
        "format": "zip",
        "captions_file": CAPTIONS_FILE,
        "images": train_images,
        "kind": spec.kind,
        "model_type": spec.model_type,
        "output_file": LORA_WEIGHTS,
        "scoring": {
            "method": "img2img pixel MSE on hidden images",
            "strength": rules.eval_strength,
            "steps": rules.eval_steps,
            "seeds": rules.eval_seeds,
            "guidance_scale": rules.eval_guidance_scale,
            "text_weight": rules.text_weight,
            "no_text_weight": rules.no_text_weight,
        },
    }


def plugin() -> ImageTask:
    return ImageTask()
