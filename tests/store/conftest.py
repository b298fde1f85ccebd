from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trainarena.settings import Settings
from trainarena.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(Settings(data_dir=tmp_path)) as opened:
        yield opened
