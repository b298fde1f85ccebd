"""`trainarena competitor add | list | show` through typer's CliRunner, on a store in tmp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from submission_repos import RepoFactory, git
from typer.testing import CliRunner

from trainarena.cli import app


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_add_list_show(runner: CliRunner, make_repo: RepoFactory) -> None:
    repo, sha = make_repo()

    added = runner.invoke(app, ["competitor", "add", "alice", str(repo), sha])
    assert added.exit_code == 0, added.output
    assert f"registered alice at {sha}" in added.stdout
    assert git(repo, "rev-parse", f"{sha}^{{tree}}") in added.stdout
    assert "train.py" in added.stdout and "instruct" in added.stdout

    listed = runner.invoke(app, ["competitor", "list"])
    assert listed.exit_code == 0
    assert "alice" in listed.stdout and sha[:12] in listed.stdout

    shown = json.loads(runner.invoke(app, ["competitor", "show", "alice", "--json"]).stdout)
    assert shown["commit"] == sha
    assert shown["entrypoint"] == "train.py"
    assert shown["task_types"] == ["instruct"]
    assert shown["kind"] == "text"
    assert shown["repo_url"] == repo.resolve().as_uri()


def test_add_json_reports_copies_and_list_json(runner: CliRunner, make_repo: RepoFactory) -> None:
    repo, sha = make_repo(name="original")
    copy_repo, copy_sha = make_repo(name="copy")
    assert runner.invoke(app, ["competitor", "add", "alice", str(repo), sha]).exit_code == 0

    text = runner.invoke(app, ["competitor", "add", "mallory", str(copy_repo), copy_sha])
    assert text.exit_code == 0
    assert "warning: mallory has the same tree (identical files) as competitor 'alice'" in text.stderr

    as_json = runner.invoke(app, ["competitor", "add", "eve", str(copy_repo), copy_sha, "--json"])
    copies = json.loads(as_json.stdout)["copies"]
    assert [(c["kind"], c["other_name"]) for c in copies] == [("tree_hash", "alice"), ("tree_hash", "mallory")]

    names = [row["name"] for row in json.loads(runner.invoke(app, ["competitor", "list", "--json"]).stdout)]
    assert names == ["alice", "mallory", "eve"]


def test_duplicate_name_is_an_error(runner: CliRunner, make_repo: RepoFactory) -> None:
    repo, sha = make_repo()
    assert runner.invoke(app, ["competitor", "add", "alice", str(repo), sha]).exit_code == 0

    again = runner.invoke(app, ["competitor", "add", "alice", str(repo), sha])

    assert again.exit_code == 1
    assert "already registered" in again.stderr


def test_rejected_registration_prints_the_reason_and_records_nothing(runner: CliRunner, make_repo: RepoFactory) -> None:
    repo, _ = make_repo()

    result = runner.invoke(app, ["competitor", "add", "alice", str(repo), "main"])

    assert result.exit_code == 1
    assert "looks like a branch" in result.stderr
    assert json.loads(runner.invoke(app, ["competitor", "list", "--json"]).stdout) == []


def test_show_unknown_and_empty_list(runner: CliRunner) -> None:
    shown = runner.invoke(app, ["competitor", "show", "nobody"])
    assert shown.exit_code == 1
    assert "no competitor named 'nobody'" in shown.stderr
    assert "no competitors registered" in runner.invoke(app, ["competitor", "list"]).stdout


# --- --hotkey: an SS58 hotkey is checked before anything is fetched, stored, shown ---

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"  # Substrate's well-known dev key, format 42


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
