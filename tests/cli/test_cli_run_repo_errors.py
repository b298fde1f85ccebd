"""`trainarena run --repo PATH` on a folder that cannot be run says what is wrong with the folder the
user has, in one line, and exits 2: no traceback, and no "commit's tree" where there is no commit
(the QA found that wording for plain folders)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainarena.cli import app

MANIFEST = '[trainarena]\ncontract = 1\nentrypoint = "train.py"\ntask_types = ["instruct"]\n'


def _empty(root: Path) -> None:
    root.mkdir()


def _plain(root: Path) -> None:  # files, but neither a manifest nor git
    root.mkdir()
    (root / "notes.py").write_text("X = 1\n")


def _no_entrypoint(root: Path) -> None:
    root.mkdir()
    (root / "trainarena.toml").write_text(MANIFEST)
    subprocess.run(["git", "-C", str(root), "init", "-q"], check=True)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_empty, "the folder {root} (not a git repository) is empty; give the folder that holds your trainarena.toml"),
        (_plain, "no trainarena.toml at the root of the folder {root} (not a git repository); add one"),
        (_no_entrypoint, "entrypoint 'train.py' named in trainarena.toml is not in the working tree {root}"),
    ],
    ids=["empty", "not-git-no-manifest", "git-no-entrypoint"],
)
def test_a_folder_that_cannot_run_gets_one_specific_error(runner: CliRunner, tmp_path: Path, make, says: str) -> None:
    root = tmp_path / "mine"
    make(root)
    task = tmp_path / "task.toml"
    task.write_text('name = "t"\ntype = "instruct"\nbase_model = "tiny"\nbudget_seconds = 30\n[dataset]\nsource = "d.jsonl"\n')
    result = runner.invoke(app, ["run", "--repo", str(root), "--task", str(task)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "commit's tree" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: --repo {root}: ") and says.format(root=root.resolve()) in line
