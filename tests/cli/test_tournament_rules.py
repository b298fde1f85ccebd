"""A tournament is played and read back under the rules it began with (``tournament.rules``), whatever
the settings say later: its rounds are only valid under the rules that planned them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_store import COMPETITORS, ScriptedExecutor, build_finished_store, fake_task

from trainarena.engine import replay
from trainarena.operations.history import tournament_detail
from trainarena.orchestrator import create_tournament, drive
from trainarena.settings import Settings, TournamentRules
from trainarena.store import add_competitor, load_record, load_tournament, open_store

# Four entrants play knockouts under the default rules; these would plan a group round instead.
GROUPS_FROM_TWO = TournamentRules(group_stage_min_entrants=2, group_size_min=2, group_size_max=4, group_advance=1)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_a_finished_tournament_reads_back_under_its_own_rules_after_the_settings_change(data_dir: Path) -> None:
    built = build_finished_store(data_dir)
    with open_store(Settings()) as store, store.session() as session:
        tournament = load_tournament(session, built.tournament_id)
        assert TournamentRules.model_validate(tournament.rules) == TournamentRules()
        with pytest.raises(ValueError, match="differs from the plan"):  # what every page and `show` did
            replay(load_record(tournament, GROUPS_FROM_TWO), GROUPS_FROM_TWO)
        detail = tournament_detail(session, built.tournament_id, GROUPS_FROM_TWO)
    assert detail.replayed.next == built.finished


def test_a_tournament_resumed_under_other_settings_goes_on_under_its_own_rules(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    built = build_finished_store(tmp_path / "data")  # the same tournament, driven whole under the defaults
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "resumed"))
    settings = Settings()
    with open_store(settings) as store:
        with store.transaction() as session:
            for i, name in enumerate(COMPETITORS):
                add_competitor(session, name=name, repo_url=f"https://github.com/x/{name}", commit=f"{i}" * 40,
                               tree_hash=name, source_digest=name, entrypoint="train.py")
            tournament_id = create_tournament(session, name="week-1", kind="text", seed=1, entrants=list(COMPETITORS)).id

        def drive_under(rules: TournamentRules, **options):
            return drive(store, tournament_id, task_source=fake_task, executor=ScriptedExecutor(), rules=rules,
                         weight_rules=settings.weights, work_dir=settings.work_dir, **options)

        assert drive_under(TournamentRules(), max_steps=2) is None  # a round created, a run played
        assert drive_under(GROUPS_FROM_TWO) == built.finished  # as the same draw played under one set of rules
