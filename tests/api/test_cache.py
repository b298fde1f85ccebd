"""The API's cache of answers computed from records that no longer change (api/cache.py)."""

from __future__ import annotations

from api_client import Api

from trainarena.api.cache import VersionedCache, champions_version, tournament_version
from trainarena.store.models import Tournament, TournamentStatus


def test_a_value_is_kept_until_its_version_changes_and_the_oldest_goes_first() -> None:
    cache, calls = VersionedCache(entries=2), []

    def compute(value: str) -> str:
        calls.append(value)
        return value

    assert cache.get("a", 1, lambda: compute("a1")) == "a1"
    assert cache.get("a", 1, lambda: compute("never")) == "a1"
    assert cache.get("a", 2, lambda: compute("a2")) == "a2"  # a new version: computed again
    cache.get("b", 1, lambda: compute("b1"))
    cache.get("c", 1, lambda: compute("c1"))  # a third key: "a", the least recently used, goes
    assert cache.get("a", 2, lambda: compute("a2 again")) == "a2 again"
    assert calls == ["a1", "a2", "b1", "c1", "a2 again"]


def test_only_a_finished_tournament_has_a_version(api: Api) -> None:
    tournament_id = api.finished.tournament_id
    with api.store.session() as session:
        finished = tournament_version(session, tournament_id)
        assert finished is not None and tournament_version(session, 999) is None
        champions = champions_version(session)
    with api.store.transaction() as session:
        session.get_one(Tournament, tournament_id).status = TournamentStatus.RUNNING
    with api.store.session() as session:
        assert tournament_version(session, tournament_id) is None  # running: never served from the cache
        assert champions_version(session) != champions  # fewer finished tournaments: another version


def test_the_detail_of_a_finished_tournament_is_computed_once(api: Api, monkeypatch) -> None:  # noqa: ANN001
    from trainarena.api.routes import tournaments

    calls = []
    real = tournaments.tournament_detail
    monkeypatch.setattr(tournaments, "tournament_detail", lambda *args: calls.append(args) or real(*args))
    with api.client() as client:
        path = f"/v1/tournaments/{api.finished.tournament_id}"
        first, second = (client.get(path, headers=api.auth("competitor")) for _ in range(2))
        board = client.get(f"{path}/leaderboard", headers=api.auth("competitor"))
    assert first.status_code == 200 and first.json() == second.json()
    detail = first.json()  # the detail holds the leaderboard's fields, from the same cached computation
    assert {key: detail[key] for key in board.json()} == board.json()
    assert len(calls) == 1
