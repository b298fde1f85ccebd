"""`trainarena competitor add | list | show` through typer's CliRunner, on a store in tmp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from disguised import disguised_copy
from submission_repos import MANIFEST, TRAIN_PY, RepoFactory, git
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.demo.example_repos import make_example_repo
from trainarena.demo.text import examples_root


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


def test_registering_head_of_a_dirty_tree_warns_that_its_edits_are_left_out(runner: CliRunner, make_repo: RepoFactory) -> None:
    # The workbench runs uncommitted edits (`run --repo`); registering `git rev-parse HEAD` then enters
    # the commit without them, which a competitor who tested the edits would not expect.
    repo, sha = make_repo()
    (repo / "train.py").write_text("print('edited, not committed')\n")
    (repo / "notes.txt").write_text("new file\n")

    added = runner.invoke(app, ["competitor", "add", "alice", str(repo), sha])
    assert added.exit_code == 0, added.output
    warning = " ".join(added.stderr.split())
    assert f"warning: alice is the commit {sha[:12]} without the uncommitted changes of {repo}" in warning
    assert "train.py" in warning and "notes.txt" in warning
    assert "commit them and register the new commit under a new name (e.g. alice-v2)" in warning

    older = make_repo.commit(repo, {"train.py": "print('committed')\n"})
    make_repo.commit(repo, {"train.py": "print('committed later')\n"})
    (repo / "train.py").write_text("print('edited again')\n")
    added = runner.invoke(app, ["competitor", "add", "bob", str(repo), older, "--json"])
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["warnings"] == [], "a commit before HEAD is not the working tree being registered"


def test_an_exact_copy_is_refused_and_not_listed(runner: CliRunner, make_repo: RepoFactory) -> None:
    repo, sha = make_repo(name="original")
    copy_repo, copy_sha = make_repo(name="copy")
    assert runner.invoke(app, ["competitor", "add", "alice", str(repo), sha]).exit_code == 0

    refused = runner.invoke(app, ["competitor", "add", "mallory", str(copy_repo), copy_sha])

    assert refused.exit_code == 1
    assert "'mallory' has the same tree (identical files) as competitor 'alice'" in refused.stderr
    assert "exact copy of a registered competitor is refused" in refused.stderr
    names = [row["name"] for row in json.loads(runner.invoke(app, ["competitor", "list", "--json"]).stdout)]
    assert names == ["alice"]


def test_flagged_copies_are_reported_and_listed(runner: CliRunner, make_repo: RepoFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_REGISTRATION__EXACT_COPIES", "flag")
    repo, sha = make_repo(name="original")
    copy_repo, copy_sha = make_repo(name="copy")
    assert runner.invoke(app, ["competitor", "add", "alice", str(repo), sha]).exit_code == 0

    text = runner.invoke(app, ["competitor", "add", "mallory", str(copy_repo), copy_sha])
    assert text.exit_code == 0
    assert "warning: mallory has the same tree (identical files) as competitor 'alice'" in text.stderr
    assert "warning: mallory is flagged for the operator as an exact copy of competitor 'alice'" in text.stderr
    assert [line.split() for line in text.stdout.splitlines() if line.startswith(("similar_to", "copy_flag"))] == [
        ["similar_to", "alice"], ["copy_flag", "tree_hash"]
    ]

    as_json = json.loads(runner.invoke(app, ["competitor", "add", "eve", str(copy_repo), copy_sha, "--json"]).stdout)
    assert [(c["kind"], c["other_name"]) for c in as_json["copies"]] == [("tree_hash", "alice"), ("tree_hash", "mallory")]
    assert (as_json["similar_to"], as_json["similarity"], as_json["copy_flag"]) == ("alice", 1.0, "tree_hash")
    assert any("flagged for the operator" in warning for warning in as_json["warnings"])

    listed = runner.invoke(app, ["competitor", "list"])
    assert "flagged as copies: mallory, eve (see `competitor list --flagged`)" in listed.stdout
    flagged = runner.invoke(app, ["competitor", "list", "--flagged"])
    rows = [line for line in flagged.stdout.splitlines() if "tree_hash" in line]
    assert len(rows) == 2 and "mallory" in rows[0] and "alice" in rows[0] and "1.00" in rows[0]
    names = [row["name"] for row in json.loads(runner.invoke(app, ["competitor", "list", "--flagged", "--json"]).stdout)]
    assert names == ["mallory", "eve"]


def test_a_near_duplicate_is_flagged_with_the_closest_competitor(runner: CliRunner, tmp_path: Path) -> None:
    repo, sha = make_example_repo(examples_root() / "torchloop", tmp_path / "repos" / "torchloop")
    assert runner.invoke(app, ["competitor", "add", "torchloop", str(repo), sha]).exit_code == 0
    copy = disguised_copy(examples_root() / "torchloop", tmp_path / "disguised")
    copy_repo, copy_sha = make_example_repo(copy, tmp_path / "repos" / "disguised")

    added = runner.invoke(app, ["competitor", "add", "mallory", str(copy_repo), copy_sha])

    assert added.exit_code == 0, added.output
    fields = dict(line.split(maxsplit=1) for line in added.stdout.splitlines()[1:])
    assert fields["similar_to"] == "torchloop" and float(fields["similarity"]) >= 0.8
    assert fields["copy_flag"] == "near_duplicate"
    assert "warning: mallory is flagged for the operator as a near-duplicate (flag threshold 0.80) of " \
           "competitor 'torchloop', similarity" in added.stderr
    assert runner.invoke(app, ["competitor", "list", "--flagged"]).stdout.count("near_duplicate") == 1


def test_no_flagged_competitor_says_so(runner: CliRunner, make_repo: RepoFactory) -> None:
    repo, sha = make_repo()
    added = runner.invoke(app, ["competitor", "add", "alice", str(repo), sha])
    fields = [line.split() for line in added.stdout.splitlines()[1:]]
    assert ["similar_to", "none"] in fields and ["copy_flag", "none"] in fields
    assert runner.invoke(app, ["competitor", "list", "--flagged"]).stdout.strip() == "no competitor is flagged as a copy"
    assert "flagged as copies" not in runner.invoke(app, ["competitor", "list"]).stdout


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


def test_list_at_80_columns_shows_a_local_repositorys_folder_and_every_task_type(runner: CliRunner, make_repo: RepoFactory) -> None:
    """The QA saw the repository cut to 'file:///tmp…' (every local one reads so) and the types cut too."""
    manifest = MANIFEST.replace('["instruct"]', '["instruct", "dpo"]')
    repo, sha = make_repo({"trainarena.toml": manifest, "train.py": TRAIN_PY}, name="alices-bot")
    assert runner.invoke(app, ["competitor", "add", "alice", str(repo), sha]).exit_code == 0
    listed = runner.invoke(app, ["competitor", "list"], env={"COLUMNS": "80"})
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert max(len(line) for line in lines) <= 80, listed.output
    [row] = [line for line in lines if "alice" in line]
    repository, types = (cell.strip() for cell in row.split("│")[2:6:3])
    assert repository.startswith("…") and repository.endswith("alices-bot") and "file:" not in row, listed.output
    assert types == "instruct, dpo", listed.output  # whole: it folds between the types, never cut
    wide = runner.invoke(app, ["competitor", "list"], env={"COLUMNS": "200"}).output
    assert f"│ {repo.resolve()} │" in wide, wide  # the path, as `competitor add` takes it
    assert json.loads(runner.invoke(app, ["competitor", "list", "--json"]).stdout)[0]["repo_url"] == repo.resolve().as_uri()
