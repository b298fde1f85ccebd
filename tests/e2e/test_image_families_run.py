"""End to end on an example task of each image model type (examples/tasks/image-person.toml, and the
-sdxl and -flux ones): `trainarena run` of the house image script through the real sandbox trains a LoRA
of the family's denoiser (the UNet, or Flux's transformer), saved in that pipeline's LoRA layout, and the
family's img2img evaluator scores it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.demo.example_repos import make_example_repo

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")]

ROOT = Path(__file__).resolve().parents[2]
TASKS = {"sd": ROOT / "examples" / "tasks" / "image-person.toml", "sdxl": ROOT / "examples" / "tasks" / "image-person-sdxl.toml", "flux": ROOT / "examples" / "tasks" / "image-style-flux.toml"}
DENOISER_PREFIX = {"sd": "unet.", "sdxl": "unet.", "flux": "transformer."}
BUDGET = 35  # seconds: imports and loading the pipeline take ~10-20 s of it on a busy 2-core machine


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_assets) -> Path:
    data = tmp_path / "data"
    (data / "cache" / "assets").mkdir(parents=True)
    (data / "cache" / "assets" / image_assets.root.name).symlink_to(image_assets.root, target_is_directory=True)
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(data))
    monkeypatch.setenv("TRAINARENA_SANDBOX__GRACE_SECONDS", "5")
    return data


@pytest.mark.parametrize("model_type", sorted(TASKS))
def test_the_house_script_trains_and_the_family_evaluator_scores(model_type: str, data_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    example = TASKS[model_type].read_text()
    assert f'model_type = "{model_type}"' in example and "budget_seconds = 45" in example
    task = tmp_path / TASKS[model_type].name  # the example, on a shorter budget
    task.write_text(example.replace("budget_seconds = 45", f"budget_seconds = {BUDGET}"))
    repo, _commit = make_example_repo(ROOT / "examples" / "competitors" / "image_baseline", tmp_path / "house")

    result = CliRunner().invoke(app, ["run", "--repo", str(repo), "--task", str(task), "--json", "--no-reference"])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)["runs"]
    assert record["status"] == "succeeded", record["failure_reason"]
    assert record["direction"] == "lower" and 0.0 < record["score"] < 1.0

    artifact = Path(record["artifact_path"])
    assert [p.name for p in artifact.iterdir()] == ["pytorch_lora_weights.safetensors"]
    lora = load_file(artifact / "pytorch_lora_weights.safetensors")
    assert lora and all(key.startswith(DENOISER_PREFIX[model_type]) for key in lora)
    stdout = (Path(record["log_path"]) / "stdout.log").read_text()
    steps = int(stdout.rsplit("image_baseline: ", 1)[1].split()[0])
    assert steps >= 1, stdout
    assert any(value.abs().sum() > 0 for key, value in lora.items() if "lora_B" in key)  # trained: B starts at zero
