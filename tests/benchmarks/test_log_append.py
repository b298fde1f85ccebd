"""The log append benchmark (benchmarks/log_append): the log it fills with stand-ins is one that
append accepts, and every head signed while it times both rules is the RFC 6962 root of its leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from benchmarks.log_append import main, time_store
from trainarena.records.log import leaf_hashes
from trainarena.records.merkle import root_hash
from trainarena.records.signing import init_key
from trainarena.store import open_store_url
from trainarena.store.log_tables import TreeHead


def test_the_timed_appends_sign_the_roots_of_the_leaves(tmp_path: Path) -> None:
    seconds = time_store(37, 3, tmp_path, init_key(tmp_path / "key.pem"))
    assert set(seconds) == {"old", "new"} and all(value > 0 for value in seconds.values())
    with open_store_url(f"sqlite:///{tmp_path / 'log-37.db'}") as store, store.session() as session:
        leaves = leaf_hashes(session)
        heads = session.scalars(select(TreeHead).where(TreeHead.size > 37).order_by(TreeHead.size)).all()
        assert len(leaves) == 43 and [head.size for head in heads] == list(range(38, 44))
        assert [head.root_hash for head in heads] == [root_hash(leaves[: head.size]).hex() for head in heads]


def test_json_gives_both_rules_at_each_size(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.argv", ["log_append", "--json", "--sizes", "20", "--rounds", "2", "--appends", "2"])
    main()
    results = json.loads(capsys.readouterr().out)["results"]
    assert [(row["size"], row["measure"]) for row in results] == [(20, "hashing"), (20, "store")]
    assert all(row["old_us"] > 0 and row["new_us"] > 0 and len(row["old_over_new_range"]) == 2 for row in results)
