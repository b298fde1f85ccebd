"""Settings: environment overrides and the cross-section checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trainarena.settings import Settings


def test_nested_sections_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_RULES__BOSS_MARGIN", "0.1")
    monkeypatch.setenv("TRAINARENA_DATA_DIR", "/srv/arena")
    settings = Settings()
    assert settings.rules.boss_margin == 0.1
    assert settings.db_url == "sqlite:////srv/arena/trainarena.db"
    assert settings.hidden_dir.is_relative_to(settings.data_dir) and not settings.hidden_dir.is_relative_to(settings.work_dir)


def test_boss_round_must_cover_every_enabled_text_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_TASK_MIX__CHAT", "0.2")
    with pytest.raises(ValidationError, match="TRAINARENA_RULES__BOSS_TASKS_TEXT=4"):
        Settings()
    monkeypatch.setenv("TRAINARENA_RULES__BOSS_TASKS_TEXT", "4")
    assert len(Settings().task_mix.enabled()) == 4


def test_rule_sections_reject_contradictions() -> None:
    with pytest.raises(ValidationError, match="group_advance"):
        Settings(rules={"group_advance": 6})
    with pytest.raises(ValidationError, match="remainder"):
        Settings(weights={"champion_share": 0.8, "placed_share": 0.4})
