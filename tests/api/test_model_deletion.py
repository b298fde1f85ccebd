"""``DELETE /v1/models/{id}`` and ``trainarena models delete``: the owner (or an operator) removes a
model's files and the row stays, marked deleted (when, by which key); another customer gets the 404 of
a model it may not see; a champion's model and one published to the Hub are never deleted; a deleted
model's download is a 410; deleting again answers the same and finishes what a crash cut short."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from model_world import World
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.registry import deletion, sweep_registry
from trainarena.store.models import RegisteredModel


class Killed(Exception):
    """The process ending between two steps of a deletion."""


def _delete(world: World, who: str, model_id: str) -> httpx.Response:
    return world.client.delete(f"/v1/models/{model_id}", headers=world.headers(who))


def _folder(world: World, owner: str) -> Path:
    return world.settings.registry_dir / world.models[owner]


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text
    return response.json()["error"]["message"]


def test_the_owner_deletes_its_model_and_its_record_stays(world: World) -> None:
    model_id = world.models["alice"]
    before = world.client.get(f"/v1/models/{model_id}", headers=world.headers("alice")).json()
    assert before["deleted_at"] is None and before["deleted_by"] is None
    assert before["bytes"] == sum(file["size"] for file in before["files"]) > 0

    deleted = _delete(world, "alice", model_id)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted_by"] == "alice" and deleted.json()["deleted_at"] is not None
    assert not _folder(world, "alice").exists()
    shown = world.client.get(f"/v1/models/{model_id}", headers=world.headers("alice")).json()
    assert shown == {**before, "deleted_at": deleted.json()["deleted_at"], "deleted_by": "alice"}  # the record is kept whole
    listed = {m["id"]: m for m in world.client.get("/v1/models", headers=world.headers("alice")).json()["data"]}
    assert listed[model_id]["deleted_by"] == "alice"
    message = _error(world.client.get(f"/v1/models/{model_id}/download", headers=world.headers("alice")), 410, "model_deleted")
    assert model_id in message and "was deleted" in message
    assert _folder(world, "bob").is_dir()  # nobody else's files go


def test_another_customer_gets_the_404_of_a_model_it_may_not_see(world: World) -> None:
    for model_id in (world.models["bob"], "model-nope"):
        assert _error(_delete(world, "alice", model_id), 404, "not_found") == f"no model {model_id}"
    assert _folder(world, "bob").is_dir()
    assert _delete(world, "competitor", world.models["bob"]).status_code == 403  # a competitor has no models to delete


def test_an_operator_deletes_a_customers_model_and_is_named_to_operators_only(world: World) -> None:
    deleted = _delete(world, "operator", world.models["bob"])
    assert deleted.status_code == 200 and deleted.json()["deleted_by"] == "operator"  # the operator key's name
    # The customer reads who as a role: an operator key's name is not a customer's to read.
    assert world.client.get(f"/v1/models/{world.models['bob']}", headers=world.headers("bob")).json()["deleted_by"] == "an operator"
    assert not _folder(world, "bob").exists()


def test_a_champions_model_and_a_published_one_are_never_deleted(world: World) -> None:
    for who in ("alice", "operator"):  # the champion's model is public: a customer sees it, and is refused as an operator is
        message = _error(_delete(world, who, world.models["champion"]), 409, "not_deletable")
        assert "is a champion's model" in message
    with world.store.transaction() as session:
        session.get_one(RegisteredModel, world.models["bob"]).published_url = "https://huggingface.co/acme/trainarena-x"
    for who in ("bob", "operator"):
        message = _error(_delete(world, who, world.models["bob"]), 409, "not_deletable")
        assert "published to the Hugging Face Hub (https://huggingface.co/acme/trainarena-x)" in message
    assert _folder(world, "champion").is_dir() and _folder(world, "bob").is_dir()
    for owner in ("champion", "bob"):
        assert world.client.get(f"/v1/models/{world.models[owner]}", headers=world.headers("operator")).json()["deleted_at"] is None


def test_deleting_again_answers_the_same(world: World) -> None:
    first = _delete(world, "alice", world.models["alice"])
    again = _delete(world, "operator", world.models["alice"])
    assert again.status_code == 200 and again.json() == first.json()  # when and by whom: the first deletion's


def test_a_crash_between_the_mark_and_the_files_leaves_a_deleted_model_a_second_deletion_finishes(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The mark is committed first: a process that dies before the files are removed leaves a model
    marked deleted (never one alive without files), whose leftover files are not served; deleting it
    again removes them, and so does the registry sweep."""
    model_id = world.models["alice"]

    def crash(folder: Path) -> None:
        raise Killed(f"killed before {folder.name} was removed")

    with monkeypatch.context() as patched:
        patched.setattr(deletion, "remove_folder", crash)
        with pytest.raises(Killed):
            _delete(world, "alice", model_id)
    assert _folder(world, "alice").is_dir()
    assert world.client.get(f"/v1/models/{model_id}", headers=world.headers("alice")).json()["deleted_by"] == "alice"
    _error(world.client.get(f"/v1/models/{model_id}/download", headers=world.headers("alice")), 410, "model_deleted")
    assert _delete(world, "alice", model_id).status_code == 200
    assert not _folder(world, "alice").exists()

    with monkeypatch.context() as patched:  # the same crash, healed by the sweep at the next start
        patched.setattr(deletion, "remove_folder", crash)
        with pytest.raises(Killed):
            _delete(world, "bob", world.models["bob"])
    grace = world.settings.model_copy(update={"registry": world.settings.registry.model_copy(update={"orphan_grace": timedelta(0)})})
    with world.store.session() as session:
        assert sweep_registry(session, grace) == [_folder(world, "bob")]
    assert _folder(world, "champion").is_dir()


def test_models_delete_on_the_command_line(world: World, tmp_path: Path) -> None:
    env = {"TRAINARENA_DATA_DIR": str(world.settings.data_dir), "COLUMNS": "80"}

    def invoke(*args: str, exit_code: int = 0) -> dict:
        result = CliRunner().invoke(app, ["models", "delete", *args, "--json"], env=env)
        assert result.exit_code == exit_code, result.output
        return json.loads(result.stdout)

    model_id = world.models["alice"]
    deleted = invoke(model_id)
    assert deleted["ok"] and deleted["id"] == model_id and deleted["bytes"] > 0 and not _folder(world, "alice").exists()
    assert invoke(model_id)["deleted_at"] == deleted["deleted_at"]
    shown = world.client.get(f"/v1/models/{model_id}", headers=world.headers("alice")).json()
    assert shown["deleted_at"] is not None and shown["deleted_by"] is None  # on the server's command line: no key
    text = CliRunner().invoke(app, ["models", "show", model_id], env=env).stdout
    assert "on the server's command line (its files are removed)" in " ".join(text.split())
    assert "is a champion's model" in invoke(world.models["champion"], exit_code=1)["error"]
    assert "no model model-nope" in invoke("model-nope", exit_code=1)["error"]
    exported = CliRunner().invoke(app, ["models", "export", model_id, str(tmp_path / "out"), "--json"], env=env)
    assert exported.exit_code == 1 and "it was deleted" in json.loads(exported.stdout)["error"]
    said = CliRunner().invoke(app, ["models", "delete", world.models["bob"]], env=env).stdout
    assert said.startswith(f"deleted {world.models['bob']}: its ")
