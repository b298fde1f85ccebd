"""`trainarena competitor remove NAME`: refused for a competitor a tournament recorded, allowed
otherwise (with its checkout, unless another competitor shares the commit), an error when unknown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from submission_repos import RepoFactory
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.settings import Settings
from trainarena.store import StoreError, create_tournament, open_store, remove_competitor
from trainarena.submissions import checkout_path


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "80")
    return CliRunner()


def add(runner: CliRunner, name: str, repo: Path, sha: str) -> None:
    result = runner.invoke(app, ["competitor", "add", name, str(repo), sha])
    assert result.exit_code == 0, result.output


def names(runner: CliRunner) -> list[str]:
    return [row["name"] for row in json.loads(runner.invoke(app, ["competitor", "list", "--json"]).stdout)]


def test_remove_deletes_the_competitor_and_its_checkout(runner: CliRunner, make_repo: RepoFactory) -> None:
    repo, sha = make_repo()
    add(runner, "alice", repo, sha)
    checkout = checkout_path(Settings(), sha)
    assert checkout.is_dir()

    result = runner.invoke(app, ["competitor", "remove", "alice"])

    assert result.exit_code == 0, result.output
    assert f"removed alice ({sha[:12]}); checkout removed" in result.stdout
    assert names(runner) == [] and not checkout.exists()
    add(runner, "alice", repo, sha)  # the name is free again, and the checkout is exported again
    assert checkout.is_dir()


def test_remove_keeps_a_checkout_another_competitor_shares(runner: CliRunner, make_repo: RepoFactory,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_REGISTRATION__EXACT_COPIES", "flag")  # two competitors at one commit are copies
    repo, sha = make_repo()
    add(runner, "alice", repo, sha)
    add(runner, "alice-again", repo, sha)

    result = runner.invoke(app, ["competitor", "remove", "alice", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"removed": "alice", "commit": sha, "checkout_removed": False}
    assert names(runner) == ["alice-again"] and checkout_path(Settings(), sha).is_dir()


def test_remove_is_refused_for_an_entrant_or_a_champion(runner: CliRunner, make_repo: RepoFactory,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_REGISTRATION__EXACT_COPIES", "flag")  # three names, one commit
    repo, sha = make_repo()
    for name in ("alice", "bob", "carol"):
        add(runner, name, repo, sha)
    with open_store(Settings()) as store, store.transaction() as session:
        create_tournament(session, name="spring-cup", kind="text", seed=1, entrants=["alice"], champion="bob")
        create_tournament(session, name="summer-cup", kind="text", seed=2, entrants=["alice", "carol"])

    refused = runner.invoke(app, ["competitor", "remove", "alice"])

    assert refused.exit_code == 1
    message = " ".join(refused.stderr.split())
    assert "competitor 'alice' cannot be removed: it is in the records of tournament(s) spring-cup, summer-cup" in message
    # The defending champion of a boss round is recorded too, though it did not enter.
    assert "tournament(s) spring-cup, whose records stay whole" in " ".join(runner.invoke(app, ["competitor", "remove", "bob"]).stderr.split())
    assert names(runner) == ["alice", "bob", "carol"] and checkout_path(Settings(), sha).is_dir()


def test_remove_of_an_unknown_competitor_is_an_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["competitor", "remove", "ghost"])

    assert result.exit_code == 1
    assert "no competitor named 'ghost'; see `trainarena competitor list`" in " ".join(result.stderr.split())


def test_remove_competitor_refuses_when_any_row_refers_to_it(runner: CliRunner, make_repo: RepoFactory) -> None:
    """A row outside the tournament tables that refers to the competitor (here a crowning without a
    tournament) keeps it too: the foreign key says so, and the error names the competitor."""
    from trainarena.store import ChampionHistory, get_competitor

    repo, sha = make_repo()
    add(runner, "alice", repo, sha)
    with open_store(Settings()) as store:
        with store.transaction() as session:
            session.add(ChampionHistory(kind="text", competitor=get_competitor(session, "alice"), tournament=None))
        with store.transaction() as session, pytest.raises(StoreError, match="'alice' cannot be removed: other records refer to it"):
            remove_competitor(session, name="alice")
    assert names(runner) == ["alice"]


def test_remove_keeps_the_competitors_adhoc_runs_with_their_source(runner: CliRunner, make_repo: RepoFactory) -> None:
    """Runs tried with `trainarena run` are no tournament's record: the competitor may go, its runs stay,
    naming the repository and commit they ran."""
    from trainarena.store import Run, get_competitor
    from trainarena.store.adhoc import start_adhoc_run

    repo, sha = make_repo()
    add(runner, "alice", repo, sha)
    with open_store(Settings()) as store:
        with store.transaction() as session:
            alice = get_competitor(session, "alice")
            repo_url = alice.repo_url
            run_id = start_adhoc_run(session, origin="adhoc", definition={"name": "t"}, digest="d" * 24, competitor=alice).id
    result = runner.invoke(app, ["competitor", "remove", "alice"])
    assert result.exit_code == 0, result.output
    assert names(runner) == []
    with open_store(Settings()) as store, store.session() as session:
        run = session.get(Run, run_id)
        assert run is not None and run.competitor is None
        assert (run.source_path, run.source_commit, run.source_dirty) == (repo_url, sha, False)
    assert repo_url.endswith(str(repo))
