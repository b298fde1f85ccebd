"""make_example_repo: example competitors as reproducible one-commit git repositories."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from execution_helpers import EXAMPLES

from trainarena.contract import CONTRACT_VERSION, MANIFEST_NAME
from trainarena.demo.example_repos import make_example_repo


def test_the_same_example_gives_the_same_commit(tmp_path: Path) -> None:
    repo, commit = make_example_repo(EXAMPLES / "crasher", tmp_path / "one")
    _, again = make_example_repo(EXAMPLES / "crasher", tmp_path / "two")
    assert re.fullmatch(r"[0-9a-f]{40}", commit) and commit == again
    tracked = subprocess.run(["git", "-C", str(repo), "ls-files"], capture_output=True, text=True, check=True).stdout.split()
    assert tracked == ["train.py", "trainarena.toml"]
    _, other = make_example_repo(EXAMPLES / "overtime", tmp_path / "three")
    assert other != commit


def test_an_existing_destination_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError):
        make_example_repo(EXAMPLES / "crasher", tmp_path / "taken")


@pytest.mark.parametrize("name", ["crasher", "overtime", "hostile"])
def test_examples_have_a_valid_manifest(name: str) -> None:
    manifest = tomllib.loads((EXAMPLES / name / MANIFEST_NAME).read_text())["trainarena"]
    assert manifest["contract"] == CONTRACT_VERSION
    assert (EXAMPLES / name / manifest["entrypoint"]).is_file()
