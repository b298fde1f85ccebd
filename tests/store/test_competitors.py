from __future__ import annotations

from datetime import UTC

import pytest

from trainarena.store import (
    Store,
    StoreError,
    add_competitor,
    get_competitor,
    list_competitors,
    require_competitor,
)


def _add(session, name: str, *, tree: str = "t0", digest: str = "d0", kind: str | None = None):
    return add_competitor(
        session,
        name=name,
        repo_url=f"https://example.org/{name}.git",
        commit="a" * 40,
        tree_hash=tree,
        source_digest=digest,
        entrypoint="train.py",
        kind=kind,
    )


def test_added_competitor_reads_back_in_a_new_session(store: Store) -> None:
    with store.transaction() as session:
        _add(session, "alice", kind="text")
    with store.session() as session:
        alice = get_competitor(session, "alice")
        assert alice is not None
        assert (alice.repo_url, alice.commit, alice.entrypoint, alice.kind) == (
            "https://example.org/alice.git", "a" * 40, "train.py", "text",
        )
        assert alice.registered_at.tzinfo is UTC
        assert get_competitor(session, "nobody") is None


def test_duplicate_name_is_refused_with_a_clear_error(store: Store) -> None:
    with store.transaction() as session:
        _add(session, "alice")
    with store.transaction() as session, pytest.raises(StoreError, match="already registered"):
        _add(session, "alice", tree="other")


def test_unknown_kind_and_unknown_name_are_refused(store: Store) -> None:
    with store.session() as session:
        with pytest.raises(StoreError, match="kind"):
            _add(session, "bob", kind="audio")
        with pytest.raises(StoreError, match="no competitor named 'ghost'"):
            require_competitor(session, "ghost")


def test_competitors_are_listed_in_registration_order(store: Store) -> None:
    with store.transaction() as session:
        _add(session, "alice", tree="t1", digest="d1")
        _add(session, "bob", tree="t2", digest="d1")
        _add(session, "carol", tree="t1", digest="d3")
    with store.session() as session:
        assert [c.name for c in list_competitors(session)] == ["alice", "bob", "carol"]
