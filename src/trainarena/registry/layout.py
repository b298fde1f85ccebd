"""A registered model's folder in the Hugging Face layout, holding exactly the model that was scored:
the artifact's files the evaluator read (a PEFT adapter's ``adapter_config.json`` and
``adapter_model.safetensors``; a full model's ``model.safetensors``, or its index and shards; a
diffusers LoRA's weights as ``pytorch_lora_weights.safetensors``), and for a text model the base
model's ``config.json`` (a full model only), tokenizer and ``generation_config.json``, which the
evaluator used in place of the artifact's; and the model card ``README.md``. Built in a staging folder
the caller renames into place.

Protects against: a published model that differs from the scored one (an artifact's own config.json
with other architecture fields, its own tokenizer or generation config) and an artifact that carries
code or anything else into a downloadable model (``auto_map`` + ``modeling_*.py`` run by
``trust_remote_code``): no other artifact file is published. Does not protect against a base model
the operator chose that itself carries code.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from trainarena.execution.artifacts import ArtifactError, read_config
from trainarena.registry.card import CardFacts, Library, is_hub_id, render_model_card
from trainarena.tasks.image.evaluation import LORA_WEIGHTS, lora_weights_file
from trainarena.tasks.text.scoring import ADAPTER_CONFIG, scored_files

CARD_NAME = "README.md"
DIR_MODE, FILE_MODE = 0o755, 0o644  # what the folder and every file of a registered model gets
BASE_CONFIG = "config.json"
GENERATION_CONFIG = "generation_config.json"
# What a tokenizer saved with save_pretrained may consist of (copied from the base model's folder).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "spiece.model", "vocab.json", "merges.txt", "vocab.txt", "added_tokens.json", "chat_template.jinja")  # fmt: skip
# Adapter config keys a loader could act on beyond the scored adapter: AutoPeftModel imports the module
# ``auto_mapping`` names to build the base model. PeftModel (the evaluator's loader) never reads it.
ADAPTER_KEYS_DROPPED = ("auto_mapping",)


class PublishError(Exception):
    """The model folder cannot hold what was scored (a full model whose base model's config is not here)."""


def artifact_library(artifact_names: set[str], task_type: str) -> str:
    """The library that loads an artifact: diffusers for image LoRAs, PEFT for adapters, else transformers."""
    if task_type == "image":
        return Library.DIFFUSERS
    return Library.PEFT if ADAPTER_CONFIG in artifact_names else Library.TRANSFORMERS


def copy_tokenizer(base_model_dir: Path, destination: Path) -> list[str]:
    """Copy the base model's tokenizer files into ``destination``; the names copied. The base model's
    folder is the operator's (links followed: a Hugging Face cache snapshot is links to blobs)."""
    copied = []
    for name in TOKENIZER_FILES:
        if (base_model_dir / name).is_file():
            shutil.copyfile(base_model_dir / name, destination / name)
            copied.append(name)
    return copied


def write_adapter_config(source: Path, destination: Path, base_model: str) -> None:
    """The adapter's config as JSON the platform wrote: the base model named by its Hub id (the script saw
    it at a sandbox path, ``/model``, which means nothing where the folder is downloaded; a local path of
    this machine would mean nothing either, so only a Hub id is written; the card names the base model in
    every case), and ``ADAPTER_KEYS_DROPPED`` removed."""
    try:
        config = read_config(source)  # as the artifact check read it; one checked before it did may not read
    except ArtifactError as error:
        raise PublishError(str(error)) from None
    for key in ADAPTER_KEYS_DROPPED:
        config.pop(key, None)
    if is_hub_id(base_model):
        config["base_model_name_or_path"] = base_model
    destination.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_model_folder(artifact_dir: Path, staging: Path, facts: CardFacts, base_folder: Callable[[], Path | None]) -> dict[str, str]:
    """Fill ``staging`` (absent) with the model folder (see the module's docstring). ``base_folder`` finds
    the base model's folder (None: not on this machine; a text model then has no tokenizer, and a full
    model cannot be published: PublishError). A card the artifact brought is replaced: the card states
    what the platform measured. Returns the model's files that are byte-for-byte copies of artifact
    files, each with the artifact file's path (the weights: what links a download to the signed run
    record, whose subjects are the artifact's files)."""
    staging.mkdir(mode=DIR_MODE)
    staging.chmod(DIR_MODE)  # mkdir's mode passes through the umask
    if facts.task_type == "image":
        weights = lora_weights_file(artifact_dir)
        _copy_file(weights, staging / LORA_WEIGHTS)
        copied = {LORA_WEIGHTS: weights.relative_to(artifact_dir).as_posix()}
    else:
        copied = _build_text_folder(artifact_dir, staging, facts, base_folder)
    (staging / CARD_NAME).write_text(render_model_card(facts), encoding="utf-8")
    return copied


def _build_text_folder(artifact_dir: Path, staging: Path, facts: CardFacts, base_folder: Callable[[], Path | None]) -> dict[str, str]:
    names = scored_files(artifact_dir)
    copied = {}
    for name in names:
        if name == ADAPTER_CONFIG:
            write_adapter_config(_plain_file(artifact_dir / name), staging / name, facts.base_model)
        else:
            _copy_file(artifact_dir / name, staging / name)
            copied[name] = name
    base = base_folder()
    if ADAPTER_CONFIG not in names:  # a full model: scored in the base model's architecture
        if base is None or not (base / BASE_CONFIG).is_file():
            raise PublishError(f"the base model {facts.base_model!r} is not on this machine: its {BASE_CONFIG}, which the model was scored with, cannot be published")
        shutil.copyfile(base / BASE_CONFIG, staging / BASE_CONFIG)
    if base is not None:
        copy_tokenizer(base, staging)
        if (base / GENERATION_CONFIG).is_file():
            shutil.copyfile(base / GENERATION_CONFIG, staging / GENERATION_CONFIG)
    return copied


def _plain_file(path: Path) -> Path:
    """``path`` if it is a regular file, not a link: a link a script left (the artifact check refuses
    them before this) must not copy a file from elsewhere on the server into a downloadable model."""
    if path.is_symlink() or not path.is_file():
        raise PublishError(f"{path.name} is not a regular file of the artifact")
    return path


def _copy_file(source: Path, destination: Path) -> None:
    """A copy with a fixed mode (``FILE_MODE``), never the mode of what a script left (a setuid file)."""
    shutil.copyfile(_plain_file(source), destination)
    destination.chmod(FILE_MODE)
