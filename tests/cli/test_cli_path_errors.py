"""A path or a name a command cannot use ends it with one line, ``error: --opt VALUE: what is wrong``,
exit 2, and with ``--json`` a JSON error naming it, as `run --repo` and `run --task` do: typer's own
path checks (``exists``, ``file_okay``, ``dir_okay``) printed a usage box instead (QA)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from one_line_error import one_line_error
from typer.testing import CliRunner

from trainarena.cli import app

TASK = 'name = "t"\ntype = "instruct"\nbase_model = "tiny"\nbudget_seconds = 30\n[dataset]\nsource = "d.jsonl"\n'


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "a-folder").mkdir()
    return {"file": tmp_path / "a-file", "folder": tmp_path / "a-folder", "missing": tmp_path / "nowhere"}


CASES = {
    "demo examples file": (["demo", "--examples", "{file}"], "--examples {file}: a file, not a folder"),
    "demo examples missing": (["demo", "--examples", "{missing}"], "--examples {missing}: no such folder"),
    "verify a file": (["verify", "{file}"], "bundle {file}: a file, not a folder"),
    "verify nothing": (["verify", "{missing}"], "bundle {missing}: no such folder"),
    "verify key folder": (["verify", "{folder}", "--key", "{folder}"], "--key {folder}: a folder, not a file"),
    "verify key missing": (["verify", "{folder}", "--key", "{missing}"], "--key {missing}: no such file"),
    "keys public to a folder": (["keys", "public", "--output", "{folder}"], "--output {folder}: a folder, not a file"),
}


@pytest.mark.parametrize(("args", "says"), CASES.values(), ids=CASES.keys())
def test_a_bad_path_is_one_line_naming_it(runner: CliRunner, paths: dict[str, Path], args: list[str], says: str) -> None:
    line = one_line_error(runner, [arg.format(**paths) for arg in args])
    assert line == "error: " + says.format(**paths)


def test_a_bad_path_asked_for_json_is_a_json_error(runner: CliRunner, paths: dict[str, Path]) -> None:
    result = runner.invoke(app, ["verify", str(paths["folder"]), "--key", str(paths["missing"]), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"ok": False, "bundle": str(paths["folder"]), "error": f"--key {paths['missing']}: no such file"}
    result = runner.invoke(app, ["demo", "--examples", str(paths["file"]), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"ok": False, "examples": str(paths["file"]), "error": f"--examples {paths['file']}: a file, not a folder"}


def test_an_unknown_competitor_is_one_line_naming_it(runner: CliRunner, tmp_path: Path) -> None:
    task = tmp_path / "task.toml"
    task.write_text(TASK)
    line = one_line_error(runner, ["run", "--competitor", "nobody", "--task", str(task)])
    assert line == "error: --competitor nobody: no such competitor; register it with `trainarena competitor add`"
    result = runner.invoke(app, ["run", "--competitor", "nobody", "--task", str(task), "--json"])
    assert result.exit_code == 2 and json.loads(result.stdout)["competitor"] == "nobody"
