"""`competitor add --hotkey`: an SS58 hotkey is checked before anything is fetched, stored, shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from submission_repos import RepoFactory
from typer.testing import CliRunner

from trainarena.cli import app

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"  # Substrate's well-known dev key, format 42


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_hotkey_is_stored_and_shown(runner: CliRunner, make_repo: RepoFactory) -> None:
    repo, sha = make_repo()
    added = runner.invoke(app, ["competitor", "add", "alice", str(repo), sha, "--hotkey", ALICE])
    assert added.exit_code == 0, added.output
    assert ALICE in added.stdout
    shown = runner.invoke(app, ["competitor", "show", "alice"])
    assert any(line.split() == ["hotkey", ALICE] for line in shown.stdout.splitlines()), shown.stdout
    listed = json.loads(runner.invoke(app, ["competitor", "list", "--json"]).stdout)
    assert [(row["name"], row["hotkey"]) for row in listed] == [("alice", ALICE)]


def test_without_a_hotkey_show_says_none(runner: CliRunner, make_repo: RepoFactory) -> None:
    repo, sha = make_repo()
    assert runner.invoke(app, ["competitor", "add", "bob", str(repo), sha]).exit_code == 0
    assert json.loads(runner.invoke(app, ["competitor", "show", "bob", "--json"]).stdout)["hotkey"] is None
    shown = runner.invoke(app, ["competitor", "show", "bob"]).stdout.splitlines()
    assert any(line.split() == ["hotkey", "none"] for line in shown)


@pytest.mark.parametrize(
    ("hotkey", "reason"),
    [
        (ALICE[:-1] + "Z", "checksum"),
        ("0x" + "ab" * 32, "base58 alphabet"),
        ("15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5", "network format 0, not 42"),  # a Polkadot address
        (ALICE[:20], "too short"),
    ],
)
def test_a_bad_hotkey_is_refused_and_nothing_is_stored(runner: CliRunner, make_repo: RepoFactory, hotkey: str, reason: str) -> None:
    repo, sha = make_repo()
    refused = runner.invoke(app, ["competitor", "add", "eve", str(repo), sha, "--hotkey", hotkey])
    assert refused.exit_code == 1
    assert "--hotkey" in refused.stderr and reason in refused.stderr
    assert json.loads(runner.invoke(app, ["competitor", "list", "--json"]).stdout) == []
