"""`trainarena run --repo PATH` on a folder that cannot be run says what is wrong with the folder the
user has, in one line, and exits 2: no traceback, and no "commit's tree" where there is no commit
(the QA found that wording for plain folders). A --repo that is a file or nothing, and a --task that is
missing, a folder or not a task file, get the same one line naming the path (they got typer's usage box)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from one_line_error import one_line_error
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.contract import SEED_MAX
from trainarena.settings import Settings

MANIFEST = '[trainarena]\ncontract = 1\nentrypoint = "train.py"\ntask_types = ["instruct"]\n'


def _empty(root: Path) -> None:
    root.mkdir()


def _plain(root: Path) -> None:  # files, but neither a manifest nor git
    root.mkdir()
    (root / "notes.py").write_text("X = 1\n")


def _file(root: Path) -> None:
    root.write_text("print('a script, not its folder')\n")


def _missing(root: Path) -> None:
    pass


def _no_entrypoint(root: Path) -> None:
    root.mkdir()
    (root / "trainarena.toml").write_text(MANIFEST)
    subprocess.run(["git", "-C", str(root), "init", "-q"], check=True)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_file, "a file, not a folder; give the folder that holds your trainarena.toml"),
        (_missing, "no such folder; give the folder that holds your trainarena.toml"),
        (_empty, "the folder {root} (not a git repository) is empty; give the folder that holds your trainarena.toml"),
        (_plain, "no trainarena.toml at the root of the folder {root} (not a git repository); add one"),
        (_no_entrypoint, "entrypoint 'train.py' named in trainarena.toml is not in the working tree {root}"),
    ],
    ids=["file", "missing", "empty", "not-git-no-manifest", "git-no-entrypoint"],
)
def test_a_folder_that_cannot_run_gets_one_specific_error(runner: CliRunner, tmp_path: Path, make, says: str) -> None:
    root = tmp_path / "mine"
    make(root)
    task = tmp_path / "task.toml"
    task.write_text(TASK)
    line = one_line_error(runner, ["run", "--repo", str(root), "--task", str(task)])
    assert line.startswith(f"error: --repo {root}: ") and says.format(root=root.resolve()) in line
    assert "commit's tree" not in line


TASK = 'name = "t"\ntype = "instruct"\nbase_model = "tiny"\nbudget_seconds = 30\n[dataset]\nsource = "d.jsonl"\n'


@pytest.mark.parametrize(
    ("name", "make", "says"),
    [
        ("missing.toml", lambda path: None, "cannot read the task file (No such file or directory)"),
        ("folder", Path.mkdir, "cannot read the task file (Is a directory)"),
        ("notes.txt", lambda path: path.write_text(TASK), "task files are .toml or .json, not '.txt'"),
        ("broken.toml", lambda path: path.write_text("name = "), "not valid TOML"),
    ],
    ids=["missing", "folder", "not-toml-or-json", "invalid"],
)
def test_a_task_that_cannot_be_read_gets_one_line_naming_it(runner: CliRunner, tmp_path: Path, name: str, make, says: str) -> None:
    task = tmp_path / name
    make(task)
    _plain(tmp_path / "mine")
    line = one_line_error(runner, ["run", "--repo", str(tmp_path / "mine"), "--task", str(task)])
    assert line.startswith(f"error: --task {task}: {says}")


def test_a_bad_repo_asked_for_json_is_a_json_error(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "task.toml").write_text(TASK)
    _file(tmp_path / "train.py")
    result = runner.invoke(app, ["run", "--repo", str(tmp_path / "train.py"), "--task", str(tmp_path / "task.toml"), "--json"])
    body = json.loads(result.stdout)
    assert result.exit_code == 2 and body["ok"] is False and body["repo"] == str(tmp_path / "train.py")
    assert body["error"] == f"--repo {tmp_path / 'train.py'}: a file, not a folder; give the folder that holds your trainarena.toml"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ([], "--competitor or --repo: give one: --competitor NAME (registered) or --repo PATH (a working tree)"),
        (["--competitor", "c", "--repo", "."], "--competitor and --repo: give one, not both: --competitor NAME (registered) or --repo PATH (a working tree)"),
        (["--repo", ".", "--seeds", "999"], "--seeds 999: at most {most} (settings: workbench.max_seeds)"),
        (["--repo", ".", "--seeds", "0"], "--seeds 0: at least 1"),
    ],
    ids=["neither", "both", "too-many-seeds", "no-seeds"],
)
def test_scripts_and_seeds_given_wrong_get_one_line(runner: CliRunner, tmp_path: Path, options: list[str], says: str) -> None:
    """As a bad path does: one line naming the option, exit 2, JSON with --json (they got typer's usage box)."""
    (tmp_path / "task.toml").write_text(TASK)
    args = ["run", "--task", str(tmp_path / "task.toml"), *options]
    message = says.format(most=Settings().workbench.max_seeds)
    assert one_line_error(runner, args) == f"error: {message}"
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 2 and json.loads(result.stdout) == {"ok": False, "error": message}


def test_seeds_past_the_largest_seed_get_one_line(runner: CliRunner, tmp_path: Path) -> None:
    """Run k takes the task's seed + k: a task at the largest seed has room for one run, not two."""
    (tmp_path / "task.toml").write_text(TASK.replace("budget_seconds = 30\n", f"budget_seconds = 30\nseed = {SEED_MAX - 1}\n"))
    _plain(tmp_path / "mine")
    args = ["run", "--repo", str(tmp_path / "mine"), "--task", str(tmp_path / "task.toml"), "--seeds", "3"]
    assert one_line_error(runner, args) == f"error: --seeds 3: the task's seed {SEED_MAX - 1} leaves room for 2 (seeds end at {SEED_MAX})"
