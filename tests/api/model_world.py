"""What the models tests build: a store with a key of each role and two customers, alice and bob, each
owning a job's model, and a champion's (public) model, registered from tiny PEFT artifacts (real
safetensors files, never trained); and the API over it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from trainarena.api import create_app
from trainarena.registry import ModelSource, SameAsBaseVerdict, register_model
from trainarena.settings import Settings
from trainarena.store import Store, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import RegisteredModel


@dataclass
class World:
    client: TestClient
    keys: dict[str, str]  # role or customer name -> secret
    models: dict[str, str]  # owner -> model id: alice's, bob's, the champion's (public)
    settings: Settings
    store: Store

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


def make_artifact(folder: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": "/model"}))
    save_file({"lora_A": torch.ones(2, 3)}, str(folder / "adapter_model.safetensors"))
    # Not scored, so not published (docs/api.md, "Models"); the weights' size is no multiple of 512, so the
    # tar padding is exercised.
    (folder / "notes.txt").write_bytes(b"x" * 700)
    return folder


def register_artifact(settings: Settings, session: Session, folder: Path, owner_key_id: int | None) -> RegisteredModel:
    """A model registered from a new artifact in ``folder``: a job's of ``owner_key_id``, or a champion's (None)."""
    return register_model(
        settings, session, artifact_dir=make_artifact(folder), task_type="instruct",
        source=ModelSource.CHAMPION if owner_key_id is None else ModelSource.JOB, base_model="org/base",
        dataset_digest="e" * 64, score=0.25, owner_key_id=owner_key_id, same_as_base=SameAsBaseVerdict(None, None),
    )  # fmt: skip


@contextmanager
def model_world(tmp_path: Path, **sections: dict[str, Any]) -> Iterator[World]:
    """The world of the module's docstring, its settings' ``sections`` as given (``registry={...}``)."""
    settings = Settings(data_dir=tmp_path / "data", **sections)
    with open_store(settings) as store:
        with store.transaction() as session:
            keys = {name: create_key(session, name, role) for name, role in
                    (("operator", "operator"), ("competitor", "competitor"), ("alice", "customer"), ("bob", "customer"))}  # fmt: skip
            models = {owner: register_artifact(settings, session, tmp_path / owner, None if owner == "champion" else keys[owner].row.id).id
                      for owner in ("alice", "bob", "champion")}  # fmt: skip
            secrets = {name: key.secret for name, key in keys.items()}
        with TestClient(create_app(settings, store=store)) as client:
            yield World(client, secrets, models, settings, store)
