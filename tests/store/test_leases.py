"""The tournament lease: taken by one driver at a time, taken over once expired, fencing writes."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete, event

from trainarena.settings import LeaseRules
from trainarena.store import Store, TournamentLease, add_competitor, create_tournament, open_store_url
from trainarena.store.leases import DriverIdentity, LeaseLost, fence, lease_holder, release, renew, try_acquire

SHORT = LeaseRules(lease_seconds=0.4, heartbeat_seconds=0.1, wait_poll_seconds=0.05)
ALICE = DriverIdentity("alice-owner", "host-a", 101)
BOB = DriverIdentity("bob-owner", "host-b", 202)


@pytest.fixture
def tournament_id(store: Store) -> int:
    with store.transaction() as session:
        add_competitor(session, name="a", repo_url="u", commit="0" * 40, tree_hash="t", source_digest="d", entrypoint="train.py")
        return create_tournament(session, name="t", kind="text", seed=1, entrants=["a"]).id


def _acquire(store: Store, tid: int, me: DriverIdentity, rules: LeaseRules = SHORT):
    with store.transaction() as session:
        return try_acquire(session, tid, me, rules)


def test_one_driver_holds_the_lease_and_the_other_learns_who(store: Store, tournament_id: int) -> None:
    assert _acquire(store, tournament_id, ALICE) is None
    assert _acquire(store, tournament_id, ALICE) is None  # already ours: renewed
    holder = _acquire(store, tournament_id, BOB)
    assert holder is not None and (holder.owner_id, holder.host, holder.pid) == ("alice-owner", "host-a", 101)
    assert holder.expires_at > holder.acquired_at
    assert "host-a pid 101 since" in holder.describe()


def test_an_expired_lease_is_taken_over_and_its_old_holder_is_fenced_off(store: Store, tournament_id: int) -> None:
    assert _acquire(store, tournament_id, ALICE) is None
    time.sleep(SHORT.lease_seconds + 0.1)  # Alice stalls past her expiry
    assert _acquire(store, tournament_id, BOB) is None
    with store.transaction() as session:
        assert not renew(session, tournament_id, ALICE, SHORT)
    with pytest.raises(LeaseLost, match="lost its lease .*now held by host-b pid 202"), store.transaction() as session:
        fence(session, tournament_id, ALICE, SHORT)
    with store.transaction() as session:
        release(session, tournament_id, ALICE)  # not hers any more: nothing happens
        assert lease_holder(session, tournament_id).owner_id == "bob-owner"
        fence(session, tournament_id, BOB, SHORT)
        release(session, tournament_id, BOB)
        assert lease_holder(session, tournament_id) is None


def test_a_renewed_lease_is_not_taken_over(store: Store, tournament_id: int) -> None:
    assert _acquire(store, tournament_id, ALICE) is None
    for _ in range(4):
        time.sleep(SHORT.lease_seconds / 2)
        with store.transaction() as session:
            assert renew(session, tournament_id, ALICE, SHORT)
        assert _acquire(store, tournament_id, BOB) is not None


def test_heartbeat_must_leave_room_within_the_lease() -> None:
    with pytest.raises(ValueError, match="heartbeat_seconds .* at most half"):
        LeaseRules(lease_seconds=10, heartbeat_seconds=6)


def test_a_lease_released_between_the_takers_insert_and_update_is_taken(postgres_url: str) -> None:
    """The race of a waiting driver on PostgreSQL: its INSERT sees the holder's row, the holder's release
    commits, its UPDATE finds no row. It must take the free lease, not report it taken without a row."""
    with open_store_url(postgres_url) as store:
        with store.transaction() as session:
            add_competitor(session, name="a", repo_url="u", commit="0" * 40, tree_hash="t", source_digest="d",
                           entrypoint="train.py")
            tid = create_tournament(session, name="t", kind="text", seed=1, entrants=["a"]).id
        assert _acquire(store, tid, ALICE, LeaseRules()) is None
        released = []

        def release_before_the_update(conn, cursor, statement, *args) -> None:
            if statement.lstrip().upper().startswith("UPDATE TOURNAMENT_LEASE") and not released:
                released.append(True)
                with store.transaction() as other:
                    other.execute(delete(TournamentLease).where(TournamentLease.owner_id == ALICE.owner_id))

        event.listen(store.engine, "before_cursor_execute", release_before_the_update)
        try:
            assert _acquire(store, tid, BOB, LeaseRules()) is None
        finally:
            event.remove(store.engine, "before_cursor_execute", release_before_the_update)
        assert released
        with store.transaction() as session:
            assert lease_holder(session, tid).owner_id == "bob-owner"
            fence(session, tid, BOB, LeaseRules())


def test_on_postgresql_a_driver_whose_clock_runs_ahead_does_not_take_a_live_lease(postgres_url: str, monkeypatch) -> None:  # noqa: ANN001
    """Leases are timed by the PostgreSQL server's clock: Bob's host, an hour ahead, would otherwise
    read Alice's fresh lease as long expired and drive her tournament beside her."""
    from datetime import UTC, datetime, timedelta

    from trainarena.store import base, leases

    class HourAhead(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            return datetime.now(tz) + timedelta(hours=1)

    with open_store_url(postgres_url) as store:
        with store.transaction() as session:
            add_competitor(session, name="a", repo_url="u", commit="0" * 40, tree_hash="t", source_digest="d", entrypoint="train.py")
            tid = create_tournament(session, name="t", kind="text", seed=1, entrants=["a"]).id
        rules = LeaseRules(lease_seconds=60, heartbeat_seconds=10)
        assert _acquire(store, tid, ALICE, rules) is None
        monkeypatch.setattr(leases, "datetime", HourAhead)  # Bob's host clock, wherever the code reads it
        monkeypatch.setattr(base, "utcnow", lambda: datetime.now(UTC) + timedelta(hours=1))
        holder = _acquire(store, tid, BOB, rules)
        assert holder is not None and holder.owner_id == ALICE.owner_id
        with store.transaction() as session:
            assert leases.live_holder(session, tid) == holder
            assert renew(session, tid, ALICE, rules)
