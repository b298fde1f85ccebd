"""``database_now``: the PostgreSQL server's clock, whatever the calling process's says; on SQLite,
which has no server, the calling process's own clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trainarena.store import base, open_store_url
from trainarena.store.base import database_now


def test_the_store_clock_is_the_servers_on_postgresql_and_the_processs_on_sqlite(
    url_on_each_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ahead = datetime.now(UTC) + timedelta(hours=1)
    monkeypatch.setattr(base, "utcnow", lambda: ahead)  # this process's clock, an hour ahead
    with open_store_url(url_on_each_backend) as store, store.session() as session:
        now = database_now(session)
    assert now.tzinfo is not None
    if url_on_each_backend.startswith("sqlite"):
        assert now == ahead
    else:
        assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)
