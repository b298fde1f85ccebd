"""A signed tree head never predates the one before it (records/log.py): an operator whose clock steps
back signs the previous head's time again, so its log still passes verify's check that head times only
grow. The clock is injected through append's ``clock`` seam."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from trainarena.records.checks import Bundle
from trainarena.records.log import TREE_HEAD_TYPE, append
from trainarena.records.signing import OperatorKey, init_key, open_envelope, public_key_from_pem
from trainarena.records.statements import Kind, make_statement, subject
from trainarena.records.verify_log import check_log
from trainarena.store import Store, open_store_url
from trainarena.store.log_tables import TreeHead

START = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
# What the clock reads at each append: it steps back an hour after the second, then creeps up again.
READINGS = [START, START + timedelta(seconds=10), START - timedelta(hours=1), START - timedelta(minutes=59),
            START + timedelta(seconds=20), START + timedelta(seconds=5)]  # fmt: skip


def _append(store: Store, key: OperatorKey, numbers: range, clock: list[datetime]) -> None:
    """Append entries ``numbers`` in one transaction, each head timed by the next reading of ``clock``."""
    with store.transaction() as session:
        for number in numbers:
            statement = make_statement(Kind.ROUND, [subject(f"entry/{number}", "0" * 64)], {"number": number})
            append(session, key, f"entry:{number}", Kind.ROUND, statement, clock=lambda: clock.pop(0))


def _heads(store: Store, key: OperatorKey) -> tuple[list[tuple[datetime, datetime]], list[dict[str, object]]]:
    """Each head's stored signed_at and the timestamp its signed payload gives, in size order; and the
    heads as a bundle's tree_heads.jsonl lines."""
    public = public_key_from_pem(key.public_pem())
    with store.session() as session:
        rows = session.scalars(select(TreeHead).order_by(TreeHead.size)).all()
        times = [(row.signed_at, datetime.fromisoformat(open_envelope(row.envelope, public, TREE_HEAD_TYPE)["timestamp"]))
                 for row in rows]  # fmt: skip
        return times, [{"size": row.size, "envelope": row.envelope} for row in rows]


def test_a_clock_stepped_back_never_dates_a_head_before_the_one_before_it(tmp_path: Path) -> None:
    key = init_key(tmp_path / "key.pem")
    clock = list(READINGS)
    with open_store_url(f"sqlite:///{tmp_path / 'log.db'}") as store:
        _append(store, key, range(2), clock)  # the previous head from this session
        for number in range(2, 4):  # ... and read back from the database (stored as naive UTC)
            _append(store, key, range(number, number + 1), clock)
        _append(store, key, range(4, 6), clock)
        heads, lines = _heads(store, key)
    assert not clock, "every append read the clock once"
    expected = [START, START + timedelta(seconds=10), START + timedelta(seconds=10), START + timedelta(seconds=10),
                START + timedelta(seconds=20), START + timedelta(seconds=20)]  # fmt: skip
    assert [signed for signed, _ in heads] == [timestamp for _, timestamp in heads] == expected
    bundle = Bundle({"log_id": key.keyid, "tree_size": 6, "entries": []}, key.public_pem(), [], lines, {}, None)
    [_, heads_check, *_] = check_log(bundle, None).checks  # verify's check of the heads (no proofs here)
    assert heads_check.checked == 6 and not heads_check.failures
