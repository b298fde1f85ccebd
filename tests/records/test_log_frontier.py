"""Appending to the transparency log (records/log.py) reads no earlier leaf: the root comes from the
frontier kept in log_state. A log without one (as after migration 0011), or whose stored one does not
give the last signed root (a process on older code appended), derives it once from its entries; entries
that do not give that root either are refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, select, update

from trainarena.records.log import append, leaf_hashes
from trainarena.records.merkle import frontier_of, root_hash
from trainarena.records.signing import OperatorKey, init_key
from trainarena.records.statements import Kind, make_statement, subject
from trainarena.store import Store, open_store_url
from trainarena.store.log_tables import LogEntry, LogState, TreeHead


def _append(store: Store, key: OperatorKey, number: int) -> None:
    statement = make_statement(Kind.ROUND, [subject(f"entry/{number}", "0" * 64)], {"number": number})
    with store.transaction() as session:
        append(session, key, f"entry:{number}", Kind.ROUND, statement)


@contextmanager
def _log(tmp_path: Path, entries: int) -> Iterator[tuple[Store, OperatorKey]]:
    """A store whose log holds ``entries`` entries, and the key that signed them."""
    key = init_key(tmp_path / "key.pem")
    with open_store_url(f"sqlite:///{tmp_path / 'log.db'}") as store:
        for number in range(entries):
            _append(store, key, number)
        yield store, key


def _heads_are_the_roots_of_the_leaves(store: Store) -> None:
    with store.session() as session:
        leaves = leaf_hashes(session)
        heads = session.scalars(select(TreeHead).order_by(TreeHead.size)).all()
        assert [head.size for head in heads] == list(range(1, len(leaves) + 1))
        assert [head.root_hash for head in heads] == [root_hash(leaves[: head.size]).hex() for head in heads]
        assert session.get_one(LogState, 1).frontier == [node.hex() for node in frontier_of(leaves)]


def test_an_append_reads_no_earlier_leaf(tmp_path: Path) -> None:
    with _log(tmp_path, 12) as (store, key):
        statements: list[str] = []
        event.listen(store.engine, "before_cursor_execute",
                     lambda _conn, _cursor, sql, *_args: statements.append(sql))
        _append(store, key, 12)
        assert statements  # the listener saw the append
        assert not [sql for sql in statements if "leaf_hash" in sql and sql.lstrip().upper().startswith("SELECT")]
        _heads_are_the_roots_of_the_leaves(store)


def test_a_log_without_a_frontier_derives_it_once_and_keeps_its_roots(tmp_path: Path) -> None:
    with _log(tmp_path, 5) as (store, key):
        with store.transaction() as session:  # as migration 0011 leaves a log that grew before it
            session.execute(update(LogState).values(frontier=None))
        for number in range(5, 9):
            _append(store, key, number)
        _heads_are_the_roots_of_the_leaves(store)


def test_a_frontier_behind_the_signed_root_is_derived_again_and_changed_entries_are_refused(tmp_path: Path) -> None:
    with _log(tmp_path, 3) as (store, key):
        with store.transaction() as session:  # as an append by code before migration 0011 leaves it
            frontier = session.get_one(LogState, 1).frontier
            session.execute(update(LogState).values(frontier=[frontier[0], "00" * 32]))
        _append(store, key, 3)
        _heads_are_the_roots_of_the_leaves(store)
        with store.transaction() as session:
            session.execute(update(LogState).values(frontier=["00" * 32]))
            session.execute(update(LogEntry).where(LogEntry.index == 1).values(leaf_hash="11" * 32))
        with pytest.raises(RuntimeError, match="do not give the root of its signed head of 4 entries: they were changed"):
            _append(store, key, 4)
