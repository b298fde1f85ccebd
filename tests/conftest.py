"""Fixtures shared across the test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory):
    """The offline tiny model, tokenizer and datasets, built once. Set ``$TRAINARENA_TEST_ASSETS`` to a
    directory to reuse a build across sessions; by default the cache sits beside pytest's per-session
    temporary directories, so the next session reuses it (a builder code change gives a new stamp)."""
    from trainarena.assets import ensure_assets

    configured = os.environ.get("TRAINARENA_TEST_ASSETS")
    cache = Path(configured) if configured else tmp_path_factory.getbasetemp().parent / "trainarena-assets-cache"
    return ensure_assets(cache)
