"""What competitors read through the API, over a store holding a finished tournament: competitors,
runs (list, one in full, logs), tournaments (list, in full, leaderboard), champions, weights and a
task's leaderboard; the same data the CLI prints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from api_client import Api
from cli_store import COMPETITORS, CRASH_TAIL, LONG_NAME, LONG_URL
from fastapi.testclient import TestClient

from trainarena.api import create_app
from trainarena.runs import TIMINGS_FILE
from trainarena.store import publish_weights


def _get(client: TestClient, api: Api, path: str, **params):
    response = client.get(path, headers=api.auth("competitor"), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_competitors_are_listed_in_pages_and_shown(api: Api, client: TestClient) -> None:
    page = _get(client, api, "/v1/competitors")
    assert [c["name"] for c in page["data"]] == list(COMPETITORS) and page["has_more"] is False
    first = _get(client, api, "/v1/competitors", limit=1)
    assert [c["name"] for c in first["data"]] == [LONG_NAME] and first["has_more"] is True
    rest = _get(client, api, "/v1/competitors", limit=2, offset=2)
    assert [c["name"] for c in rest["data"]] == list(COMPETITORS)[2:4] and rest["has_more"] is False
    shown = _get(client, api, f"/v1/competitors/{LONG_NAME}")
    assert shown["repo_url"] == LONG_URL and shown["commit"] == "0" * 40
    missing = client.get("/v1/competitors/nobody", headers=api.auth("competitor"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_runs_are_listed_with_statuses_scores_and_reasons(api: Api, client: TestClient) -> None:
    runs = _get(client, api, "/v1/runs", limit=500)["data"]
    by_competitor = {}
    for run in runs:
        by_competitor.setdefault(run["competitor"], []).append(run)
    assert set(by_competitor) == set(COMPETITORS)
    assert all(r["status"] == "succeeded" and r["score"] is not None for r in by_competitor[LONG_NAME])
    assert all(r["status"] == "failed" and "ZeroDivisionError" in r["reason"] for r in by_competitor["crasher"])
    assert all(r["tournament"] == "week-1" for r in runs)
    assert {r["direction"] for r in runs} == {"lower"}  # its task type's, failed runs' too (they have no score)
    crashed = _get(client, api, "/v1/runs", competitor="crasher", status="failed")["data"]
    assert crashed == by_competitor["crasher"]
    assert _get(client, api, "/v1/runs", status="timed_out")["data"] == by_competitor["slowpoke"]
    assert _get(client, api, "/v1/runs", tournament=str(api.finished.tournament_id), limit=500)["data"] == runs
    for name_or_id in ("week-9", "99"):
        unknown = client.get("/v1/runs", params={"tournament": name_or_id}, headers=api.auth("competitor"))
        assert unknown.status_code == 404, name_or_id
        assert f"no tournament has the name or id '{name_or_id}'; the tournament filter takes a tournament's name or its id" in unknown.json()["error"]["message"]


def test_one_run_in_full_and_its_logs(api: Api, client: TestClient) -> None:
    crashed = _get(client, api, "/v1/runs", competitor="crasher")["data"][0]
    detail = _get(client, api, f"/v1/runs/{crashed['run_id']}")
    assert detail["status"] == "failed" and detail["tournament"] == "week-1" and detail["summary"] == "exited with code 1."
    assert detail["stderr_tail"].endswith(CRASH_TAIL.splitlines()[-1]) and detail["wall_seconds"] == 12.5
    assert [a["counts"] for a in detail["attempt_history"]] == [True]
    # The platform's paths and hosts are an operator's business: a competitor's key reads the same run
    # without them (nor the driver of each attempt).
    assert {"log_path", "artifact_path", "snapshot_path", "stderr_tail_from"}.isdisjoint(detail)
    operators = client.get(f"/v1/runs/{crashed['run_id']}", headers=api.auth("operator")).json()
    assert "driver" not in detail["attempt_history"][0] and operators["attempt_history"][0]["driver"]
    competitors = [{key: value for key, value in attempt.items() if key != "driver"} for attempt in operators["attempt_history"]]
    paths = {key: operators[key] for key in ("log_path", "artifact_path", "snapshot_path", "stderr_tail_from")}
    assert {**operators, "attempt_history": competitors} == {**detail, **paths}
    assert operators["stderr_tail_from"] == str(Path(operators["log_path"]) / "stderr.log")
    recorded = json.loads((Path(operators["log_path"]).parent / TIMINGS_FILE).read_text())
    assert detail["steps"]["store"] == recorded["store"] and "slot" in recorded and "slot" not in detail["steps"]
    # No house run beside a tournament run: a null reference that says why, not a silently absent one.
    assert [(r["kind"], r["run_id"], r["score"], r["missing"]) for r in detail["references"]] == [
        ("house", None, None, "not run on this seed")]

    headers = api.auth("competitor")
    tail = client.get(f"/v1/runs/{crashed['run_id']}/logs", headers=headers)
    assert tail.status_code == 200 and tail.headers["content-type"].startswith("text/plain")
    assert tail.text.endswith(CRASH_TAIL + "\n") and "stderr line 1\n" in tail.text
    short = api.settings.model_copy(update={"api": api.settings.api.model_copy(update={"log_tail_lines": 3})})
    with TestClient(create_app(short, store=api.store)) as small:
        assert small.get(f"/v1/runs/{crashed['run_id']}/logs", headers=headers).text == "\n".join(CRASH_TAIL.splitlines()[-3:]) + "\n"
        whole = small.get(f"/v1/runs/{crashed['run_id']}/logs", params={"full": "true"}, headers=headers).text
    assert whole.startswith("stderr line 1\n") and whole.count("\n") == 40 + len(CRASH_TAIL.splitlines())
    assert client.get(f"/v1/runs/{crashed['run_id']}/logs", params={"stream": "stdout"}, headers=headers).text == "starting\n"
    for path, params in ((f"/v1/runs/{crashed['run_id']}/logs", {"stream": "../../etc/passwd"}), ("/v1/runs/999999/logs", {})):
        refused = client.get(path, params=params, headers=headers)
        assert refused.status_code in (404, 422) and "error" in refused.json()
    assert client.get("/v1/runs/999999", headers=headers).status_code == 404


def test_tournaments_their_bracket_leaderboard_champions_and_weights(api: Api, client: TestClient) -> None:
    finished = api.finished.finished
    listed = _get(client, api, "/v1/tournaments")["data"]
    assert [(t["id"], t["name"], t["status"]) for t in listed] == [(api.finished.tournament_id, "week-1", "finished")]
    detail = _get(client, api, f"/v1/tournaments/{api.finished.tournament_id}")
    assert detail["champion"] == finished.champion == LONG_NAME and detail["crowned"] is True
    assert [s["competitor"] for s in detail["leaderboard"]][0] == LONG_NAME
    assert {run["competitor"] for run in detail["runs"]} == set(COMPETITORS) and detail["pool"] is None
    assert detail["weights"] and abs(sum(detail["weights"].values()) + (detail["undistributed"] or 0) - 1) < 1e-9
    board = _get(client, api, f"/v1/tournaments/{api.finished.tournament_id}/leaderboard")
    assert board["leaderboard"] == detail["leaderboard"] and "runs" not in board
    assert client.get("/v1/tournaments/999", headers=api.auth("competitor")).status_code == 404

    champions = _get(client, api, "/v1/champions")
    assert champions["reigning"]["text"]["champion"] == LONG_NAME and champions["reigning"]["image"] is None
    assert [r["tournament"] for r in champions["history"]] == ["week-1"]
    assert list(_get(client, api, "/v1/champions", kind="image")["reigning"]) == ["image"]

    assert _get(client, api, "/v1/weights") == {"latest": None, "history": []}
    with api.store.transaction() as session:
        publish_weights(session, rules=api.settings.weights, at=datetime.now(UTC))
    weights = _get(client, api, "/v1/weights")
    assert weights["latest"]["tournaments"]["text"]["name"] == "week-1" and len(weights["history"]) == 1
    assert weights["latest"]["weights"][0]["competitor"] == LONG_NAME

    task = next(run["task"] for run in detail["runs"] if run["competitor"] == LONG_NAME)
    task_board = _get(client, api, f"/v1/task-leaderboards/{task}")
    assert task_board["task"] == task and task_board["lines"][0]["entrant"] == LONG_NAME and task_board["lines"][0]["rank"] == 1
    assert client.get("/v1/task-leaderboards/no-such-task", headers=api.auth("competitor")).status_code == 404
