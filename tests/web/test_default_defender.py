"""A defender a tournament was given without a reign (the demo's default champion) holds no title:
the tournament page, its leaderboard in the API and `tournament show` say "default defender, never
crowned", where they said it "kept the title" while GET /v1/champions, the home page and the next
tournament treated it as never crowned (QA 13). A reigning champion still keeps the title."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner
from web_store import CHALLENGER, DashboardStore, _drive, text_of

from trainarena.cli import app
from trainarena.settings import Settings
from trainarena.store import create_tournament, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole


def _defended(name: str, champion: str | None) -> int:
    """A tournament whose two entrants both fail, so its defender ends as its champion."""
    with open_store(Settings()) as store:
        with store.transaction() as session:
            tournament_id = create_tournament(session, name=name, kind="text", seed=8, entrants=["crasher", "hostile"],
                                              champion=champion).id  # fmt: skip
        assert _drive(store, tournament_id) is not None
    return tournament_id


def test_a_default_defender_is_never_said_to_keep_a_title(client: TestClient, dashboard_store: DashboardStore) -> None:
    default = _defended("week-8", "slowpoke")  # slowpoke was never crowned
    reigning = _defended("week-9", None)  # the reigning champion defends
    words = text_of(client.get(f"/tournaments/{default}").text)
    assert "Champion: slowpoke (the default defender, never crowned: nobody holds the title)" in words
    assert "Defending champion: slowpoke (a default defender, never crowned)" in words
    assert "retains the title" not in words and "kept the title" not in words
    assert ("nobody produced a valid score in the last round; slowpoke, the default defender (never crowned), stays this "
            "tournament's champion: nobody is crowned") in words  # fmt: skip
    held = text_of(client.get(f"/tournaments/{reigning}").text)
    assert f"Champion: {CHALLENGER} (kept the title)" in held and f"{CHALLENGER} retains the title" in held

    with open_store(Settings()) as store, store.transaction() as session:
        key = {"Authorization": f"Bearer {create_key(session, 'reader', ApiRole.COMPETITOR).secret}"}
    board = client.get(f"/v1/tournaments/{default}/leaderboard", headers=key).json()
    assert board["champion"] == "slowpoke" and not board["crowned"] and board["defender_reigned"] is False
    assert "retains the title" not in board["reason"]
    assert client.get(f"/v1/tournaments/{reigning}/leaderboard", headers=key).json()["defender_reigned"] is True
    assert client.get("/v1/champions", headers=key).json()["reigning"]["text"]["champion"] == CHALLENGER

    shown = " ".join(CliRunner().invoke(app, ["tournament", "show", str(default)]).output.split())
    assert "Champion: slowpoke (the default defender, never crowned: nobody holds the title)" in shown
    assert "retained the title" not in shown
