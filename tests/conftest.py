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


@pytest.fixture(scope="session")
def image_assets(tmp_path_factory: pytest.TempPathFactory):
    """The tiny SD-shaped pipeline and image datasets, built once per machine (``$TRAINARENA_TEST_IMAGE_ASSETS``
    to place the cache elsewhere)."""
    from trainarena.assets.image import ensure_image_assets

    configured = os.environ.get("TRAINARENA_TEST_IMAGE_ASSETS")
    cache = Path(configured) if configured else tmp_path_factory.getbasetemp().parent / "trainarena-image-assets-cache"
    return ensure_image_assets(cache)


# Building the assets pre-trains a tiny model (tens of seconds): every test that needs them, directly
# or through another fixture, is slow, so ``-m "not slow"`` never builds them.
_COSTLY_FIXTURES = frozenset({"assets", "image_assets"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _COSTLY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
