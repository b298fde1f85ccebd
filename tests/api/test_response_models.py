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
    (runs.RunSummaryOut, RunSummary), (runs.OperatorRunDetailOut, RunDetail), (runs.AttemptOut, AttemptLine),
    (runs.ReferenceOut, ReferenceLine), (tournaments.TournamentSummaryOut, TournamentSummary),
    (tournaments.StandingOut, Standing), (tournaments.RunLineOut, RunLine), (standings.ReignOut, Reign),
    (standings.BoardLineOut, BoardLine), (standings.TaskBoardOut, TaskBoard),
]  # fmt: skip


@pytest.mark.parametrize(("model", "report"), MIRRORS, ids=[model.__name__ for model, _ in MIRRORS])
def test_each_response_model_has_its_reports_fields(model: type[BaseModel], report: type) -> None:
    assert set(model.model_fields) == {field.name for field in fields(report)}


def test_a_customers_view_of_a_run_is_the_run_less_the_operators_fields() -> None:
    """RunOutcomeOut (GET /v1/jobs/{id}/run) reads RunDetail: every field it has is the report's, and
    none is a path or host of the platform's."""
    report = {field.name for field in fields(RunDetail)}
    assert set(runs.RunOutcomeOut.model_fields) <= report
    assert {"log_path", "artifact_path", "snapshot_path", "stderr_tail_from", "driver"}.isdisjoint(runs.RunOutcomeOut.model_fields)
    assert set(runs.AttemptOutcomeOut.model_fields) == {field.name for field in fields(AttemptLine)} - {"driver"}


def test_a_competitors_view_of_a_run_leaves_out_the_platforms_paths() -> None:
    """GET /v1/runs/{id} answers RunDetailOut to a competitor: the paths are the operator's alone."""
    paths = {"log_path", "artifact_path", "snapshot_path", "stderr_tail_from"}
    assert paths.isdisjoint(runs.RunDetailOut.model_fields)
    assert set(runs.OperatorRunDetailOut.model_fields) == set(runs.RunDetailOut.model_fields) | paths
