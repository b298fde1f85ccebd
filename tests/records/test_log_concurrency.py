"""The transparency log under concurrent appenders (tournament drivers, job workers): every append gets
the next index, no gap and no duplicate, and every signed tree head is the root of the entries before
it, consistent with the next head -- on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from trainarena.records.log import TREE_HEAD_TYPE, append, entry_leaf_hash
from trainarena.records.merkle import consistency_proof, root_hash, verify_consistency
from trainarena.records.signing import init_key, open_envelope
from trainarena.records.statements import Kind, make_statement, subject
from trainarena.store import open_store_url
from trainarena.store.log_tables import LogEntry, TreeHead

WRITERS = 4
APPENDS = 8


def _statement(writer: int, number: int) -> dict:
    return make_statement(Kind.ROUND, [subject(f"writer-{writer}/{number}", "0" * 64)], {"writer": writer, "number": number})


def _append_concurrently(url: str, key_path: Path) -> None:
    key = init_key(key_path)
    stores = [open_store_url(url) for _ in range(WRITERS)]
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(number: int) -> None:
        try:
            start.wait()
            for i in range(APPENDS):
                with stores[number].transaction() as session:
                    append(session, key, f"writer:{number}:{i}", Kind.ROUND, _statement(number, i))
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []

    with open_store_url(url) as store, store.session() as session:
        entries = session.scalars(select(LogEntry).order_by(LogEntry.index)).all()
        heads = session.scalars(select(TreeHead).order_by(TreeHead.size)).all()
        assert [e.index for e in entries] == list(range(WRITERS * APPENDS))
        assert len({e.key for e in entries}) == WRITERS * APPENDS
        leaves = [entry_leaf_hash(e.envelope) for e in entries]
        assert [bytes.fromhex(e.leaf_hash) for e in entries] == leaves
        assert [h.size for h in heads] == list(range(1, WRITERS * APPENDS + 1))
        for head in heads:
            payload = open_envelope(head.envelope, key.public, TREE_HEAD_TYPE)
            assert payload["tree_size"] == head.size
            assert payload["root_hash"] == head.root_hash == root_hash(leaves[: head.size]).hex()
        for old, new in zip(heads, heads[1:], strict=False):
            proof = consistency_proof(leaves[: new.size], old.size)
            verify_consistency(old.size, new.size, bytes.fromhex(old.root_hash), bytes.fromhex(new.root_hash), proof)


def test_concurrent_appends_on_sqlite_keep_one_gapless_order(tmp_path: Path) -> None:
    _append_concurrently(f"sqlite:///{tmp_path / 'log.db'}", tmp_path / "key.pem")


def test_concurrent_appends_on_postgresql_keep_one_gapless_order(postgres_url: str, tmp_path: Path) -> None:
    _append_concurrently(postgres_url, tmp_path / "key.pem")


def test_appending_the_same_key_twice_appends_once(tmp_path: Path) -> None:
    key = init_key(tmp_path / "key.pem")
    with open_store_url(f"sqlite:///{tmp_path / 'log.db'}") as store:
        with store.transaction() as session:
            first = append(session, key, "same", Kind.ROUND, _statement(0, 0))
        with store.transaction() as session:
            again = append(session, key, "same", Kind.ROUND, _statement(0, 1))
        with store.session() as session:
            assert (first, again) == (0, 0)
            assert session.scalars(select(LogEntry.key)).all() == ["same"]
            assert session.scalars(select(TreeHead.size)).all() == [1]


@pytest.mark.parametrize("removed", [0, 1])
def test_an_append_after_entries_were_removed_from_the_store_refuses(tmp_path: Path, removed: int) -> None:
    key = init_key(tmp_path / "key.pem")
    with open_store_url(f"sqlite:///{tmp_path / 'log.db'}") as store:
        for i in range(2):
            with store.transaction() as session:
                append(session, key, f"entry:{i}", Kind.ROUND, _statement(0, i))
        with store.transaction() as session:
            session.delete(session.get_one(LogEntry, removed))
        with pytest.raises(RuntimeError, match="entries were removed"), store.transaction() as session:
            append(session, key, "entry:2", Kind.ROUND, _statement(0, 2))
