"""`trainarena competitor retire NAME` and `competitor add --replaces OLD`: the competitor stays, shown
as retired by list and show; retiring twice changes nothing; a refused registration retires nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from submission_repos import TRAIN_PY, RepoFactory
from typer.testing import CliRunner

from trainarena.cli import app


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "160")
    return CliRunner()


def retired(runner: CliRunner) -> dict[str, str | None]:
    return {row["name"]: row["retired_at"] for row in json.loads(runner.invoke(app, ["competitor", "list", "--json"]).stdout)}


def test_retire_keeps_the_competitor_listed_as_retired(runner: CliRunner, make_repo: RepoFactory) -> None:
    repo, sha = make_repo()
    assert runner.invoke(app, ["competitor", "add", "alice", str(repo), sha]).exit_code == 0

    result = runner.invoke(app, ["competitor", "retire", "alice"])

    assert result.exit_code == 0, result.output
    assert "retired alice: no tournament created from now on enters it" in result.stdout
    when = retired(runner)["alice"]
    assert when is not None
    header = runner.invoke(app, ["competitor", "list"]).stdout.splitlines()[2]
    assert header.split("┃")[-2].strip() == "retired"  # the column a store without a retired competitor leaves out
    shown = json.loads(runner.invoke(app, ["competitor", "show", "alice", "--json"]).stdout)
    assert (shown["retired_at"], shown["retired_by"]) == (when, "operator")
    again = runner.invoke(app, ["competitor", "retire", "alice"])
    assert again.exit_code == 0 and f"retired alice: already, at {when}" in " ".join(again.stdout.split())
    assert retired(runner) == {"alice": when}


def test_retire_of_an_unknown_competitor_is_an_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["competitor", "retire", "ghost", "--json"])
    assert result.exit_code == 1 and "no competitor named 'ghost' to retire" in result.stdout


def test_add_replaces_retires_the_old_version_or_nothing(runner: CliRunner, make_repo: RepoFactory) -> None:
    repo, sha = make_repo()
    assert runner.invoke(app, ["competitor", "add", "alice", str(repo), sha]).exit_code == 0
    refused = runner.invoke(app, ["competitor", "add", "alice-v2", str(repo), "0" * 40, "--replaces", "alice"])
    assert refused.exit_code == 1 and retired(runner) == {"alice": None}
    unknown = runner.invoke(app, ["competitor", "add", "bob", str(repo), sha, "--replaces", "ghost"])
    assert unknown.exit_code == 1 and "no competitor named 'ghost' to retire" in " ".join(unknown.stderr.split())

    new_sha = make_repo.commit(repo, {"train.py": TRAIN_PY + "\nVERSION = 2\n"})
    replaced = runner.invoke(app, ["competitor", "add", "alice-v2", str(repo), new_sha, "--replaces", "alice"])

    assert replaced.exit_code == 0, replaced.output
    assert "retired alice, which alice-v2 replaces" in replaced.stdout
    listed = retired(runner)
    assert listed["alice"] is not None and listed["alice-v2"] is None
