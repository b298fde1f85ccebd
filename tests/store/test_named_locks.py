"""The store-wide named lock on SQLite: one holder at a time, and no lock file left behind."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from trainarena.store import Store, named_lock


@pytest.mark.usefixtures("sqlite_only")
def test_a_released_lock_leaves_no_file_beside_the_database(store: Store, tmp_path: Path) -> None:
    for seed in range(3):  # the workbench takes one name per task and seed
        with named_lock(store.engine, f"reference-house-abc-seed-{seed}"):
            assert (tmp_path / "trainarena.db.locks" / f"reference-house-abc-seed-{seed}.lock").is_file()
    assert not any(path.name.endswith(".lock") for path in tmp_path.iterdir())
    assert list((tmp_path / "trainarena.db.locks").iterdir()) == []


def test_holders_of_one_name_take_turns_though_the_file_is_removed(store: Store) -> None:
    inside, overlaps = [0], []

    def hold() -> None:
        for _ in range(5):
            with named_lock(store.engine, "shared"):
                inside[0] += 1
                overlaps.append(inside[0])
                time.sleep(0.005)
                inside[0] -= 1

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [1] * 20
