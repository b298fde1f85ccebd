"""Publishing a registered model to the Hugging Face Hub: off unless the operator sets
``registry.hub_token`` and ``registry.hub_organisation``. Creates the repository
``{organisation}/{name}`` (private per ``registry.hub_private``; an existing one is reused) and uploads
the model's folder, card included, then records the repository's URL on the model.

The Hub client is ``huggingface_hub.HfApi`` unless one is passed in: tests pass a fake, since these
machines cannot reach the Hub (docs/api.md, "Models", says what that leaves unexercised).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session

from trainarena.settings import RegistryRules
from trainarena.store.models import RegisteredModel

HUB_URL = "https://huggingface.co"


class PublishingError(ValueError):
    """The model cannot be published as asked."""


class PublishingOff(PublishingError):
    """The operator has not configured a Hub token and organisation."""


class HubClient(Protocol):
    """The two calls of ``huggingface_hub.HfApi`` publishing makes (2.x signatures)."""

    def create_repo(self, repo_id: str, *, token: str | None = ..., private: bool | None = ..., exist_ok: bool = ...) -> Any: ...

    def upload_folder(self, *, repo_id: str, folder_path: str | Path, commit_message: str | None = ...,
                      token: str | None = ...) -> Any: ...  # fmt: skip


def hub_repo_name(model: RegisteredModel) -> str:
    """The repository's name: ``trainarena-<task type>-<the model id's random part>``, unique per model."""
    return f"trainarena-{model.task_type}-{model.id.removeprefix('model-')}"


def publish_model(rules: RegistryRules, session: Session, model: RegisteredModel, *, api: HubClient | None = None) -> str:
    """Upload ``model`` to the Hub and record its URL (the caller's transaction commits); the URL."""
    if rules.hub_token is None or not rules.hub_organisation:
        raise PublishingOff("publishing to the Hugging Face Hub is off: set registry.hub_token and "
                              "registry.hub_organisation (TRAINARENA_REGISTRY__HUB_TOKEN, TRAINARENA_REGISTRY__HUB_ORGANISATION)")  # fmt: skip
    folder = Path(model.path)
    if model.deleted_at is not None:  # what a deletion cut short left of its folder is not published either
        raise PublishingError(f"model {model.id} was deleted (its files were removed with it); it cannot be published")
    if not folder.is_dir():
        raise PublishingError(f"model {model.id}'s folder {folder} is missing; it cannot be published")
    if api is None:
        from huggingface_hub import HfApi  # imported only when publishing for real

        api = HfApi()
    token = rules.hub_token.get_secret_value()
    repo_id = f"{rules.hub_organisation}/{hub_repo_name(model)}"
    api.create_repo(repo_id, token=token, private=rules.hub_private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=folder, token=token,
                      commit_message=f"trainarena {model.id}: {model.task_type} model on {model.base_model} (sha256 {model.digest[:12]})")  # fmt: skip
    model.published_url = f"{HUB_URL}/{repo_id}"
    session.flush()
    return model.published_url
