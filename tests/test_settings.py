"""Settings: environment overrides and the cross-section checks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
    with pytest.raises(ValidationError, match=r"jobs.stale_seconds \(15\) must be at least twice"):
        Settings(jobs={"stale_seconds": 15})  # a live worker beats up to 10 + 1 s apart


def test_the_bootstrap_gate_belongs_to_the_majority_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_RULES__BOOTSTRAP_GATE", "true")
    with pytest.raises(ValidationError, match="TRAINARENA_RULES__BOSS_RULE=majority"):
        Settings()
    monkeypatch.setenv("TRAINARENA_RULES__BOSS_RULE", "majority")
    assert Settings().rules.bootstrap_gate
    with pytest.raises(ValidationError, match="boss_rule"):
        Settings(rules={"boss_rule": "median"})


def _without_trainarena_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("TRAINARENA_")]:
        monkeypatch.delenv(name)


def test_the_default_data_dir_is_absolute_from_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`trainarena demo` from a checkout: no variable set, the default `.trainarena` of the working
    directory becomes absolute when the settings are built, and stays so wherever the process goes."""
    _without_trainarena_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    monkeypatch.chdir("/")
    expected = tmp_path.resolve() / ".trainarena"
    assert settings.data_dir == expected
    for derived in (settings.work_dir, settings.hidden_dir, settings.cache_dir, settings.assets_dir):
        assert derived.is_absolute() and derived.is_relative_to(expected)
    assert settings.db_url == f"sqlite:///{expected}/trainarena.db"


def test_home_and_relative_paths_in_the_environment_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without_trainarena_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRAINARENA_DATA_DIR", "~/arena")
    monkeypatch.setenv("TRAINARENA_SANDBOX__PYTHON", "env/bin/python")
    monkeypatch.setenv("TRAINARENA_DATABASE_URL", "sqlite:///state/arena.db")
    settings = Settings()
    assert settings.data_dir == tmp_path.resolve() / "home" / "arena"
    assert settings.sandbox.python == tmp_path.resolve() / "env" / "bin" / "python"
    assert settings.db_url == f"sqlite:///{tmp_path.resolve()}/state/arena.db"
    # URLs without a relative file are kept exactly as given.
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:////srv/arena.db", "postgresql+psycopg://u:p@db/arena"):
        assert Settings(database_url=url).db_url == url


def test_the_training_python_keeps_its_venv_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A venv's bin/python links to the system interpreter; following the link would lose the venv."""
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").symlink_to(sys.executable)
    monkeypatch.chdir(tmp_path)
    assert Settings(sandbox={"python": "venv/bin/python"}).sandbox.python == tmp_path.resolve() / "venv" / "bin" / "python"
