"""Fixtures of the operations tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from operator_data import OperatorData, write_operator_data


@pytest.fixture
def operator_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OperatorData:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return write_operator_data(tmp_path)
