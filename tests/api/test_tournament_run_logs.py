"""Who reads a tournament run's logs through the API (settings api.tournament_run_logs): a script may
print its task's training rows, so its stdout, stderr and stderr tails are withheld from competitor keys
as the setting says, while operators read them always, a competitor key those of the competitors it
registered always, and the platform's failure summary stays."""

from __future__ import annotations

import pytest
from api_client import Api
from cli_store import CRASH_TAIL
from fastapi.testclient import TestClient
from sqlalchemy import select

from trainarena.api import create_app
from trainarena.settings import Settings
from trainarena.store import Tournament, get_competitor
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole
from trainarena.store.service_tables import ApiKey

# (setting, the tournament's status) -> whether a competitor's key reads the logs
READS = {
    ("public", "running"): True, ("public", "finished"): True,
    ("after_finish", "running"): False, ("after_finish", "finished"): True,
    ("operators", "running"): False, ("operators", "finished"): False,
}  # fmt: skip


def with_run_logs(settings: Settings, rule: str) -> Settings:
    return settings.model_copy(update={"api": settings.api.model_copy(update={"tournament_run_logs": rule})})


def set_tournament_status(api: Api, status: str) -> None:
    assert api.finished is not None
    with api.store.transaction() as session:
        session.get_one(Tournament, api.finished.tournament_id).status = status


def crashed_run(client: TestClient, api: Api) -> int:
    return client.get("/v1/runs", params={"competitor": "crasher"}, headers=api.auth("operator")).json()["data"][0]["run_id"]


def test_the_default_shows_logs_once_the_tournament_ended() -> None:
    assert Settings().api.tournament_run_logs == "after_finish"


@pytest.mark.parametrize(("rule", "status"), list(READS))
def test_a_competitor_key_reads_a_tournament_runs_logs_as_the_setting_says(api: Api, rule: str, status: str) -> None:
    set_tournament_status(api, status)
    with TestClient(create_app(with_run_logs(api.settings, rule), store=api.store)) as client:
        run_id = crashed_run(client, api)
        competitor, operator = api.auth("competitor"), api.auth("operator")
        logs = client.get(f"/v1/runs/{run_id}/logs", headers=competitor)
        stdout = client.get(f"/v1/runs/{run_id}/logs", params={"stream": "stdout", "full": "true"}, headers=competitor)
        detail = client.get(f"/v1/runs/{run_id}", headers=competitor).json()
        # An operator reads them whatever the setting says.
        assert client.get(f"/v1/runs/{run_id}/logs", headers=operator).text.endswith(CRASH_TAIL + "\n")
        operators = client.get(f"/v1/runs/{run_id}", headers=operator).json()
        assert operators["logs_withheld"] is None and operators["stderr_tail"].endswith(CRASH_TAIL.splitlines()[-1])
    # The platform's summary of the failure is shown either way.
    assert detail["status"] == "failed" and detail["summary"] == "exited with code 1."
    if READS[rule, status]:
        assert logs.status_code == 200 and logs.text.endswith(CRASH_TAIL + "\n") and stdout.text == "starting\n"
        assert detail["logs_withheld"] is None and detail["stderr_tail"].endswith(CRASH_TAIL.splitlines()[-1])
        assert "ZeroDivisionError" in detail["reason"]
        return
    for refused in (logs, stdout):
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert f"api.tournament_run_logs={rule}" in refused.json()["error"]["message"]
    assert f"api.tournament_run_logs={rule}" in detail["logs_withheld"]
    assert ("until the tournament ends" in detail["logs_withheld"]) is (rule == "after_finish")
    # Nothing the script wrote: no tail, and the reasons are the platform's summary without the stderr recorded with it.
    assert detail["stderr_tail"] is None
    assert detail["reason"] == detail["failure_reason"] == "exited with code 1."
    assert all("ZeroDivisionError" not in attempt["reason"] for attempt in detail["attempt_history"])
    assert "Traceback" not in str(detail)


@pytest.mark.parametrize("rule", ["after_finish", "operators"])
def test_a_competitor_key_reads_its_own_competitors_runs_logs_while_the_tournament_runs_but_under_operators(api: Api, rule: str) -> None:
    set_tournament_status(api, "running")
    with api.store.transaction() as session:
        rival = {"Authorization": f"Bearer {create_key(session, 'rival-key', ApiRole.COMPETITOR).secret}"}
        owner = session.scalar(select(ApiKey.id).where(ApiKey.name == "competitor-key"))
        get_competitor(session, "crasher").owner_key_id = owner
    with TestClient(create_app(with_run_logs(api.settings, rule), store=api.store)) as client:
        run_id = crashed_run(client, api)
        own_logs = client.get(f"/v1/runs/{run_id}/logs", headers=api.auth("competitor"))
        own = client.get(f"/v1/runs/{run_id}", headers=api.auth("competitor")).json()
        rivals_logs = client.get(f"/v1/runs/{run_id}/logs", headers=rival)
        rivals = client.get(f"/v1/runs/{run_id}", headers=rival).json()
    if rule == "operators":  # private data: what its own script printed of it stays on the server too
        assert own_logs.status_code == 403 and own["logs_withheld"] is not None and own["stderr_tail"] is None
    else:
        assert own_logs.status_code == 200 and own_logs.text.endswith(CRASH_TAIL + "\n")
        assert own["logs_withheld"] is None and own["stderr_tail"].endswith(CRASH_TAIL.splitlines()[-1])
    # Another competitor key is not the crasher's: the setting still withholds them from it.
    assert rivals_logs.status_code == 403 and f"api.tournament_run_logs={rule}" in rivals_logs.json()["error"]["message"]
    assert f"api.tournament_run_logs={rule}" in rivals["logs_withheld"] and rivals["stderr_tail"] is None
