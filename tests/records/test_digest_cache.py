"""``records.provenance.folder_digest``'s cache under concurrent callers: parallel requests that miss it
for the same unchanged folder (``GET /v1/pools/drawable``, which checks every task's inputs) hash it once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from trainarena.records import provenance
from trainarena.tasks.digests import path_digest

CALLERS = 8


def test_concurrent_misses_for_one_folder_hash_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    hashed: list[Path] = []

    def slow_digest(path: Path) -> str:  # slow enough that every caller misses while it runs
        hashed.append(path)
        time.sleep(0.3)
        return path_digest(path)

    monkeypatch.setattr(provenance, "path_digest", slow_digest)
    together = threading.Barrier(CALLERS)

    def ask() -> str | None:
        together.wait()
        return provenance.folder_digest(folder)

    with ThreadPoolExecutor(CALLERS) as pool:
        digests = list(pool.map(lambda _: ask(), range(CALLERS)))
    assert hashed == [folder.resolve()]
    assert digests == [path_digest(folder)] * CALLERS
