"""The dashboard on a tournament whose driver was killed outright: the page of its run still marked
running, the competitor's list of runs, the tournament page and the home page's "running now" card
say the run is not training and what resumes it, and the lists of tournaments say "no driver"; under
a live driver they name none of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from driverless_store import DriverlessStore, build_driverless_store, hand_lease_to
from fastapi.testclient import TestClient
from web_store import sign_in, text_of

from trainarena.api import create_app
from trainarena.contract import RunStatus
from trainarena.settings import Settings
from trainarena.store import Run, Store, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole

NOTE = re.compile(r"no driver since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(its driver stopped or was killed\); "
                  r"`trainarena tournament run (\d+)` resumes it")  # fmt: skip


@pytest.fixture
def driverless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Store, DriverlessStore]]:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    left = build_driverless_store(tmp_path / "data")
    settings = Settings()
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as client:
        yield client, store, left


def test_pages_say_a_running_run_nobody_drives_is_not_training(driverless: tuple[TestClient, Store, DriverlessStore]) -> None:
    client, store, left = driverless
    run_page = text_of(client.get(f"/runs/{left.run_id}").text)
    note = NOTE.search(run_page)
    assert "running Not training: no driver since" in run_page and note is not None and int(note[1]) == left.tournament_id
    assert "Not training" not in text_of(client.get(f"/runs/{left.done_id}").text)
    competitor = text_of(client.get("/competitors/slowpoke").text)  # the competitor of the run left running
    assert "running – not training: no driver since" in competitor and NOTE.search(competitor)
    tournament = text_of(client.get(f"/tournaments/{left.tournament_id}").text)
    assert "Its runs marked running are not training: no driver since" in tournament and NOTE.search(tournament)

    hand_lease_to(store, left.tournament_id, "elsewhere", 4242)  # a live driver on another host
    run_page = text_of(client.get(f"/runs/{left.run_id}").text)
    assert "Driver driven by a live driver" in run_page and "not training" not in run_page.lower()
    assert "elsewhere pid" not in run_page and "4242" not in run_page  # its host and pid are an operator's to read
    assert "not training" not in text_of(client.get(f"/tournaments/{left.tournament_id}/live").text)
    with store.transaction() as session:
        operator = create_key(session, "ops", ApiRole.OPERATOR).secret
    sign_in(client, operator)
    assert "Driver driven by elsewhere pid 4242" in text_of(client.get(f"/runs/{left.run_id}").text)


def test_the_home_page_says_a_running_tournament_nobody_drives_is_not_training(
        driverless: tuple[TestClient, Store, DriverlessStore]) -> None:
    client, store, left = driverless
    home = client.get("/").text
    running = text_of(home[home.index('id="running-now"'):home.index('id="next"')])
    assert "week-2 (text)" in running and "Its runs marked running are not training: no driver since" in running
    note = NOTE.search(running)
    assert note is not None and int(note[1]) == left.tournament_id
    assert NOTE.search(text_of(client.get("/live/running").text))  # the fragment the home page polls
    recent = text_of(home[home.index('id="recent"'):])
    assert "week-2 text running no driver" in recent and "week-1 text finished" in recent
    assert "running no driver" in text_of(client.get("/tournaments").text)

    hand_lease_to(store, left.tournament_id, "elsewhere", 4242)  # a live driver on another host
    for page in ("/", "/live/running", "/tournaments"):
        shown = text_of(client.get(page).text)
        assert "no driver" not in shown and "not training" not in shown, page
    assert "week-2 (text)" in text_of(client.get("/live/running").text)


def test_a_tournament_nobody_drives_whose_runs_are_only_pending_says_they_wait(
        driverless: tuple[TestClient, Store, DriverlessStore]) -> None:
    """It said "Its runs marked running are not training" of a tournament none of whose runs was marked running."""
    client, store, left = driverless
    with store.transaction() as session:
        session.get_one(Run, left.run_id).status = RunStatus.PENDING
    for page in (f"/tournaments/{left.tournament_id}", "/"):
        shown = text_of(client.get(page).text)
        assert "not training" not in shown, page
        assert "Nothing plays its pending runs: no driver since" in shown and NOTE.search(shown), page
