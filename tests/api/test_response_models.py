"""The API's response models mirror the reports the CLI prints (reporting/, operations/, store/): a
field added to a report and not to its model would be dropped from the API without a word."""

from __future__ import annotations

from dataclasses import fields

import pytest
from pydantic import BaseModel

from trainarena.api.routes import runs, standings, tournaments
from trainarena.operations.history import Reign
from trainarena.reporting.leaderboard import RunLine, Standing
from trainarena.reporting.references import ReferenceLine
from trainarena.reporting.run_detail import AttemptLine, RunDetail
from trainarena.reporting.run_list import RunSummary
from trainarena.reporting.task_board import BoardLine, TaskBoard
from trainarena.store import TournamentSummary

MIRRORS = [
    (runs.RunSummaryOut, RunSummary), (runs.RunDetailOut, RunDetail), (runs.AttemptOut, AttemptLine),
    (runs.ReferenceOut, ReferenceLine), (tournaments.TournamentSummaryOut, TournamentSummary),
    (tournaments.StandingOut, Standing), (tournaments.RunLineOut, RunLine), (standings.ReignOut, Reign),
    (standings.BoardLineOut, BoardLine), (standings.TaskBoardOut, TaskBoard),
]  # fmt: skip


@pytest.mark.parametrize(("model", "report"), MIRRORS, ids=[model.__name__ for model, _ in MIRRORS])
def test_each_response_model_has_its_reports_fields(model: type[BaseModel], report: type) -> None:
    assert set(model.model_fields) == {field.name for field in fields(report)}
