"""The honest example competitors, run as the platform runs them (the contract's argv and environment,
read-only-in-spirit inputs, SIGTERM at the budget, SIGKILL after the grace period) but not sandboxed:
isolation is tested in tests/execution. Each must exit 0 in time and leave a valid safetensors artifact
that differs from the base model.

All five start together on one small task so the module costs one budget of wall time, not five.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from trainarena.contract import RunSpec, TaskType, script_environment
from trainarena.settings import Settings
from trainarena.tasks import TaskDefinition, get_task_type

pytestmark = pytest.mark.slow

COMPETITORS = Path(__file__).resolve().parents[2] / "examples" / "competitors"
HONEST = ("baseline", "trl_defaults", "torchloop", "hotlr", "lowrank")
ADAPTER_SCRIPTS = {"lowrank"}
BUDGET_SECONDS = 60.0  # five runs share two cores: TRL's imports alone take ~10 s of CPU each
GRACE_SECONDS = 10.0
TASK_ROWS = 240
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


@dataclass(frozen=True)
class Run:
    exit_code: int | None
    wall_seconds: float
    terminated: bool  # got SIGTERM at the budget
    output_dir: Path
    stdout_tail: str  # the script's summary line is last
    stderr_tail: str


@pytest.fixture(scope="module")
def task(assets, tmp_path_factory):
    """A small instruct task prepared by the real plugin: train split + dataset_spec.json, hidden split."""
    root = tmp_path_factory.mktemp("honest-task")
    rows = assets.datasets["units"].read_text().splitlines()[:TASK_ROWS]
    source = root / "units.jsonl"
    source.write_text("\n".join(rows) + "\n")
    definition = TaskDefinition(
        name="units-small", task_type=TaskType.INSTRUCT, base_model=str(assets.tiny_llama),
        dataset={"source": str(source), **assets.dataset_fields["units"]}, budget_seconds=BUDGET_SECONDS,
    )
    prepared = get_task_type(TaskType.INSTRUCT).prepare(definition, root / "train", root / "hidden", Settings())
    return definition, prepared


@pytest.fixture(scope="module")
def runs(assets, task, tmp_path_factory) -> dict[str, Run]:
    _, prepared = task
    started = time.time()
    deadline = started + BUDGET_SECONDS
    processes = {}
    for name in HONEST:
        output = tmp_path_factory.mktemp(f"out-{name}")
        spec = RunSpec(run_id=name, task_type=TaskType.INSTRUCT, dataset_file=prepared.train_file.name,
                       budget_seconds=BUDGET_SECONDS, seed=3)
        argv = [sys.executable, str(COMPETITORS / name / "train.py"), "--task-type", "instruct",
                "--model", str(assets.tiny_llama), "--dataset", str(prepared.train_file),
                "--dataset-spec", str(prepared.train_file.parent / "dataset_spec.json"),
                "--output-dir", str(output), "--budget-seconds", f"{BUDGET_SECONDS:g}", "--seed", "3", "--devices", ""]
        env = script_environment(spec, deadline) | {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        process = subprocess.Popen(argv, env=env, cwd=COMPETITORS / name, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        processes[name] = (process, output)
    return {name: _supervise(process, output, started, deadline) for name, (process, output) in processes.items()}


def _supervise(process: subprocess.Popen, output: Path, started: float, deadline: float) -> Run:
    """Wait as the platform does: SIGTERM at the deadline, SIGKILL after the grace period."""
    terminated = False
    try:
        stdout, stderr = process.communicate(timeout=max(0.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        terminated = True
        process.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
    return Run(process.returncode, time.time() - started, terminated, output, (stdout or "")[-500:], (stderr or "")[-2000:])


@pytest.mark.parametrize("name", HONEST)
def test_exits_zero_within_the_budget(runs, name):
    run = runs[name]
    assert run.exit_code == 0, f"{name} exited {run.exit_code}:\n{run.stderr_tail}"
    assert run.wall_seconds <= BUDGET_SECONDS + GRACE_SECONDS


@pytest.mark.parametrize("name", HONEST)
def test_leaves_safetensors_only(runs, name):
    files = [p for p in runs[name].output_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files), [p.name for p in files]
    assert not [p.name for p in files if p.suffix in PICKLE_SUFFIXES]
    expected = "adapter_config.json" if name in ADAPTER_SCRIPTS else "config.json"
    assert (runs[name].output_dir / expected).is_file()


@pytest.mark.parametrize("name", sorted(set(HONEST) - ADAPTER_SCRIPTS))
def test_full_model_loads_and_its_weights_changed(runs, assets, name):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(runs[name].output_dir, use_safetensors=True)
    base = load_file(assets.tiny_llama / "model.safetensors")
    trained = model.state_dict()
    changed = [key for key, tensor in base.items() if not tensor.equal(trained[key])]
    assert changed, f"{name} saved the base model unchanged: {runs[name].stdout_tail}"


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # peft 0.21 on transformers 5
def test_adapter_loads_on_the_base_model_and_is_trained(runs, assets):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    adapter_dir = runs["lowrank"].output_dir
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(assets.tiny_llama), adapter_dir)
    weights = load_file(adapter_dir / "adapter_model.safetensors")
    lora_b = [t for key, t in weights.items() if "lora_B" in key]  # LoRA B starts at zero: non-zero = trained
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b)
    assert json.loads((adapter_dir / "adapter_config.json").read_text())["r"] == 2


def test_house_baseline_lowers_the_hidden_loss(runs, task, assets):
    definition, prepared = task
    plugin, settings = get_task_type(TaskType.INSTRUCT), Settings()
    base = plugin.evaluate(definition, prepared, assets.tiny_llama, settings)
    trained = plugin.evaluate(definition, prepared, runs["baseline"].output_dir, settings)
    assert base.score is not None and trained.score is not None, (base.failure, trained.failure)
    # Five runs share two cores here, so the baseline gets few steps; alone it does far better (benchmarks/quality.py).
    assert trained.score < 0.95 * base.score, runs["baseline"].stdout_tail
