"""A registered model's folder in the Hugging Face layout: the artifact's safetensors weights and its
config (``adapter_config.json`` of a PEFT LoRA adapter, ``config.json`` of a full model, or a diffusers
LoRA's ``pytorch_lora_weights.safetensors``), the tokenizer (the base model's when a text artifact has
none), and the model card ``README.md``. Built in a staging folder the caller renames into place.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from trainarena.registry.card import CardFacts, Library, is_hub_id, render_model_card

CARD_NAME = "README.md"
DIR_MODE, FILE_MODE = 0o755, 0o644  # what every folder and file of a registered model gets
ADAPTER_CONFIG = "adapter_config.json"
# What a tokenizer saved with save_pretrained may consist of; tokenizer_config.json or tokenizer.json
# marks an artifact that brought its own.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "spiece.model", "vocab.json", "merges.txt", "vocab.txt", "added_tokens.json", "chat_template.jinja")  # fmt: skip
TOKENIZER_MARKERS = ("tokenizer_config.json", "tokenizer.json")


def artifact_library(artifact_names: set[str], task_type: str) -> str:
    """The library that loads an artifact: diffusers for image LoRAs, PEFT for adapters, else transformers."""
    if task_type == "image":
        return Library.DIFFUSERS
    return Library.PEFT if ADAPTER_CONFIG in artifact_names else Library.TRANSFORMERS


def needs_tokenizer(artifact_names: set[str], task_type: str) -> bool:
    return task_type != "image" and not any(marker in artifact_names for marker in TOKENIZER_MARKERS)


def copy_tokenizer(base_model_dir: Path, destination: Path) -> list[str]:
    """Copy the base model's tokenizer files into ``destination``; the names copied."""
    copied = []
    for name in TOKENIZER_FILES:
        source = base_model_dir / name
        if source.is_file():
            shutil.copyfile(source, destination / name)
            (destination / name).chmod(FILE_MODE)
            copied.append(name)
    return copied


def point_adapter_at_base(folder: Path, base_model: str) -> None:
    """Name the base model in the adapter's config: the script saw it at a sandbox path (``/model``),
    which means nothing where the folder is downloaded. Only a Hub id is written (a local path of this
    machine would mean nothing either); the card names the base model in every case."""
    path = folder / ADAPTER_CONFIG
    if not path.is_file() or not is_hub_id(base_model):
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_model
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def copy_plain(source: Path, destination: Path) -> None:
    """Copy ``source``'s folders and regular files into ``destination`` (absent) with fixed modes: folders
    0755, files 0644 (``copyfile``, never the modes, owners or flags of what a script left: a setuid file
    in an artifact must not become a setuid file in the registry). Links are never followed: a link a
    script left (the artifact check refuses them before this) must not copy a file from elsewhere on the
    server into a downloadable model. Iterative: the artifact's depth is capped, but no recursion at all."""
    pending = [(source, destination)]
    while pending:
        folder, target = pending.pop()
        target.mkdir(mode=DIR_MODE)
        target.chmod(DIR_MODE)  # mkdir's mode passes through the umask
        for path in sorted(folder.iterdir()):
            if path.is_symlink():
                continue
            if path.is_dir():
                pending.append((path, target / path.name))
            elif path.is_file():
                shutil.copyfile(path, target / path.name)
                (target / path.name).chmod(FILE_MODE)


def build_model_folder(artifact_dir: Path, staging: Path, facts: CardFacts, tokenizer_from: Callable[[], Path | None]) -> None:
    """Fill ``staging`` (absent) with the model folder (see the module's docstring). ``tokenizer_from``
    finds the base model's folder, asked only when a tokenizer is missing. A card the artifact brought is
    replaced: the card states what the platform measured."""
    copy_plain(artifact_dir, staging)
    names = {p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()}
    if needs_tokenizer(names, facts.task_type) and (base_folder := tokenizer_from()) is not None:
        copy_tokenizer(base_folder, staging)
    point_adapter_at_base(staging, facts.base_model)
    (staging / CARD_NAME).write_text(render_model_card(facts), encoding="utf-8")
