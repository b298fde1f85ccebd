"""`trainarena demo --examples FOLDER`: every folder of FOLDER that is a competitor repository (a git
repository with a valid trainarena.toml) is registered at its HEAD commit and plays, whatever its name;
each other folder is named with the reason it is left out."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.demo.example_repos import commit_as_repository, make_example_repo
from trainarena.demo.text import DEFAULT_CHAMPION, examples_root, set_up_demo
from trainarena.runs import RunNotStarted
from trainarena.settings import Settings
from trainarena.store import StoreError, get_competitor, get_tournament, open_store


def _head(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def test_a_competitor_folder_that_is_a_git_repository_is_committed_afresh(tmp_path: Path) -> None:
    # It crashed with "git commit ... failed" and an empty message: its copied .git had nothing to commit.
    src = tmp_path / "examples" / "baseline"
    shutil.copytree(examples_root() / "baseline", src)
    commit_as_repository(src, "mine")
    repo, commit = make_example_repo(src, tmp_path / "repos" / "baseline")
    assert len(commit) == 40
    assert commit == make_example_repo(examples_root() / "baseline", tmp_path / "fresh" / "baseline")[1]  # its files alone
    assert (repo / "train.py").is_file()


@pytest.fixture
def own_scripts(tmp_path: Path) -> Path:
    """A competitor's folder of scripts: two repositories under names of their own, and one of each
    kind of folder the demo cannot play."""
    folder = tmp_path / "mine"
    make_example_repo(examples_root() / "baseline", folder / "my-trainer")
    (folder / "my-trainer" / "train.py").write_text("print('edited, not committed')\n")  # plays its HEAD, and says so
    make_example_repo(examples_root() / "crasher", folder / "risky")
    make_example_repo(examples_root() / "image_baseline", folder / "painter")  # declares image tasks
    shutil.copytree(examples_root() / "torchloop", folder / "plain")  # files, no repository
    unmanifested = folder / "no-manifest"
    shutil.copytree(examples_root() / "torchloop", unmanifested)
    (unmanifested / "trainarena.toml").unlink()
    commit_as_repository(unmanifested, "no manifest")
    misspelt = folder / "misspelt"
    shutil.copytree(examples_root() / "torchloop", misspelt)
    (misspelt / "trainarena.toml").write_text('[trainarena]\ncontract = 1\nentry_point = "train.py"\n')
    commit_as_repository(misspelt, "bad manifest")
    (folder / ".cache").mkdir()  # hidden: not a competitor, not named
    (folder / "notes.txt").write_text("not a folder")
    return folder


def test_every_competitor_repository_in_the_folder_plays_and_the_others_are_named_with_why(own_scripts: Path,
                                                                                          tmp_path: Path) -> None:  # fmt: skip
    settings = Settings(data_dir=tmp_path / "data")
    with open_store(settings) as store:
        setup = set_up_demo(store, settings, seed=1, examples=own_scripts)
        with store.session() as session:
            tournament = get_tournament(session, setup.tournament_id)
            assert [entrant.competitor.name for entrant in tournament.entrants] == ["my-trainer", "risky"]
            assert tournament.champion_before is None  # no folder named as the default champion
            # the folder's own commit, not a copy of its files
            assert get_competitor(session, "my-trainer").commit == _head(own_scripts / "my-trainer")
            assert get_competitor(session, "plain") is None
    assert setup.registered == ("my-trainer", "painter", "risky")
    (edited,) = setup.warnings
    assert edited.startswith(f"my-trainer is the commit {_head(own_scripts / 'my-trainer')[:12]} without the uncommitted "
                             f"changes of {own_scripts / 'my-trainer'}: ")
    why = dict(setup.left_out)
    assert list(why) == ["misspelt", "no-manifest", "painter", "plain"]
    assert why["plain"].startswith("not a git repository with a commit of its own")
    assert "trainarena.toml" in why["no-manifest"]
    assert "did you mean 'entrypoint'" in why["misspelt"]
    assert why["painter"] == "its trainarena.toml declares image task types only, not text"

    with open_store(settings) as store:  # run again: the unfinished demo resumes, nothing registered twice
        again = set_up_demo(store, settings, seed=1, examples=own_scripts)
    assert again.resumed and again.tournament_id == setup.tournament_id and again.registered == ()


def test_a_folder_inside_another_repository_is_not_taken_for_it(tmp_path: Path) -> None:
    """A script copied into a checkout has no commit of its own: the checkout's HEAD is not the script's."""
    folder = tmp_path / "checkout"
    shutil.copytree(examples_root() / "baseline", folder / "copied")
    commit_as_repository(folder, "a checkout holding a copy")
    make_example_repo(examples_root() / "torchloop", folder / "own")
    settings = Settings(data_dir=tmp_path / "data")
    with open_store(settings) as store:
        setup = set_up_demo(store, settings, seed=1, examples=folder)
    assert setup.registered == ("own",) and [name for name, _ in setup.left_out] == ["copied"]


def test_a_name_registered_from_another_repository_is_left_out_naming_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first, second = tmp_path / "first", tmp_path / "second"
    make_example_repo(examples_root() / "baseline", first / "trainer")
    make_example_repo(examples_root() / "torchloop", second / "trainer")
    make_example_repo(examples_root() / "instruct_only", second / "other")
    with open_store(settings) as store:
        set_up_demo(store, settings, seed=1, examples=first)
        setup = set_up_demo(store, settings, seed=2, examples=second)
    (reason,) = [why for name, why in setup.left_out if name == "trainer"]
    assert reason.startswith(f"a competitor named 'trainer' is registered already, from {(first / 'trainer').resolve().as_uri()}")


def test_the_default_champion_folder_defends(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    make_example_repo(examples_root() / "baseline", folder / "my-trainer")
    make_example_repo(examples_root() / DEFAULT_CHAMPION, folder / DEFAULT_CHAMPION)
    settings = Settings(data_dir=tmp_path / "data")
    with open_store(settings) as store:
        setup = set_up_demo(store, settings, seed=1, examples=folder)
        with store.session() as session:
            tournament = get_tournament(session, setup.tournament_id)
            assert [entrant.competitor.name for entrant in tournament.entrants] == ["my-trainer"]
            assert tournament.champion_before.name == DEFAULT_CHAMPION


def test_a_folder_with_nothing_to_play_says_why_for_each(own_scripts: Path, tmp_path: Path) -> None:
    for name in ("my-trainer", "risky"):
        shutil.rmtree(own_scripts / name)
    settings = Settings(data_dir=tmp_path / "data")
    with open_store(settings) as store, pytest.raises(StoreError) as refused:
        set_up_demo(store, settings, seed=1, examples=own_scripts)
    message = str(refused.value)
    assert message.startswith(f"no competitor repository to play under {own_scripts} (each folder that is a git "
                              f"repository with a valid trainarena.toml plays; one named {DEFAULT_CHAMPION} defends); misspelt: ")
    assert "; plain: not a git repository with a commit of its own" in message


def test_the_cli_names_each_folder_it_leaves_out(own_scripts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("trainarena.cli.demo._demo_task_source", lambda kind, settings, budget: None)  # no assets built
    monkeypatch.setattr("trainarena.cli.demo.make_executor", lambda settings, unsafe: SimpleNamespace(name="none", close=lambda: None))

    def stopped(*args: object, **kwargs: object) -> None:  # the set-up alone: the tournament is not played
        raise RunNotStarted("not played in this test")

    monkeypatch.setattr("trainarena.cli.demo.drive", stopped)
    result = CliRunner().invoke(app, ["demo", "--examples", str(own_scripts)], env={"COLUMNS": "400"})
    assert result.exit_code == 1 and "error: not played in this test" in result.output, result.output
    lines = result.output.splitlines()
    assert "left out of the demo: painter: its trainarena.toml declares image task types only, not text" in lines
    assert any(line.startswith("warning: my-trainer is the commit ") and "train.py" in line for line in lines)
    assert [line.split(":")[1].strip() for line in lines if line.startswith("left out of the demo:")] == [
        "misspelt", "no-manifest", "painter", "plain"]

    for name in ("my-trainer", "risky"):
        shutil.rmtree(own_scripts / name)
    nothing = CliRunner().invoke(app, ["demo", "--examples", str(own_scripts)], env={"COLUMNS": "400"})
    assert nothing.exit_code == 1 and isinstance(nothing.exception, SystemExit)  # an error, not a traceback
    assert nothing.output.startswith(f"error: no competitor repository to play under {own_scripts}"), nothing.output
