"""Publishing to the Hugging Face Hub, up to the upload call: a fake HfApi records what would be sent
(these machines cannot reach the Hub)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from registry_data import write_peft_artifact

from trainarena.registry import (
    ModelKept,
    ModelSource,
    PublishingError,
    PublishingOff,
    SameAsBaseVerdict,
    delete_model,
    hub_repo_name,
    publish_model,
    register_model,
)
from trainarena.settings import Settings
from trainarena.store import Store, open_store
from trainarena.store.models import RegisteredModel


class FakeHfApi:
    """Records the calls publishing makes, with huggingface_hub 2.x's signatures."""

    calls: list[tuple[str, dict[str, Any]]]

    def __init__(self) -> None:
        self.calls = []

    def create_repo(self, repo_id: str, *, token: str | None = None, private: bool | None = None, exist_ok: bool = False) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, "token": token, "private": private, "exist_ok": exist_ok}))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id: str, folder_path: str | Path, commit_message: str | None = None,
                      token: str | None = None) -> str:  # fmt: skip
        files = sorted(p.name for p in Path(folder_path).iterdir())
        self.calls.append(("upload_folder", {"repo_id": repo_id, "folder_path": Path(folder_path), "files": files,
                                             "commit_message": commit_message, "token": token}))  # fmt: skip
        return "commit"


def test_the_fake_matches_the_installed_hfapi_signatures() -> None:
    import inspect

    from huggingface_hub import HfApi

    for name in ("create_repo", "upload_folder"):
        real = inspect.signature(getattr(HfApi, name)).parameters
        for parameter in inspect.signature(getattr(FakeHfApi, name)).parameters.values():
            assert parameter.name in real and real[parameter.name].kind == parameter.kind, (name, parameter.name)


def _settings(tmp_path: Path, **registry: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", registry=registry)


def _model(settings: Settings, tmp_path: Path) -> str:
    with open_store(settings) as store, store.transaction() as session:
        return register_model(settings, session, artifact_dir=write_peft_artifact(tmp_path / "artifact"), source=ModelSource.JOB,
                              task_type="instruct", base_model="org/base", dataset_digest="e" * 64, score=None,
                              owner_key_id=None, same_as_base=SameAsBaseVerdict(None, None)).id  # fmt: skip


def test_publishing_creates_the_repository_uploads_the_folder_and_records_the_url(tmp_path: Path) -> None:
    settings = _settings(tmp_path, hub_token="hf_secret", hub_organisation="acme")
    model_id = _model(settings, tmp_path)
    api = FakeHfApi()
    with open_store(settings) as store:
        url = publish_model(settings.registry, store, model_id, api=api)
        with store.session() as session:
            row = session.get_one(RegisteredModel, model_id)
            folder, digest, name = Path(row.path), row.digest, hub_repo_name(row)
    repo_id = f"acme/trainarena-instruct-{model_id.removeprefix('model-')}"
    assert name == repo_id.split("/")[1] and url == f"https://huggingface.co/{repo_id}"
    assert api.calls == [
        ("create_repo", {"repo_id": repo_id, "token": "hf_secret", "private": True, "exist_ok": True}),
        ("upload_folder", {"repo_id": repo_id, "folder_path": folder, "token": "hf_secret",
                           "files": ["README.md", "adapter_config.json", "adapter_model.safetensors"],
                           "commit_message": f"trainarena {model_id}: instruct model on org/base (sha256 {digest[:12]})"}),
    ]  # fmt: skip
    with open_store(settings) as store, store.session() as session:
        assert session.get_one(RegisteredModel, model_id).published_url == url


def test_a_public_repository_when_the_operator_says_so(tmp_path: Path) -> None:
    settings = _settings(tmp_path, hub_token="t", hub_organisation="acme", hub_private=False)
    model_id = _model(settings, tmp_path)
    api = FakeHfApi()
    with open_store(settings) as store:
        publish_model(settings.registry, store, model_id, api=api)
    assert api.calls[0][1]["private"] is False


@pytest.mark.parametrize("registry", [{}, {"hub_token": "t"}, {"hub_organisation": "acme"}])
def test_publishing_is_off_without_a_token_and_an_organisation(tmp_path: Path, registry: dict[str, str]) -> None:
    settings = _settings(tmp_path, **registry)
    model_id = _model(settings, tmp_path)
    api = FakeHfApi()
    with open_store(settings) as store, pytest.raises(PublishingOff, match="set registry.hub_token and registry.hub_organisation"):
        publish_model(settings.registry, store, model_id, api=api)
    assert api.calls == []


def test_a_model_whose_folder_is_gone_is_not_published(tmp_path: Path) -> None:
    import shutil

    settings = _settings(tmp_path, hub_token="t", hub_organisation="acme")
    model_id = _model(settings, tmp_path)
    with open_store(settings) as store:
        with store.session() as session:
            shutil.rmtree(session.get_one(RegisteredModel, model_id).path)
        with pytest.raises(PublishingError, match="folder .* is missing"):
            publish_model(settings.registry, store, model_id, api=FakeHfApi())


class DeletingHfApi(FakeHfApi):
    """An upload during which the model is deleted from another thread: it gives that deletion time to
    finish (it must not), then lets the upload end."""

    def __init__(self, store: Store, model_id: str) -> None:
        super().__init__()
        self.outcome: list[object] = []
        self.deletion = threading.Thread(target=self._delete, args=(store, model_id))
        self.deleted_during_upload = False

    def _delete(self, store: Store, model_id: str) -> None:
        try:
            self.outcome.append(delete_model(store, model_id, None, None))
        except ModelKept as error:
            self.outcome.append(error)

    def upload_folder(self, *, repo_id: str, folder_path: str | Path, commit_message: str | None = None,
                      token: str | None = None) -> str:  # fmt: skip
        self.deletion.start()
        self.deletion.join(timeout=1)
        self.deleted_during_upload = not self.deletion.is_alive()
        return super().upload_folder(repo_id=repo_id, folder_path=folder_path, commit_message=commit_message, token=token)


def test_a_deletion_asked_during_the_upload_waits_for_it_and_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path, hub_token="t", hub_organisation="acme")
    model_id = _model(settings, tmp_path)
    with open_store(settings) as store:
        api = DeletingHfApi(store, model_id)
        url = publish_model(settings.registry, store, model_id, api=api)
        api.deletion.join()
        with store.session() as session:
            row = session.get_one(RegisteredModel, model_id)
            assert (row.published_url, row.deleted_at, Path(row.path).is_dir()) == (url, None, True)
    assert not api.deleted_during_upload and api.calls[1][1]["files"]
    (refusal,) = api.outcome
    assert isinstance(refusal, ModelKept) and "published to the Hugging Face Hub" in str(refusal)


def test_a_deleted_model_is_not_published(tmp_path: Path) -> None:
    settings = _settings(tmp_path, hub_token="t", hub_organisation="acme")
    model_id = _model(settings, tmp_path)
    api = FakeHfApi()
    with open_store(settings) as store:
        assert delete_model(store, model_id, None, None)
        with pytest.raises(PublishingError, match="was deleted"):
            publish_model(settings.registry, store, model_id, api=api)
    assert api.calls == []
