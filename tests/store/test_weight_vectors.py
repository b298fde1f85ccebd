"""The weights history in the store: which tournaments a vector combines, its rows, migration 0005."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from trainarena.settings import WeightRules
from trainarena.store import (
    StoreError,
    Tournament,
    TournamentStatus,
    WeightRow,
    add_competitor,
    open_store_url,
    publish_weights,
    upgrade_schema,
    weight_history,
)
from trainarena.store.database import Store, alembic_config, make_engine
from trainarena.store.locks import migration_connection

T0 = datetime(2026, 12, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=365)  # every time these tests publish at has come
HYBRID = WeightRules(hybrid_start_date=T0 - timedelta(weeks=2))  # week 2 at T0: ratio 0.75


def _finished(session, name: str, kind: str, at: datetime, weights: dict, remainder: float) -> Tournament:
    tournament = Tournament(name=name, kind=kind, seed=1, status=TournamentStatus.FINISHED, finished_at=at,
                            weight_remainder=remainder)  # fmt: skip
    session.add(tournament)
    session.flush()
    for competitor, weight in weights.items():
        session.add(WeightRow(tournament_id=tournament.id, competitor=competitor, weight=weight))
    return tournament


def _competitors(session, *names: str) -> list:
    return [add_competitor(session, name=n, repo_url="u", commit=n[0] * 40, tree_hash=n, source_digest=n,
                           entrypoint="train.py") for n in names]  # fmt: skip


def test_publish_uses_the_latest_tournament_of_each_kind_finished_by_then(tmp_path: Path) -> None:
    with open_store_url(f"sqlite:///{tmp_path / 's.db'}") as store, store.transaction() as session:
        a, b = _competitors(session, "alpha", "beta")
        old_text = _finished(session, "text-1", "text", T0 - timedelta(days=14), {a: 0.5, b: 0.4}, 0.1)
        image = _finished(session, "image-1", "image", T0 - timedelta(days=7), {b: 0.5}, 0.5)
        _finished(session, "text-2", "text", T0 + timedelta(days=1), {b: 0.5, a: 0.4}, 0.1)  # not yet at T0

        vector, new = publish_weights(session, rules=HYBRID, at=T0, now=NOW)
        assert new and (vector.text_tournament_id, vector.image_tournament_id) == (old_text.id, image.id)
        assert (vector.ratio, vector.week) == (0.75, 2) and vector.fallback == pytest.approx(0.25)
        # alpha 0.75 * 0.5 * 0.5; beta 0.75 * (0.5 * 0.4 + 0.5 * 0.5)
        assert [(e.competitor.name, e.position) for e in vector.entries] == [("beta", 0), ("alpha", 1)]
        assert [e.weight for e in vector.entries] == pytest.approx([0.3375, 0.1875])
        assert vector.undistributed == pytest.approx(0.75 * (0.5 * 0.1 + 0.5 * 0.5))

        later, new = publish_weights(session, rules=HYBRID, at=T0 + timedelta(days=2), now=NOW)
        assert new and later.text_tournament.name == "text-2" and later.week == 2
        assert [v.id for v in weight_history(session)] == [later.id, vector.id]
        with pytest.raises(StoreError, match="only moves forward"):
            publish_weights(session, rules=HYBRID, at=T0, now=NOW)


def test_a_new_week_alone_publishes_a_new_vector(tmp_path: Path) -> None:
    with open_store_url(f"sqlite:///{tmp_path / 's.db'}") as store, store.transaction() as session:
        [a] = _competitors(session, "alpha")
        _finished(session, "text-1", "text", T0 - timedelta(days=1), {a: 1.0}, 0.0)
        first, _ = publish_weights(session, rules=HYBRID, at=T0, now=NOW)
        same, new = publish_weights(session, rules=HYBRID, at=T0 + timedelta(days=6), now=NOW)
        assert not new and same.id == first.id
        next_week, new = publish_weights(session, rules=HYBRID, at=T0 + timedelta(days=7), now=NOW)
        assert new and next_week.week == 3 and next_week.ratio == 1.0


def test_0005_adds_hotkeys_and_the_history_and_downgrades(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade_schema(engine, "0004")
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO competitor VALUES (1, 'a', 'u', 'c', 't', 'd', 'train.py', NULL, "
                                   "'2026-01-01 00:00:00.000000')")  # fmt: skip
    upgrade_schema(engine)
    store = Store(engine)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT name, hotkey FROM competitor").fetchall() == [("a", None)]
        with store.transaction() as session:
            _finished(session, "t", "text", T0, {}, 1.0)
            publish_weights(session, rules=WeightRules(), at=T0, now=NOW)
        with migration_connection(engine) as connection:
            command.downgrade(alembic_config(connection), "0004")
        tables = set(inspect(engine).get_table_names())
        assert "weight_vector" not in tables and "weight_vector_entry" not in tables
        assert "hotkey" not in {c["name"] for c in inspect(engine).get_columns("competitor")}
        upgrade_schema(engine)
    finally:
        store.close()
