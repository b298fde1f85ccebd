"""`trainarena demo` with ``cluster.executor = ray``: the demo's own code path (set-up, drive, the
real pipeline: task preparation, the bwrap sandbox, artifact checks, hidden-split evaluation) with
every run a Ray task on the two worker nodes of a local cluster (conftest), played to a champion.
Stand-in competitors that copy the base model keep each run to seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stand_ins import copier
from trainarena.cli import app
from trainarena.demo.example_repos import make_example_repo

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "competitors"


def test_the_demo_plays_to_a_champion_with_its_runs_on_ray_workers(ray_cluster, assets, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    examples = tmp_path / "examples"
    for name in ("baseline", "trl_defaults"):
        copier(examples / name)
    make_example_repo(EXAMPLES / "crasher", examples / "crasher")  # `demo --examples` plays git repositories
    data = tmp_path / "data"
    (data / "cache").mkdir(parents=True)
    (data / "cache" / "assets").symlink_to(assets.root.parent, target_is_directory=True)
    for name, value in {"DATA_DIR": str(data), "SANDBOX__GRACE_SECONDS": "1", "TASK_MIX__DPO": "0", "TASK_MIX__GRPO": "0",
                        "CLUSTER__EXECUTOR": "ray", "CLUSTER__ADDRESS": ray_cluster.address,
                        "CLUSTER__MEMORY_PER_RUN_MB": "256"}.items():  # fmt: skip
        monkeypatch.setenv(f"TRAINARENA_{name}", value)

    result = CliRunner().invoke(app, ["demo", "--examples", str(examples), "--budget", "20", "--json"])

    assert result.exit_code == 0, result.output
    assert "sandbox: bwrap on Ray nodes" in result.stderr
    board = json.loads(result.stdout)
    standings = {s["competitor"]: s for s in board["leaderboard"]}
    assert board["champion"] == "trl_defaults" and set(standings) == {"baseline", "crasher", "trl_defaults"}
    assert any(line["stage"] == "boss" for line in board["runs"])
    assert standings["baseline"]["runs_ok"] == standings["baseline"]["runs"] > 0
    assert "deliberate failure" in " ".join(standings["crasher"]["failures"].values())
    scores = [line["score"] for line in board["runs"] if line["status"] == "succeeded"]
    assert scores and all(0 < score < 20 for score in scores)
    # Artifacts and logs written on the nodes are on the operator's storage, beside each run's result.json.
    folders = list((data / "runs").glob("tournament-*/run-*/attempt-*"))
    assert len(folders) == len(board["runs"])
    assert all((folder / "logs" / "stderr.log").is_file() and (folder / "result.json").is_file() for folder in folders)
