"""Publishing a registered model to the Hugging Face Hub: off unless the operator sets
``registry.hub_token`` and ``registry.hub_organisation``. Creates the repository
``{organisation}/{name}`` (private per ``registry.hub_private``; an existing one is reused) and uploads
the model's folder, card included, then records the repository's URL on the model.

A model is published or deleted, never both: publishing holds the model's store-wide lock
(``model_lock``) from its check that the model is not deleted until its URL is committed, and deletion
takes the same lock to mark the model, so a deletion asked during an upload waits for it and then finds
the model published (never deleted), and a publication asked during a deletion finds it deleted. No
database transaction stays open during the upload: the lock is the store's ``named_lock``.

The Hub client is ``huggingface_hub.HfApi`` unless one is passed in: tests pass a fake, since these
machines cannot reach the Hub (docs/api.md, "Models", says what that leaves unexercised).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from trainarena.settings import RegistryRules
from trainarena.store import Store, named_lock
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


def model_lock(store: Store, model_id: str) -> AbstractContextManager[None]:
    """The lock publishing and deletion of the model ``model_id`` take (the module's docstring)."""
    return named_lock(store.engine, f"model-{model_id}")


def publish_model(rules: RegistryRules, store: Store, model_id: str, *, api: HubClient | None = None) -> str:
    """Upload the registered model ``model_id`` to the Hub and commit its URL; the URL."""
    if rules.hub_token is None or not rules.hub_organisation:
        raise PublishingOff("publishing to the Hugging Face Hub is off: set registry.hub_token and "
                              "registry.hub_organisation (TRAINARENA_REGISTRY__HUB_TOKEN, TRAINARENA_REGISTRY__HUB_ORGANISATION)")  # fmt: skip
    token = rules.hub_token.get_secret_value()
    with model_lock(store, model_id):
        with store.session() as session:
            model = session.get_one(RegisteredModel, model_id)
            folder, repo_id = Path(model.path), f"{rules.hub_organisation}/{hub_repo_name(model)}"
            message = f"trainarena {model.id}: {model.task_type} model on {model.base_model} (sha256 {model.digest[:12]})"
            if model.deleted_at is not None:  # what a deletion cut short left of its folder is not published either
                raise PublishingError(f"model {model.id} was deleted (its files were removed with it); it cannot be published")
        if not folder.is_dir():
            raise PublishingError(f"model {model_id}'s folder {folder} is missing; it cannot be published")
        if api is None:
            from huggingface_hub import HfApi  # imported only when publishing for real

            api = HfApi()
        api.create_repo(repo_id, token=token, private=rules.hub_private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=folder, token=token, commit_message=message)
        url = f"{HUB_URL}/{repo_id}"
        with store.transaction() as session:
            session.get_one(RegisteredModel, model_id).published_url = url
    return url
