"""`trainarena demo --examples FOLDER`: a folder laid out like examples/competitors, whose competitor
folders may be git repositories of their own (a competitor's checkout copied in)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from trainarena.demo.example_repos import make_example_repo
from trainarena.demo.text import DEFAULT_CHAMPION, DEMO_ENTRANTS, examples_root, set_up_demo
from trainarena.settings import Settings
from trainarena.store import StoreError, get_competitor, open_store

GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "PATH": "/usr/bin:/bin",
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}  # fmt: skip


def _own_repository(folder: Path) -> None:
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "mine"]):
        subprocess.run(["git", "-C", str(folder), *args], check=True, env=GIT_ENV, capture_output=True)


def test_a_competitor_folder_that_is_a_git_repository_is_committed_afresh(tmp_path: Path) -> None:
    # It crashed with "git commit ... failed" and an empty message: its copied .git had nothing to commit.
    src = tmp_path / "examples" / "baseline"
    shutil.copytree(examples_root() / "baseline", src)
    _own_repository(src)
    repo, commit = make_example_repo(src, tmp_path / "repos" / "baseline")
    assert len(commit) == 40
    assert commit == make_example_repo(examples_root() / "baseline", tmp_path / "fresh" / "baseline")[1]  # its files alone
    assert (repo / "train.py").is_file()


def test_a_folder_without_any_of_the_demo_names_says_which_names_it_takes(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    shutil.copytree(examples_root() / "baseline", examples / "my-trainer")
    settings = Settings(data_dir=tmp_path / "data")
    with open_store(settings) as store, pytest.raises(StoreError) as refused:
        set_up_demo(store, settings, seed=1, examples=examples)
    message = str(refused.value)
    assert f"no example competitors found under {examples}" in message
    assert all(name in message for name in (*DEMO_ENTRANTS, DEFAULT_CHAMPION))
    assert "my-trainer is not one of them" in message


def test_the_demo_names_in_a_folder_enter_and_the_others_are_named(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    shutil.copytree(examples_root() / "baseline", examples / "baseline")
    shutil.copytree(examples_root() / "crasher", examples / "my-trainer")
    settings = Settings(data_dir=tmp_path / "data")
    with open_store(settings) as store:
        setup = set_up_demo(store, settings, seed=1, examples=examples)
        with store.session() as session:
            assert get_competitor(session, "my-trainer") is None
    assert setup.registered == ("baseline",)
    assert setup.left_out == ("my-trainer",)
