"""Audit 10 repro (demo): a set-up killed inside make_example_repo never recovers."""

from __future__ import annotations

import shutil
from pathlib import Path

from trainarena.demo.text import examples_root, set_up_demo
from trainarena.settings import Settings
from trainarena.store import open_store


def test_a_demo_set_up_killed_while_making_an_example_repo_resumes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    # What a kill between make_example_repo's copytree and its commit leaves: the folder, no commit.
    shutil.copytree(examples_root() / "baseline", settings.data_dir / "example-repos" / "baseline")
    with open_store(settings) as store:
        set_up_demo(store, settings, seed=0)  # raises: git rev-parse HEAD failed


def test_the_same_kill_inside_a_checkout_registers_the_wrong_commit(tmp_path: Path) -> None:
    """The README's data dir is ./.trainarena inside the trainarena checkout: git rev-parse in the
    half-made example folder walks up to the checkout and answers ITS HEAD."""
    import subprocess

    checkout = tmp_path / "checkout"
    checkout.mkdir()
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "PATH": "/usr/bin:/bin",
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}
    subprocess.run(["git", "init", "-q", str(checkout)], check=True, env=env)
    subprocess.run(["git", "-C", str(checkout), "commit", "-q", "--allow-empty", "-m", "x"], check=True, env=env)
    settings = Settings(data_dir=checkout / ".trainarena")
    shutil.copytree(examples_root() / "baseline", settings.data_dir / "example-repos" / "baseline")
    with open_store(settings) as store:
        set_up_demo(store, settings, seed=0)
