"""The model registry: trained models as Hugging Face-layout folders with model cards, listed,
exported, and published to the Hub when the operator configures it; and the open-sourcing of the
champions' code (docs/api.md, "Models")."""

from trainarena.registry.archive import (
    ModelDeleted,
    ModelFilesMissing,
    download_headers,
    export_model,
    folder_problem,
    model_archive,
    tar_chunks,
)
from trainarena.registry.card import CardFacts, Measurement, ScriptSource, render_model_card
from trainarena.registry.champions import register_champion_models, register_due_champion_models
from trainarena.registry.deletion import ModelKept, delete_model
from trainarena.registry.licenses import LicenseInfo, detect_license
from trainarena.registry.models import (
    ModelFile,
    ModelSource,
    SameAsBaseVerdict,
    model_files,
    model_record,
    model_same_as_base,
    model_same_as_base_refuted,
    register_model,
    same_as_base_verdict,
    stored_artifact_digest,
    sweep_registry,
    visible_model,
    visible_models,
)
from trainarena.registry.publishing import PublishingError, PublishingOff, hub_repo_name, publish_model
from trainarena.registry.source import (
    ChampionSource,
    ExportError,
    champion_source,
    champion_sources,
    export_code,
    registered_tree,
)

__all__ = [
    "CardFacts",
    "ChampionSource",
    "ExportError",
    "LicenseInfo",
    "Measurement",
    "ModelDeleted",
    "ModelFilesMissing",
    "ModelKept",
    "ModelFile",
    "ModelSource",
    "PublishingError",
    "PublishingOff",
    "SameAsBaseVerdict",
    "ScriptSource",
    "champion_source",
    "champion_sources",
    "delete_model",
    "detect_license",
    "download_headers",
    "export_code",
    "export_model",
    "folder_problem",
    "model_archive",
    "hub_repo_name",
    "model_files",
    "model_record",
    "model_same_as_base",
    "model_same_as_base_refuted",
    "publish_model",
    "register_champion_models",
    "register_due_champion_models",
    "register_model",
    "registered_tree",
    "render_model_card",
    "same_as_base_verdict",
    "stored_artifact_digest",
    "sweep_registry",
    "tar_chunks",
    "visible_model",
    "visible_models",
]
