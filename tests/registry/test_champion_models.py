"""Champions' models into the registry: a tournament that crowns a champion registers the models the
champion trained in it (public, source champion) when the setting is on; never twice. A registration
that failed after the crowning is done later by serve (at start, after a fault), the API's drivers and
the next tournament's end, for every crowning that owed its models however many were crowned since,
oldest first; a failed one leaves no folder behind."""

from __future__ import annotations

import errno
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import pytest
from registry_data import ArtifactExecutor, add_text_tasks, register_repo

from trainarena.operations.serving import ServeEvent, Serving
from trainarena.operations.tournaments import create_pool_tournament, run_pool_tournament
from trainarena.registry import champions as champions_module
from trainarena.registry import register_champion_models, register_due_champion_models
from trainarena.registry.card import parse_front_matter
from trainarena.reporting.server_paths import SERVER_SOURCE
from trainarena.settings import ScheduleRules, Settings
from trainarena.store import get_competitor, open_store, tournament_runs
from trainarena.store.models import ChampionHistory, RegisteredModel, Run


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRAINARENA_REGISTRY__REGISTER_CHAMPIONS", "true")
    return Settings()


SCORES = {"alice": 0.1, "bob": 0.5, "carol": 0.9, "dave": 0.01}


def _play(settings: Settings, seed: int):
    with open_store(settings) as store:
        with store.transaction() as session:
            created = create_pool_tournament(session, settings, kind="text", pool="weekly", seed=seed)
        return run_pool_tournament(store, settings, created.id, executor=ArtifactExecutor(SCORES))


def _models(settings: Settings) -> list[tuple[str, int | None, int | None, str, str | None]]:
    with open_store(settings) as store, store.session() as session:
        rows = session.query(RegisteredModel).order_by(RegisteredModel.run_id).all()
        return [(row.source, row.owner_key_id, row.run_id, row.path, row.competitor.name if row.competitor else None) for row in rows]


def test_a_crowning_registers_the_champions_models_once(settings: Settings, tmp_path: Path) -> None:
    for name in ("alice", "bob", "carol"):
        register_repo(settings, name)
    add_text_tasks(settings, tmp_path, "t1", "t2")
    result = _play(settings, seed=5)
    assert result.crowned and result.champion == "alice"

    with open_store(settings) as store, store.session() as session:
        champion = get_competitor(session, result.champion)
        runs = [run.id for run in session.query(Run).filter(Run.competitor_id == champion.id).order_by(Run.id)]
        commit, repo_url = champion.commit, champion.repo_url
    models = _models(settings)
    assert runs and [(m[0], m[1], m[2], m[4]) for m in models] == [("champion", None, run, result.champion) for run in runs]
    card = (Path(models[0][3]) / "README.md").read_text()
    assert f"- Training script: a working tree on the server@{commit}" in card and repo_url not in card
    assert "- Measured as: eval_loss (lower is better) on 4 hidden rows the script never saw" in card
    assert parse_front_matter(card)["tags"] == ["trainarena", "instruct", "lora"]

    # Idempotent: registering the same tournament again adds nothing.
    with open_store(settings) as store:
        assert register_champion_models(store, settings, result.id) == []
    assert _models(settings) == models

    # The champion defends and keeps its title: nobody new is crowned, nothing is registered. A defended
    # tournament draws the tasks of every boss round the paired rule may play; played tasks are spent.
    add_text_tasks(settings, tmp_path, *(f"t{i}" for i in range(3, 19)))
    defended = _play(settings, seed=6)
    assert (defended.champion, defended.crowned) == ("alice", False) and _models(settings) == models

    # A better challenger takes the title in the boss round: its models from that tournament join.
    register_repo(settings, "dave")
    add_text_tasks(settings, tmp_path, *(f"t{i}" for i in range(19, 35)))
    taken = _play(settings, seed=7)
    assert (taken.champion, taken.crowned) == ("dave", True)
    with open_store(settings) as store, store.session() as session:
        dave = get_competitor(session, "dave")
        dave_runs = [run.id for run in session.query(Run).filter(Run.competitor_id == dave.id).order_by(Run.id)]
    assert _models(settings)[len(models):] == [m for m in _models(settings) if m[4] == "dave"]
    assert [m[2] for m in _models(settings) if m[4] == "dave"] == dave_runs


def _crowned_with_the_setting_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202 - the pool driver's result
    """A finished tournament that crowned a champion while registering champions' models was off."""
    monkeypatch.setenv("TRAINARENA_REGISTRY__REGISTER_CHAMPIONS", "false")
    off = Settings()
    for name in ("alice", "bob"):
        register_repo(off, name)
    add_text_tasks(off, tmp_path, "t1", "t2")
    result = _play(off, seed=5)
    assert result.crowned and _models(off) == []
    return result


def test_nothing_is_registered_when_the_setting_is_off(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _crowned_with_the_setting_off(tmp_path, monkeypatch)
    # Turned on later, the same finished tournament's champion is registered on request.
    with open_store(settings) as store:
        assert len(register_champion_models(store, settings, result.id)) >= 1


def test_a_champions_weights_are_compared_before_the_registration_transaction(settings: Settings, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The check of a script's claim that it kept the base model's weights (long for a full model) runs
    for each run before the registration's transaction, which holds a SQLite store's write lock; each
    model records its run's verdict."""
    from sqlite_lock import write_lock_free
    from trainarena.registry import SameAsBaseVerdict, model_record
    from trainarena.registry.card import same_as_base_note

    result = _crowned_with_the_setting_off(tmp_path, monkeypatch)
    checked: dict[Path, bool] = {}

    def verdict(_settings: Settings, artifact: Path, *_: object) -> SameAsBaseVerdict:
        checked[artifact] = write_lock_free(settings.db_url)
        return SameAsBaseVerdict(f"kept {artifact.parent.name}", True)

    monkeypatch.setattr(champions_module, "same_as_base_verdict", verdict)
    with open_store(settings) as store:
        registered = register_champion_models(store, settings, result.id)
        assert registered and len(checked) == len(registered) and all(checked.values())
        with store.session() as session:
            for row in session.query(RegisteredModel):
                run = session.get_one(Run, row.run_id)
                assert model_record(session, row)["same_as_base"] == same_as_base_note(f"kept {Path(run.artifact_path).parent.name}")


def test_the_api_names_the_reigning_champions_code_and_license(settings: Settings, tmp_path: Path) -> None:
    """GET /v1/champions carries the open-sourced code of each reigning champion: repo@commit, tree
    hash, source digest and the license read from its registered tree (flagged when missing)."""
    from fastapi.testclient import TestClient
    from registry_data import MIT_TEXT

    from trainarena.api import create_app
    from trainarena.store.api_keys import create_key

    register_repo(settings, "alice", {"LICENSE": MIT_TEXT})
    for name in ("bob", "carol"):
        register_repo(settings, name)
    add_text_tasks(settings, tmp_path, "t1", "t2")
    assert _play(settings, seed=5).champion == "alice"
    with open_store(settings) as store:
        with store.transaction() as session:
            headers = {"Authorization": f"Bearer {create_key(session, 'c', 'competitor').secret}"}
            operator = {"Authorization": f"Bearer {create_key(session, 'o', 'operator').secret}"}
            alice = get_competitor(session, "alice")
            # A repository on the server (file://) is named to competitors as one, by its commit.
            pinned, tree_hash, digest = f"{SERVER_SOURCE}@{alice.commit}", alice.tree_hash, alice.source_digest
            operators_pinned = f"{alice.repo_url}@{alice.commit}"
        with TestClient(create_app(settings, store=store)) as client:
            answer = client.get("/v1/champions", headers=headers).json()
            assert client.get("/v1/champions", headers=operator).json()["code"]["text"]["pinned"] == operators_pinned
            home = client.get("/").text
            page = client.get("/competitors/alice").text
    assert answer["reigning"]["text"]["champion"] == "alice" and answer["reigning"]["image"] is None
    assert answer["code"] == {"text": {"pinned": pinned, "tree_hash": tree_hash, "source_digest": digest, "license": "mit",
                                       "license_file": "LICENSE", "download": "/v1/champions/alice/code", "error": None}}  # fmt: skip
    assert "license mit (LICENSE)" in home and "trainarena champions export-code alice DIR" in home
    assert "<dt>License</dt><dd>mit (LICENSE)</dd>" in page


def _crowned_but_unregistered(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failures: int = 10**6) -> int:
    """A tournament that crowned alice, whose registration of her models failed (the disk full) the
    first ``failures`` times; its id."""
    from trainarena.operations import tournaments as tournaments_module

    for name in ("alice", "bob", "carol"):
        register_repo(settings, name)
    add_text_tasks(settings, tmp_path, *(f"t{i}" for i in range(1, 19)))
    real, calls = tournaments_module.register_due_champion_models, []

    def disk_full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) <= failures:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(tournaments_module, "register_due_champion_models", disk_full)
    with open_store(settings) as store:
        with store.transaction() as session:
            return create_pool_tournament(session, settings, kind="text", pool="weekly", seed=5).id


def _champion_runs(settings: Settings, name: str) -> list[int]:
    with open_store(settings) as store, store.session() as session:
        champion = get_competitor(session, name)
        return [run.id for run in session.query(Run).filter(Run.competitor_id == champion.id).order_by(Run.id)]


def test_a_crowning_whose_registration_failed_is_registered_when_serve_starts(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tournament is finished, so nothing drives it again: serve's start registers its models."""
    tournament_id = _crowned_but_unregistered(settings, tmp_path, monkeypatch)
    with open_store(settings) as store, pytest.raises(OSError, match="No space left"):
        run_pool_tournament(store, settings, tournament_id, executor=ArtifactExecutor(SCORES))
    assert _models(settings) == []
    quiet = settings.model_copy(update={"schedule": ScheduleRules(text_enabled=False, image_enabled=False)})
    events: list[ServeEvent] = []
    with open_store(quiet) as store:
        Serving(store, quiet, ArtifactExecutor(SCORES), events.append, threading.Event()).run(once=True)
    runs = _champion_runs(settings, "alice")
    assert runs and [(m[0], m[2], m[4]) for m in _models(settings)] == [("champion", run, "alice") for run in runs]
    registered = [event for event in events if event.event == "registered"]
    assert len(registered) == 1 and len(registered[0].fields["models"]) == len(runs)
    with open_store(quiet) as store:  # started again: nothing is left to register
        Serving(store, quiet, ArtifactExecutor(SCORES), events.append, threading.Event()).run(once=True)
    assert [event.event for event in events].count("registered") == 1 and len(_models(settings)) == len(runs)


def test_serve_registers_a_crowning_whose_registration_faulted_after_its_rest(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault comes inside serve's own drive: the retry after ``retry_after_fault`` registers them."""
    _crowned_but_unregistered(settings, tmp_path, monkeypatch, failures=1)
    rules = ScheduleRules(text_pool="weekly", image_enabled=False, retry_after_fault=timedelta(seconds=0.3))
    scheduled = settings.model_copy(update={"schedule": rules})
    events: list[ServeEvent] = []
    stop = threading.Event()
    with open_store(scheduled) as store:
        serving = threading.Thread(target=Serving(store, scheduled, ArtifactExecutor(SCORES), events.append, stop).run)
        serving.start()
        try:
            deadline = time.monotonic() + 60
            while not any(event.event == "registered" for event in events) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            serving.join()
    kinds = [event.event for event in events]
    assert "fault" in kinds and "registered" in kinds and kinds.index("fault") < kinds.index("registered")
    assert [m[2] for m in _models(settings)] == _champion_runs(settings, "alice")


def test_the_api_drivers_register_a_crowning_left_out_before_their_next_drive(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainarena.operations.drivers import BackgroundDrivers

    tournament_id = _crowned_but_unregistered(settings, tmp_path, monkeypatch)
    with open_store(settings) as store:
        with pytest.raises(OSError, match="No space left"):
            run_pool_tournament(store, settings, tournament_id, executor=ArtifactExecutor(SCORES))
        with store.transaction() as session:
            later = create_pool_tournament(session, settings, kind="text", pool="weekly", seed=6).id
        drivers = BackgroundDrivers(settings, ArtifactExecutor(SCORES))
        drivers.start()
        drivers.begin(store, later)
        deadline = time.monotonic() + 60
        while drivers.driving(later) and time.monotonic() < deadline:
            time.sleep(0.05)
        drivers.stop()
    assert [m[2] for m in _models(settings) if m[4] == "alice"] == [
        run for run in _champion_runs(settings, "alice") if run < min(_tournament_run_ids(settings, later))
    ]


def _tournament_run_ids(settings: Settings, tournament_id: int) -> list[int]:
    with open_store(settings) as store, store.session() as session:
        return [run.id for run in tournament_runs(session, tournament_id)]


def test_a_failed_registration_leaves_no_folder_without_a_row(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second of the champion's models fails to copy: the first one's folder goes with the rolled
    back rows, each time it is tried."""
    from trainarena.registry import layout

    for name in ("alice", "bob", "carol"):
        register_repo(settings, name)
    add_text_tasks(settings, tmp_path, "t1", "t2")
    real_build, calls = layout.build_model_folder, []

    def second_fails(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) % 2 == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_build(*args, **kwargs)

    monkeypatch.setenv("TRAINARENA_REGISTRY__REGISTER_CHAMPIONS", "false")
    result = _play(Settings(), seed=5)
    monkeypatch.setattr("trainarena.registry.models.build_model_folder", second_fails)
    with open_store(settings) as store:
        for _try in range(2):
            with pytest.raises(OSError, match="No space left"):
                register_champion_models(store, settings, result.id)
    assert len(calls) == 4 and _models(settings) == []
    assert [p.name for p in settings.registry_dir.iterdir()] == []


def test_two_heals_at_once_register_each_champion_run_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two heals (a drive thread starting while serve starts) overlap; building a model folder is slow
    enough that each would read what is registered before the other commits. One registers the models,
    the other finds them and registers nothing, and no folder is left without its row."""
    from trainarena.registry import layout

    monkeypatch.setenv("TRAINARENA_REGISTRY__REGISTER_CHAMPIONS", "false")
    off = Settings()
    for name in ("alice", "bob", "carol"):
        register_repo(off, name)
    add_text_tasks(off, tmp_path, "t1", "t2")
    assert _play(off, seed=5).crowned and _models(settings) == []
    real_build = layout.build_model_folder

    def slow_build(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        time.sleep(0.3)
        return real_build(*args, **kwargs)

    monkeypatch.setattr("trainarena.registry.models.build_model_folder", slow_build)
    counts: list[int] = []
    errors: list[BaseException] = []
    with open_store(settings) as store:

        def heal() -> None:
            try:
                counts.append(len(register_due_champion_models(store, settings)))
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(error)

        threads = [threading.Thread(target=heal) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    runs = _champion_runs(settings, "alice")
    assert errors == [] and sorted(counts) == [0, len(runs)] and runs
    models = _models(settings)
    assert [m[2] for m in models] == runs
    assert sorted(p.name for p in settings.registry_dir.iterdir()) == sorted(Path(m[3]).name for m in models)


class Crash(BaseException):
    """The process dies (not an error anything handles): what it committed stays, the rest is lost."""


def _crash(*args: object, **kwargs: object) -> NoReturn:
    raise Crash


def _crowned(settings: Settings, seed: int, champion: str, *, crash: bool, monkeypatch: pytest.MonkeyPatch) -> int:
    """Play a tournament that crowns ``champion``; with ``crash``, the process dies as the registration
    of the champion's models begins, after the crowning was committed. The tournament's id."""
    with monkeypatch.context() as patch:
        if crash:
            patch.setattr("trainarena.registry.champions.register_model", _crash)
        try:
            result = _play(settings, seed)
        except Crash:
            with open_store(settings) as store, store.session() as session:
                crowning = session.query(ChampionHistory).order_by(ChampionHistory.id.desc()).first()
                assert crowning is not None and crowning.competitor.name == champion
                return crowning.tournament_id
    assert not crash and (result.champion, result.crowned) == (champion, True)
    return result.id


def _runs_of(settings: Settings, name: str, tournament_id: int) -> list[int]:
    return [run for run in _tournament_run_ids(settings, tournament_id) if run in _champion_runs(settings, name)]


def test_a_crash_after_each_of_two_crownings_leaves_both_to_heal_in_order(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alice is crowned while the setting is off; then dave and erin each take the title, and the process
    dies each time between the crowning and its registration. The heal registers dave's models, then
    erin's (before, only erin's: the latest crowning), once; alice's, dethroned while the setting was
    off, never."""
    monkeypatch.setitem(SCORES, "erin", 0.001)
    for name in ("alice", "bob", "carol"):
        register_repo(settings, name)
    add_text_tasks(settings, tmp_path, *(f"t{i}" for i in range(1, 61)))
    with monkeypatch.context() as patch:
        patch.setenv("TRAINARENA_REGISTRY__REGISTER_CHAMPIONS", "false")
        _crowned(Settings(), 5, "alice", crash=False, monkeypatch=monkeypatch)
    register_repo(settings, "dave")
    first = _crowned(settings, 7, "dave", crash=True, monkeypatch=monkeypatch)
    register_repo(settings, "erin")
    second = _crowned(settings, 8, "erin", crash=True, monkeypatch=monkeypatch)
    assert _models(settings) == []

    with open_store(settings) as store:
        healed = register_due_champion_models(store, settings)
        assert register_due_champion_models(store, settings) == []  # idempotent
    dave, erin = _runs_of(settings, "dave", first), _runs_of(settings, "erin", second)
    assert dave and erin and [model.run_id for model in healed] == dave + erin  # the first crowned first
    assert [(m[2], m[4]) for m in _models(settings)] == [(run, "dave") for run in dave] + [(run, "erin") for run in erin]


def test_the_next_crowning_registers_the_one_a_crash_left_out_first(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tournament run` heals nothing at its start: the registration after the next finish does, oldest first."""
    for name in ("alice", "bob", "carol"):
        register_repo(settings, name)
    add_text_tasks(settings, tmp_path, *(f"t{i}" for i in range(1, 21)))
    first = _crowned(settings, 5, "alice", crash=True, monkeypatch=monkeypatch)
    register_repo(settings, "dave")
    second = _crowned(settings, 7, "dave", crash=False, monkeypatch=monkeypatch)
    alice, dave = _runs_of(settings, "alice", first), _runs_of(settings, "dave", second)
    assert alice and dave and [(m[2], m[4]) for m in _models(settings)] == [(run, "alice") for run in alice] + [(run, "dave") for run in dave]


def test_a_crowning_whose_registration_keeps_failing_does_not_hold_up_the_next(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alice's models fail to register (her files, say) after her crowning and again as dave's tournament
    ends: dave's are registered all the same, the failure is raised, and alice's join once they can."""
    for name in ("alice", "bob", "carol"):
        register_repo(settings, name)
    add_text_tasks(settings, tmp_path, *(f"t{i}" for i in range(1, 21)))
    first = _crowned(settings, 5, "alice", crash=True, monkeypatch=monkeypatch)
    register_repo(settings, "dave")
    real = champions_module.register_model

    def alice_fails(settings: Settings, session, **fields):  # noqa: ANN001, ANN003, ANN202
        if fields["competitor_id"] == get_competitor(session, "alice").id:
            raise OSError(errno.EIO, "Input/output error")
        return real(settings, session, **fields)

    with monkeypatch.context() as patch:
        patch.setattr(champions_module, "register_model", alice_fails)
        with pytest.raises(OSError, match="Input/output error"):
            _play(settings, seed=7)
    with open_store(settings) as store, store.session() as session:
        second = session.query(ChampionHistory).order_by(ChampionHistory.id.desc()).first().tournament_id
    dave = _runs_of(settings, "dave", second)
    assert dave and [(m[2], m[4]) for m in _models(settings)] == [(run, "dave") for run in dave]
    with open_store(settings) as store:
        healed = register_due_champion_models(store, settings)
    assert [model.run_id for model in healed] == _runs_of(settings, "alice", first)
