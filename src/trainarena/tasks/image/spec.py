"""The image dataset spec: where the captioned images are, what they show, and what the base model is.

A task file's ``[dataset]`` table for an image task::

    source = "person_zxq"          # a folder (or a .zip) holding the images and a captions file
    kind = "person"                # person | style
    model_type = "sd"              # sd | sdxl | flux: what the scripts train (ImageRules.model_types)
    captions = "captions.jsonl"    # optional; one {"file": "images/0001.png", "caption": "..."} per line
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainarena.tasks.base import DatasetError, UnknownSpecKeys

KINDS = ("person", "style")
DEFAULT_CAPTIONS = "captions.jsonl"
_KEYS = ("source", "kind", "model_type", "captions")
_REQUIRED = ("source", "kind", "model_type")


@dataclass(frozen=True)
class ImageDatasetSpec:
    source: str
    kind: str
    model_type: str
    captions: str = DEFAULT_CAPTIONS

    @classmethod
    def from_dict(cls, data: dict[str, Any], model_types: tuple[str, ...]) -> ImageDatasetSpec:
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise UnknownSpecKeys("image dataset spec", unknown, list(_KEYS), noun="keys")
        missing = sorted(key for key in _REQUIRED if key not in data)
        if missing:  # as the text types say it
            raise DatasetError(f"image dataset spec: missing required key(s) {missing}")
        for key in _REQUIRED:
            if not isinstance(data[key], str) or not data[key]:
                raise DatasetError(f"image dataset spec: '{key}' must be a non-empty string, got {data.get(key)!r}")
        if data["kind"] not in KINDS:
            raise DatasetError(f"image dataset spec: kind {data['kind']!r} is not one of {list(KINDS)}")
        if data["model_type"] not in model_types:
            raise DatasetError(f"image dataset spec: model_type {data['model_type']!r} is not one of {list(model_types)}")
        captions = data.get("captions", DEFAULT_CAPTIONS)
        if not isinstance(captions, str) or not captions or captions.startswith("/") or ".." in captions.split("/"):
            raise DatasetError(f"image dataset spec: captions must be a relative file name, got {captions!r}")
        return cls(source=data["source"], kind=data["kind"], model_type=data["model_type"], captions=captions)
