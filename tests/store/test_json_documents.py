"""JSON columns hold NaN and infinities alike on SQLite and PostgreSQL: by name, since PostgreSQL's json
type refuses Python's NaN token (a diverged model's evaluation details stopped the tournament there)."""

from __future__ import annotations

import math

from trainarena.store import add_stored_task, open_store_url
from trainarena.store.models import StoredTask


def test_non_finite_numbers_are_stored_by_name_on_every_backend(url_on_each_backend: str) -> None:
    definition = {"margin": math.nan, "rewards": [math.inf, -math.inf, 1.5], "nested": {"loss": math.nan}, "task_type": "instruct"}
    with open_store_url(url_on_each_backend) as store:
        with store.transaction() as session:
            add_stored_task(session, name="t", pool="p", kind="text", definition=definition, base_model_digest="0" * 64,
                            dataset_digest="1" * 64, hidden_digest="2" * 64, train_rows=2, hidden_rows=1)  # fmt: skip
        with store.session() as session:
            stored = session.query(StoredTask).one().definition
    assert stored == {"margin": "nan", "rewards": ["inf", "-inf", 1.5], "nested": {"loss": "nan"}, "task_type": "instruct"}
