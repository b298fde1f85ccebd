"""End to end on an example task of each image model type (examples/tasks/image-person.toml, and the
-sdxl and -flux ones): `trainarena run` of the house image script through the real sandbox trains a LoRA
of the family's denoiser (the UNet, or Flux's transformer), saved in that pipeline's LoRA layout, and the
family's img2img evaluator scores it.

The three `trainarena run` processes go two at a time, each run held to one CPU (sandbox.cpus_per_run),
as the demo's two run slots are: the module costs two budgets of wall time, not three."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from trainarena.demo.example_repos import make_example_repo

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")]

ROOT = Path(__file__).resolve().parents[2]
TASKS = {"sd": ROOT / "examples" / "tasks" / "image-person.toml", "sdxl": ROOT / "examples" / "tasks" / "image-person-sdxl.toml", "flux": ROOT / "examples" / "tasks" / "image-style-flux.toml"}
DENOISER_PREFIX = {"sd": "unet.", "sdxl": "unet.", "flux": "transformer."}
BUDGET = 35  # seconds: imports and loading the pipeline take ~10-20 s of it on a busy 2-core machine
AT_ONCE = 2  # runs training together, one CPU each: one per core of a 2-core machine


def _run(model_type: str, folder: Path, image_assets, database_url: str | None) -> subprocess.CompletedProcess:
    """`trainarena run --json` of the house image script on the family's example task, in a data folder of its
    own (and on its own database under --store postgresql)."""
    data = folder / "data"
    (data / "cache" / "assets").mkdir(parents=True)
    (data / "cache" / "assets" / image_assets.root.name).symlink_to(image_assets.root, target_is_directory=True)
    example = TASKS[model_type].read_text()
    assert f'model_type = "{model_type}"' in example and "budget_seconds = 45" in example
    task = folder / TASKS[model_type].name  # the example, on a shorter budget
    task.write_text(example.replace("budget_seconds = 45", f"budget_seconds = {BUDGET}"))
    repo, _commit = make_example_repo(ROOT / "examples" / "competitors" / "image_baseline", folder / "house")
    environment = {**os.environ, "TRAINARENA_DATA_DIR": str(data), "TRAINARENA_SANDBOX__GRACE_SECONDS": "5",
                   "TRAINARENA_SANDBOX__CPUS_PER_RUN": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    if database_url:
        environment["TRAINARENA_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "trainarena.cli", "run", "--repo", str(repo), "--task", str(task), "--json",
                           "--no-reference"], env=environment, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def runs(image_assets, tmp_path_factory, store_databases) -> Iterator[dict[str, subprocess.CompletedProcess]]:
    folders = {model_type: tmp_path_factory.mktemp(f"image-{model_type}") for model_type in sorted(TASKS)}
    databases = {model_type: store_databases.fresh() if store_databases else None for model_type in folders}
    with ThreadPoolExecutor(AT_ONCE) as pool:
        futures = {model_type: pool.submit(_run, model_type, folder, image_assets, databases[model_type])
                   for model_type, folder in folders.items()}
        done = {model_type: future.result() for model_type, future in futures.items()}
    yield done
    for database in databases.values():
        if database:
            store_databases.release(database)


@pytest.mark.parametrize("model_type", sorted(TASKS))
def test_the_house_script_trains_and_the_family_evaluator_scores(model_type: str, runs) -> None:
    from safetensors.torch import load_file

    result = runs[model_type]
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
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
