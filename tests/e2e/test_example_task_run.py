"""End to end, as a newcomer starts: the house baseline (examples/competitors/baseline) registered as
a competitor and run with `trainarena run` on a ready task file (examples/tasks), through the real
sandbox and the hidden-split evaluator, beats the untrained base model on the same task."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.demo.example_repos import make_example_repo

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")]

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "examples" / "tasks" / "instruct-arithmetic.toml"
# Hands back the base model unchanged: its score is the base model's own, the reference to beat.
COPIER = textwrap.dedent(
    """
    import argparse, shutil
    parser = argparse.ArgumentParser()
    parser.add_argument("--model"); parser.add_argument("--output-dir")
    args, _ = parser.parse_known_args()
    shutil.copytree(args.model, args.output_dir, dirs_exist_ok=True)
    """
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, assets) -> Path:
    data = tmp_path / "data"
    (data / "cache").mkdir(parents=True)
    (data / "cache" / "assets").symlink_to(assets.root.parent, target_is_directory=True)  # the session's build
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(data))
    monkeypatch.setenv("TRAINARENA_SANDBOX__GRACE_SECONDS", "1")
    return data


def register(runner: CliRunner, name: str, source: Path, repos: Path) -> None:
    repo, commit = make_example_repo(source, repos / name)
    added = runner.invoke(app, ["competitor", "add", name, str(repo), commit])
    assert added.exit_code == 0, added.output


def run(runner: CliRunner, competitor: str) -> dict:
    """The run's record (`runs show --json`); references are left out: the copier below is the base model's."""
    result = runner.invoke(app, ["run", "--competitor", competitor, "--task", str(TASK), "--json", "--no-reference"])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)["runs"]
    return record


def test_baseline_on_the_example_instruct_task_beats_the_base_model(data_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    copier = tmp_path / "copier"
    copier.mkdir()
    (copier / "train.py").write_text(COPIER)
    (copier / "trainarena.toml").write_text('[trainarena]\ncontract = 1\nentrypoint = "train.py"\n')
    register(runner, "baseline", ROOT / "examples" / "competitors" / "baseline", tmp_path / "repos")
    register(runner, "base-model", copier, tmp_path / "repos")

    trained, untrained = run(runner, "baseline"), run(runner, "base-model")

    for report in (trained, untrained):
        assert report["status"] == "succeeded" and report["task"] == "instruct-arithmetic"
        assert report["direction"] == "lower" and report["score"] > 0
        assert Path(report["artifact_path"]).is_relative_to(data_dir)
    assert trained["score"] < 0.9 * untrained["score"], (trained["score"], untrained["score"])
