"""Fixtures of the submissions tests: a repository factory and settings pointing at tmp."""

from __future__ import annotations

from pathlib import Path

import pytest
from submission_repos import RepoFactory

from trainarena.settings import Settings


@pytest.fixture
def make_repo(tmp_path: Path) -> RepoFactory:
    return RepoFactory(tmp_path / "repos")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return Settings()

