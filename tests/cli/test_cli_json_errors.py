"""A command asked for `--json` ends with JSON on stdout when it fails too (`{"ok": false, "error": ...}`),
so a script reading it never parses a traceback or a coloured message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_store import FinishedStore
from typer.testing import CliRunner

from trainarena.cli import app

FAILING = {
    "runs show of no run": (["runs", "show", "999", "--json"], {"run_id": 999}),
    "runs list of no tournament": (["runs", "list", "--tournament", "nope", "--json"], {"tournament": "nope"}),
    "runs list of no task": (["runs", "list", "--task", "nope", "--json"], {"task": "nope"}),
    "competitor show of nobody": (["competitor", "show", "nobody", "--json"], {"name": "nobody"}),
    "competitor remove of nobody": (["competitor", "remove", "nobody", "--json"], {"name": "nobody"}),
    "competitor add of a bad name": (["competitor", "add", "bad/name", "/no/such/repo", "a" * 40, "--json"], {"name": "bad/name"}),
    "weights publish at no time": (["weights", "publish", "--at", "garbage", "--json"], {}),
}


@pytest.mark.parametrize(("args", "context"), FAILING.values(), ids=FAILING.keys())
def test_a_failing_json_command_prints_json(runner: CliRunner, args: list[str], context: dict) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is False and body["error"] and context.items() <= body.items()


def test_weights_export_makes_the_output_folder(finished_store: FinishedStore, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["weights", "publish"]).exit_code == 0
    target = tmp_path / "exports" / "week-1" / "weights.json"
    result = runner.invoke(app, ["weights", "export", "--format", "json", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["id"] >= 1
