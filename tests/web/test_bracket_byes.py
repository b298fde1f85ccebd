"""A round's byes are part of the bracket wherever it is shown: the dashboard drew them, and now
`tournament show` (text and --json) and GET /v1/tournaments/{id} list them too, and a competitor
that advanced on a bye has that as how far it got."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner
from web_store import DashboardStore

from trainarena.cli import app
from trainarena.reporting.leaderboard import Byes, RunLine, reached
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.api_keys import create_key


def test_tournament_show_lists_each_rounds_byes(dashboard_store: DashboardStore) -> None:
    tournament = str(dashboard_store.boss_id)  # three entrants: one bye in round 1
    shown = json.loads(CliRunner().invoke(app, ["tournament", "show", tournament, "--json"]).output)
    [byes] = shown["byes"]
    assert byes["round_index"] == 0 and byes["stage"] == "knockout" and len(byes["competitors"]) == 1
    [lucky] = byes["competitors"]
    standing = next(row for row in shown["leaderboard"] if row["competitor"] == lucky)
    assert standing["reached"] == "knockout r2"  # it played round 2 after its bye
    text = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["tournament", "show", tournament]).output
    round_one = text.split("round 1: knockout")[1].split("round 2:")[0]
    assert f"bye: {lucky} advances without playing" in round_one


def test_a_competitor_that_only_advanced_on_byes_reached_its_last_bye() -> None:
    line = RunLine(1, 0, "group", "g1", "task-0", "a", "succeeded", 0.5, None, 1.0, "lower")
    byes = [Byes(1, "knockout", ["b"]), Byes(2, "knockout", ["b", "c"])]
    assert reached("b", [], byes) == "knockout r3 (bye)"
    assert reached("a", [line], byes) == "group r1"
    assert reached("z", [], byes) == "-"


def test_the_api_lists_the_byes_as_the_cli_does(dashboard_store: DashboardStore, client: TestClient) -> None:
    with open_store(Settings()) as store, store.transaction() as session:
        key = create_key(session, "reader", "competitor").secret
    answer = client.get(f"/v1/tournaments/{dashboard_store.boss_id}", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    shown = json.loads(CliRunner().invoke(app, ["tournament", "show", str(dashboard_store.boss_id), "--json"]).output)
    assert answer.json()["byes"] == shown["byes"] and len(shown["byes"]) == 1
