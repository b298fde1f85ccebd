"""The dashboard's run page and whole logs follow settings api.tournament_run_logs: a visitor (or a
customer) reads a tournament run's logs only as it allows, a signed-in operator always; the platform's
failure summary stays on the page."""

from __future__ import annotations

import pytest
from cli_store import CRASH_TAIL
from fastapi.testclient import TestClient
from web_store import DashboardStore, sign_in, text_of

from trainarena.api import create_app
from trainarena.reporting.run_list import list_runs
from trainarena.settings import Settings
from trainarena.store import get_tournament_by_name, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole

LAST_LINE = CRASH_TAIL.splitlines()[-1]


def crashed_run_in(status: str) -> int:
    """The crasher's run of week-1, the tournament set to ``status``."""
    with open_store(Settings()) as store, store.transaction() as session:
        tournament = get_tournament_by_name(session, "week-1")
        assert tournament is not None
        tournament.status = status
        return next(run.run_id for run in list_runs(session, tournament="week-1", competitor="crasher"))


@pytest.mark.parametrize(("rule", "status", "shown"), [
    ("public", "running", True), ("after_finish", "running", False), ("after_finish", "finished", True),
    ("operators", "finished", False),
])  # fmt: skip
def test_a_visitor_reads_a_tournament_runs_logs_as_the_setting_says(dashboard_store: DashboardStore, rule: str, status: str,
                                                                     shown: bool) -> None:  # fmt: skip
    run_id = crashed_run_in(status)
    base = Settings()
    settings = base.model_copy(update={"api": base.api.model_copy(update={"tournament_run_logs": rule})})
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as client:
        page, whole = client.get(f"/runs/{run_id}").text, client.get(f"/runs/{run_id}/logs/stderr.log")
        assert "exited with code 1." in text_of(page)  # the platform's summary, whatever the setting
        assert (LAST_LINE in page) is shown and (f'href="/runs/{run_id}/logs/stderr.log"' in page) is shown
        assert ("Not shown: the script's output" in text_of(page)) is not shown
        if shown:
            assert whole.status_code == 200 and whole.text.rstrip().endswith(LAST_LINE)
        else:
            assert whole.status_code == 403 and LAST_LINE not in whole.text and f"api.tournament_run_logs={rule}" in whole.text
        with store.transaction() as session:
            operator = create_key(session, "ops", ApiRole.OPERATOR).secret
        sign_in(client, operator)
        assert LAST_LINE in client.get(f"/runs/{run_id}").text
        assert client.get(f"/runs/{run_id}/logs/stderr.log").text.rstrip().endswith(LAST_LINE)
