"""Every id, seed and count a command hands the store is bounded by one shared typer type
(cli/output.py ``id_argument``, ``id_option``, ``count_option``, ``seed_option``; ids at most the store's STORE_INT_MAX, which PostgreSQL's 32-bit ids refuse past): a number past 64 bits
was a 40-line traceback ending in "OverflowError: Python int too large to convert to SQLite INTEGER"
(QA of the CLI, finding 2), and a tournament seed of -5 was stored where a task's seed must be 0 to
SEED_MAX. A tournament is named by its name or its id, and names may be digits: a larger number is
looked up as a name (tests/cli/test_cli_tournament_names.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.contract import SEED_MAX, STORE_INT_MAX

HUGE = str(10**20)


def _said(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


@pytest.mark.parametrize(("args", "where"), [
    (["runs", "show", HUGE], "'run_id'"),
    (["runs", "show", "1", "--tail", HUGE], "'--tail'"),
    (["audit", HUGE], "'run_id'"),
    (["weights", "export", "--format", "json", "--vector", HUGE], "'--vector'"),
    (["jobs", "list", "--limit", HUGE], "'--limit'"),
    (["tournament", "create", "--kind", "text", "--pool", "p", "--seed", HUGE], "'--seed'"),
    (["tournament", "create", "--kind", "text", "--pool", "p", "--seed", "-5"], "'--seed'"),
    (["tournament", "simulate", "--entrants", "3", "--seed", "-5"], "'--seed'"),
    (["demo", "--seed", str(SEED_MAX + 1)], "'--seed'"),
    (["runs", "show", "0"], "'run_id'"),
    (["runs", "show", str(STORE_INT_MAX + 1)], "'run_id'"),  # PostgreSQL refuses it as a parameter of its 32-bit ids
])  # fmt: skip
def test_a_number_out_of_range_is_refused_as_out_of_range_not_a_traceback(
    runner: CliRunner, tmp_path, args: list[str], where: str
) -> None:
    result = runner.invoke(app, [arg.replace("{tmp}", str(tmp_path)) for arg in args], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {where}" in _said(result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "data").exists()  # refused before the store is opened


def test_the_largest_id_is_an_unknown_id_like_any_other(runner: CliRunner) -> None:
    run = runner.invoke(app, ["runs", "show", str(STORE_INT_MAX)])
    assert run.exit_code == 1 and f"error: no run with id {STORE_INT_MAX}" in run.output
    tournament = runner.invoke(app, ["tournament", "show", str(STORE_INT_MAX)])
    assert tournament.exit_code == 1 and f"error: no tournament has the name or id '{STORE_INT_MAX}'" in tournament.output
