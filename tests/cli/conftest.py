"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_store import FinishedStore, build_finished_store
from typer.testing import CliRunner


@pytest.fixture
def finished_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FinishedStore:
    """A data dir (set as ``TRAINARENA_DATA_DIR``) with long-named competitors and one finished tournament."""
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return build_finished_store(tmp_path / "data")


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner on an empty data dir of the test's own (``TRAINARENA_DATA_DIR``)."""
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()
