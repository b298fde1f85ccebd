"""The house baseline on the dpo, grpo and chat task types, run as the platform runs it (contract
arguments and environment, a real budget): it exits 0 before the deadline with a safetensors model,
and on dpo and chat it scores better than the base model it started from."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from trainarena.contract import RunSpec, TaskType, script_environment
from trainarena.demo.text import examples_root
from trainarena.settings import DataRules, Settings
from trainarena.tasks import TaskDefinition, get_task_type

BUDGET = 25.0


@pytest.mark.slow
@pytest.mark.parametrize("task_type", ["dpo", "chat", "grpo"])
def test_baseline_trains_each_type_within_its_budget(assets, tmp_path, task_type):
    dataset = assets.datasets_of(task_type)[0]
    task = TaskDefinition(dataset.name, TaskType(task_type), str(assets.tiny_llama), dataset.dataset_spec(), BUDGET, 1)
    settings = Settings(data=DataRules(grpo_eval_prompts=16, eval_cpu_threads=1))
    plugin = get_task_type(task_type)
    prepared = plugin.prepare(task, tmp_path / "inputs", tmp_path / "hidden", settings)
    spec = RunSpec(run_id="t", task_type=TaskType(task_type), dataset_file=prepared.train_file.name, budget_seconds=BUDGET, seed=1)
    script = examples_root() / "baseline" / "train.py"
    argv = [sys.executable, str(script), "--task-type", task_type, "--model", str(assets.tiny_llama), "--dataset",
            str(prepared.train_file), "--dataset-spec", str(tmp_path / "inputs" / "dataset_spec.json"), "--output-dir",
            str(tmp_path / "out"), "--budget-seconds", f"{BUDGET:g}", "--seed", "1", "--devices", ""]
    started = time.time()
    env = script_environment(spec, started + BUDGET) | {"PATH": os.environ["PATH"], "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, env=env, cwd=script.parent, capture_output=True, text=True, timeout=BUDGET + 20)
    wall = time.time() - started
    assert done.returncode == 0, done.stderr[-2000:]
    assert wall < BUDGET, f"finished {wall:.1f} s after start, past its {BUDGET} s budget"
    assert (tmp_path / "out" / "model.safetensors").is_file() and not list((tmp_path / "out").glob("*.bin"))
    trained = plugin.evaluate(task, prepared, tmp_path / "out", settings)
    assert trained.score is not None, trained.failure
    if task_type != "grpo":  # 25 s of GRPO on 2 cores is a step or two: only the mechanics are checked
        base = plugin.evaluate(task, prepared, assets.tiny_llama, settings)
        assert trained.score < base.score
