"""``/v1/models``: who sees which model (another customer's is a 404), its files with sha256, the tar
download, and publishing (operators only; off unless configured; the Hub faked)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from model_world import World, model_world
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.wording import HOUSE_SCRIPT


def _get(world: World, who: str, path: str):
    return world.client.get(path, headers=world.headers(who))


def test_each_caller_lists_what_it_may_see(world: World) -> None:
    seen = {who: {m["id"] for m in _get(world, who, "/v1/models").json()["data"]} for who in world.keys}
    m = world.models
    assert seen == {"operator": {m["alice"], m["bob"], m["champion"]}, "alice": {m["alice"], m["champion"]},
                    "bob": {m["bob"], m["champion"]}, "competitor": {m["champion"]}}  # fmt: skip
    body = _get(world, "alice", "/v1/models").json()
    assert body["object"] == "list" and body["has_more"] is False
    assert world.client.get("/v1/models").status_code == 401


def test_a_model_shows_its_card_facts_and_files_with_sha256(world: World, tmp_path: Path) -> None:
    response = _get(world, "alice", f"/v1/models/{world.models['alice']}")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["object"], body["source"], body["library"], body["license"], body["script"]) == (
        world.models["alice"], "model", "job", "peft", "apache-2.0", HOUSE_SCRIPT)
    # The house script trained it: named as GET /v1/jobs/{id}, `models show` and the card name it (it was null).
    listed = {model["id"]: model["script"] for model in _get(world, "alice", "/v1/models").json()["data"]}
    assert listed[world.models["alice"]] == HOUSE_SCRIPT
    env = {"TRAINARENA_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "80"}
    shown = CliRunner().invoke(app, ["models", "show", world.models["alice"], "--json"], env=env)
    assert json.loads(shown.stdout)["script"] == HOUSE_SCRIPT
    text = " ".join(CliRunner().invoke(app, ["models", "show", world.models["alice"]], env=env).stdout.split())
    assert f"script {HOUSE_SCRIPT} license" in text
    files = {f["path"]: f for f in body["files"]}
    assert sorted(files) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    weights = (tmp_path / "alice" / "adapter_model.safetensors").read_bytes()  # the artifact's, as it was scored
    assert files["adapter_model.safetensors"] == {"path": "adapter_model.safetensors", "size": len(weights),
                                                  "sha256": hashlib.sha256(weights).hexdigest(),
                                                  "artifact_path": "adapter_model.safetensors"}  # fmt: skip
    # The adapter config is rewritten and the card written by the registry: no copies of the artifact's.
    assert files["adapter_config.json"]["artifact_path"] is None and files["README.md"]["artifact_path"] is None


def test_another_customers_model_is_not_found(world: World) -> None:
    for path in ("", "/download"):
        response = _get(world, "alice", f"/v1/models/{world.models['bob']}{path}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert _get(world, "alice", "/v1/models/model-nope").status_code == 404
    assert _get(world, "operator", f"/v1/models/{world.models['bob']}").status_code == 200
    assert _get(world, "bob", f"/v1/models/{world.models['champion']}/download").status_code == 200


def test_the_download_is_a_tar_of_the_folder(world: World) -> None:
    model_id = world.models["alice"]
    response = _get(world, "alice", f"/v1/models/{model_id}/download")
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-tar"
    assert response.headers["content-disposition"] == f'attachment; filename="{model_id}.tar"'
    files = {f["path"]: f["sha256"] for f in _get(world, "alice", f"/v1/models/{model_id}").json()["files"]}
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:") as archive:
        members = {m.name: hashlib.sha256(archive.extractfile(m).read()).hexdigest() for m in archive.getmembers()}
    assert members == {f"{model_id}/{path}": digest for path, digest in files.items()}


def test_a_model_whose_folder_is_gone_or_changed_answers_409_not_an_empty_tar(world: World, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "data" / "models" / world.models["alice"]
    size = (folder / "adapter_model.safetensors").stat().st_size
    (folder / "adapter_model.safetensors").write_bytes(b"cut short")
    changed = _get(world, "alice", f"/v1/models/{world.models['alice']}/download")
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "model_files_missing"
    assert f"adapter_model.safetensors is 9 bytes, registered as {size}" in changed.json()["error"]["message"]
    shutil.rmtree(folder)
    gone = _get(world, "alice", f"/v1/models/{world.models['alice']}/download").json()["error"]
    assert "its folder is missing" in gone["message"] and str(folder) not in gone["message"]  # no server path
    (folder.parent / world.models["bob"] / "README.md").unlink()
    assert "README.md is missing" in _get(world, "bob", f"/v1/models/{world.models['bob']}/download").json()["error"]["message"]
    assert _get(world, "bob", f"/v1/models/{world.models['champion']}/download").status_code == 200


class FakeHfApi:
    calls: list[tuple[str, str, object]] = []

    def create_repo(self, repo_id: str, *, token=None, private=None, exist_ok=False):
        self.calls.append(("create_repo", repo_id, private))

    def upload_folder(self, *, repo_id: str, folder_path, commit_message=None, token=None):
        self.calls.append(("upload_folder", repo_id, Path(folder_path).name))


def test_publishing_is_for_operators_and_off_by_default(world: World) -> None:
    model_id = world.models["alice"]
    headers = {"Authorization": f"Bearer {world.keys['alice']}"}
    assert world.client.post(f"/v1/models/{model_id}/publish", headers=headers).status_code == 403
    response = world.client.post(f"/v1/models/{model_id}/publish", headers={"Authorization": f"Bearer {world.keys['operator']}"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "publishing_off"
    assert "registry.hub_token" in response.json()["error"]["message"]


def test_an_operator_publishes_with_the_hub_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    FakeHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    with model_world(tmp_path, registry={"hub_token": "hf_x", "hub_organisation": "acme"}) as world:
        model_id = world.models["champion"]
        headers = {"Authorization": f"Bearer {world.keys['operator']}"}
        response = world.client.post(f"/v1/models/{model_id}/publish", headers=headers)
        repo_id = f"acme/trainarena-instruct-{model_id.removeprefix('model-')}"
        assert response.status_code == 200 and response.json()["published_url"] == f"https://huggingface.co/{repo_id}"
        assert FakeHfApi.calls == [("create_repo", repo_id, True), ("upload_folder", repo_id, model_id)]
        assert _get(world, "bob", f"/v1/models/{model_id}").json()["published_url"] == response.json()["published_url"]
        assert world.client.post("/v1/models/model-nope/publish", headers=headers).status_code == 404
