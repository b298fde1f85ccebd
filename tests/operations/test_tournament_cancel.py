"""`trainarena tournament cancel` (QA cli 6): a tournament created by mistake held its drawn tasks and
its entrants for good, and nothing could end it. Cancelled, it is never driven again; one not started
releases what it holds, a started one keeps its records whole and says it was cancelled."""

from __future__ import annotations

import json

import pytest
from operator_data import FakeExecutor, OperatorData, add_tasks, register_example
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.operations.cancelling import CancelRefused, cancel_tournament
from trainarena.operations.drivers import BackgroundDrivers, DriveRefused
from trainarena.operations.schedule import kind_facts
from trainarena.operations.tournaments import create_pool_tournament, drive_pool_tournament, run_pool_tournament
from trainarena.records.bundle import _claims
from trainarena.store import (
    StoreError,
    TournamentStatus,
    get_tournament,
    open_store,
    remove_competitor,
    remove_stored_task,
    tournament_runs,
)


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _create(operator_data: OperatorData, *tasks: str) -> int:
    for name in ("baseline", "torchloop"):
        register_example(operator_data.settings, name)
    add_tasks(operator_data, *tasks)
    with open_store(operator_data.settings) as store, store.transaction() as session:
        return create_pool_tournament(session, operator_data.settings, kind="text", pool="weekly", seed=2, name="typo").id


def test_a_tournament_not_started_is_cancelled_and_releases_its_tasks_and_entrants(operator_data: OperatorData) -> None:
    tournament_id = _create(operator_data, "q1", "q2")
    cancelled = _invoke("tournament", "cancel", str(tournament_id), "--reason", "made by mistake")
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.output == f"cancelled typo (id {tournament_id}): its drawn tasks and entrants are released\n"
    shown = _invoke("tournament", "show", str(tournament_id))
    assert "typo (id 1, text, cancelled)" in shown.output and "outcome     cancelled: made by mistake" in shown.output
    listed = json.loads(_invoke("tournament", "list", "--json").output)
    assert [(t["status"], t["reason"]) for t in listed] == [("cancelled", "cancelled: made by mistake")]

    settings = operator_data.settings
    with open_store(settings) as store:
        # The reason said once: it read "was cancelled (cancelled: made by mistake)".
        with pytest.raises(StoreError, match=r"^tournament 'typo' was cancelled: made by mistake; nothing more"):
            run_pool_tournament(store, settings, tournament_id, executor=FakeExecutor())
        with pytest.raises(DriveRefused, match="is cancelled; nothing is left to drive"):
            BackgroundDrivers(settings, FakeExecutor()).begin(store, tournament_id)
        with pytest.raises(CancelRefused, match="^tournament 'typo' is cancelled"):
            cancel_tournament(store, settings, tournament_id)
        with store.transaction() as session:
            for task in ("q1", "q2"):
                remove_stored_task(session, task)  # refused before: "drawn by tournament(s) typo"
            remove_competitor(session, name="baseline")
            assert get_tournament(session, tournament_id).status == TournamentStatus.CANCELLED


def test_a_started_tournament_keeps_its_records_and_its_driver_stops(operator_data: OperatorData) -> None:
    tournament_id = _create(operator_data, "q1", "q2")
    settings = operator_data.settings
    with open_store(settings) as store:
        drive_pool_tournament(store, settings, tournament_id, executor=FakeExecutor(), max_steps=2)  # a round, a run
        cancelled = cancel_tournament(store, settings, tournament_id, "  wrong\npool ")
        assert cancelled.to_json() == {"id": tournament_id, "name": "typo", "status": "cancelled", "released": False, "withdrawn": 0,
                                       "already_cancelled_at": None, "reason": "cancelled: wrong pool (after it started: its records stay)",
                                       "notes_removed": 0, "early_runs_removed": 0}
        with pytest.raises(StoreError, match="was cancelled"):
            drive_pool_tournament(store, settings, tournament_id, executor=FakeExecutor())
        with store.transaction() as session:
            assert len(tournament_runs(session, tournament_id)) == 2  # nothing more was played
            with pytest.raises(StoreError, match="was drawn by tournament"):
                remove_stored_task(session, "q1")
            with pytest.raises(StoreError, match="in the records of tournament"):
                remove_competitor(session, name="baseline")
            claims = _claims(session, tournament_id)
            rules = settings.schedule.model_copy(update={"text_pool": "weekly"})
            [facts] = [f for f in kind_facts(session, rules, {}) if f.kind == "text"]
            assert facts.unfinished is None  # serve creates the next one, and drives this one no more
    assert claims["cancelled"]["reason"] == cancelled.reason and claims["cancelled"]["at"]


def test_cancel_over_the_api(operator_data: OperatorData) -> None:
    from fastapi.testclient import TestClient

    from trainarena.api import create_app
    from trainarena.store.api_keys import create_key
    from trainarena.store.models import ApiRole

    tournament_id = _create(operator_data, "q1", "q2")
    settings = operator_data.settings
    with open_store(settings) as store:
        with store.transaction() as session:
            secret = create_key(session, "op", ApiRole.OPERATOR).secret
        with TestClient(create_app(settings, store=store)) as client:
            headers = {"Authorization": f"Bearer {secret}"}
            done = client.post(f"/v1/tournaments/{tournament_id}/cancel", json={"reason": "oops"}, headers=headers)
            assert done.status_code == 200, done.text
            assert done.json() == {"id": tournament_id, "name": "typo", "status": "cancelled", "reason": "cancelled: oops",
                                   "released": True, "withdrawn": 0, "already_cancelled_at": None, "notes_removed": 0,
                                   "early_runs_removed": 0}
            again = client.post(f"/v1/tournaments/{tournament_id}/cancel", json={}, headers=headers)
            assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
            assert client.post("/v1/tournaments/99/cancel", json={}, headers=headers).status_code == 404

