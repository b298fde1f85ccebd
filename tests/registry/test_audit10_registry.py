"""Audit 10 repros (registry): each test asserts what SHOULD happen and fails on be6bf01."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from registry_data import ArtifactExecutor, add_text_tasks, register_repo

from trainarena.operations import tournaments as tournaments_module
from trainarena.operations.schedule import kind_facts
from trainarena.operations.tournaments import create_pool_tournament, run_pool_tournament
from trainarena.registry import layout, register_champion_models
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.models import RegisteredModel

SCORES = {"alice": 0.1, "bob": 0.5, "carol": 0.9}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRAINARENA_REGISTRY__REGISTER_CHAMPIONS", "true")
    settings = Settings()
    for name in SCORES:
        register_repo(settings, name)
    add_text_tasks(settings, tmp_path, "t1", "t2")
    return settings


def _model_rows(settings: Settings) -> int:
    with open_store(settings) as store, store.session() as session:
        return session.query(RegisteredModel).count()


# F6: the registration of a new champion's models runs after the drive committed the tournament
# FINISHED; when it fails (or the process dies there) nothing ever tries again: serve's schedule only
# drives unfinished tournaments, and the API's drivers refuse finished ones.
def test_a_crowning_whose_registration_failed_is_registered_later(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tournaments_module, "register_champion_models", crash)
    with open_store(settings) as store:
        with store.transaction() as session:
            created = create_pool_tournament(session, settings, kind="text", pool="weekly", seed=5)
        with pytest.raises(OSError):
            run_pool_tournament(store, settings, created.id, executor=ArtifactExecutor(SCORES))
        with store.session() as session:
            facts = [f for f in kind_facts(session, settings.schedule, {}) if f.kind == "text"]
    redriven = [f.unfinished for f in facts if f.unfinished is not None]
    assert _model_rows(settings) > 0 or redriven, "champion crowned, no model registered, and nothing will drive it again"


# F7: register_model renames the model folder into place before its row is written; a failure later in
# the same transaction (here the second of the champion's models) rolls the rows back but leaves the
# folders, and each retry adds more.
def test_a_failed_registration_leaves_no_folder_without_a_row(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    real_copytree, calls = layout.shutil.copytree, []

    def second_fails(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) % 2 == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copytree(*args, **kwargs)

    monkeypatch.setattr(tournaments_module, "register_champion_models", lambda *a, **k: [])
    with open_store(settings) as store:
        with store.transaction() as session:
            created = create_pool_tournament(session, settings, kind="text", pool="weekly", seed=5)
        run_pool_tournament(store, settings, created.id, executor=ArtifactExecutor(SCORES))
        monkeypatch.setattr(layout.shutil, "copytree", second_fails)
        for _try in range(2):
            with pytest.raises(OSError):
                register_champion_models(store, settings, created.id)
    folders = sorted(p.name for p in settings.registry_dir.iterdir() if p.is_dir())
    assert _model_rows(settings) == 0
    assert folders == [], f"{len(folders)} model folders without a row: {folders}"
