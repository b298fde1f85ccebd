"""The engine's record as signed JSON: a played round read back is the round that was played."""

from __future__ import annotations

import pytest

from trainarena.contract import Direction
from trainarena.engine.model import Match, PlayedMatch, PlayedRound, RoundPlan, Stage, TaskOutcome
from trainarena.records.engine_json import played_round_from_json, played_round_json


def _boss_round(units: tuple[float | None, ...]) -> PlayedRound:
    match = Match("boss", ("new", "old"), 2, 1)
    tasks = ((TaskOutcome("new", 0.06), TaskOutcome("old", 0.05)), (TaskOutcome("new", 1.2), TaskOutcome("old", None, "exit 1")))
    return PlayedRound(RoundPlan(3, Stage.BOSS, (match,)), (PlayedMatch(match, (Direction.HIGHER, Direction.LOWER), tasks, units),))


@pytest.mark.parametrize("units", [(), (1.0, None)])
def test_a_played_round_reads_back_as_played_lead_units_included(units) -> None:
    played = _boss_round(units)
    data = played_round_json(played, lambda *_: {})
    assert ("lead_unit" in data["matches"][0]["tasks"][0]) == bool(units)  # rounds without units are written as before
    assert "lead_unit" not in data["matches"][0]["tasks"][1]
    assert played_round_from_json(data, {}) == played
