"""The house baseline on the dpo, grpo and chat task types, run as the platform runs it (contract
arguments and environment, a real budget): it exits 0 before the deadline with a safetensors model,
and on dpo and chat it scores better than the base model it started from.

Chat and GRPO train together, one thread each (OMP_NUM_THREADS=1), as the demo's two run slots do: on two
cores each has a core of its own, as it had alone. DPO then trains alone: its assertion (a better score
than the base model's) is the one that needs its steps, and sharing the machine's cores with a busy
neighbour cost it them. The module costs two budgets of wall time, not three. Each run's deadline
counts from its own start, as on the platform."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trainarena.contract import RunSpec, TaskType, script_environment
from trainarena.demo.text import examples_root
from trainarena.settings import DataRules, Settings
from trainarena.tasks import TaskDefinition, get_task_type

BUDGET = 25.0
TASK_TYPES = ("dpo", "chat", "grpo")
BATCHES = (("chat", "grpo"), ("dpo",))  # runs training together: at most one per core of a 2-core machine
# DPO trains on the unit conversions: the house learns them in any budget (1.77x the defaults,
# docs/benchmarks.md), while on preference_arithmetic's +-1 near misses a 25 s run on a slow machine
# can land either side of the base (it scored 0.6963 against ln 2 in CI), which tests the machine.
DATASET_OF = {"dpo": "preference_units_custom"}

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # the house scripts must stop before their budget


@dataclass(frozen=True)
class Run:
    task: TaskDefinition
    prepared: Any  # the plugin's PreparedTask
    output_dir: Path
    exit_code: int
    wall_seconds: float  # from its start to its exit
    stderr_tail: str


def _settings() -> Settings:
    return Settings(data=DataRules(grpo_eval_prompts=16, eval_cpu_threads=1))


def _train(assets, task_type: str, root: Path) -> Run:
    dataset = next(d for d in assets.datasets_of(task_type) if d.name == DATASET_OF.get(task_type, d.name))
    task = TaskDefinition(dataset.name, TaskType(task_type), str(assets.tiny_llama), dataset.dataset_spec(), BUDGET, 1)
    prepared = get_task_type(task_type).prepare(task, root / "inputs", root / "hidden", _settings())
    spec = RunSpec(run_id="t", task_type=TaskType(task_type), dataset_file=prepared.train_file.name, budget_seconds=BUDGET, seed=1)
    script = examples_root() / "baseline" / "train.py"
    argv = [sys.executable, str(script), "--task-type", task_type, "--model", str(assets.tiny_llama), "--dataset",
            str(prepared.train_file), "--dataset-spec", str(root / "inputs" / "dataset_spec.json"), "--output-dir",
            str(root / "out"), "--budget-seconds", f"{BUDGET:g}", "--seed", "1", "--devices", ""]
    started = time.time()
    env = script_environment(spec, started + BUDGET) | {"PATH": os.environ["PATH"], "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, env=env, cwd=script.parent, capture_output=True, text=True, timeout=BUDGET + 20)
    return Run(task, prepared, root / "out", done.returncode, time.time() - started, done.stderr[-2000:])


@pytest.fixture(scope="module")
def runs(assets, tmp_path_factory) -> dict[str, Run]:
    done = {}
    for batch in BATCHES:
        with ThreadPoolExecutor(len(batch)) as pool:
            futures = {task_type: pool.submit(_train, assets, task_type, tmp_path_factory.mktemp(f"baseline-{task_type}"))
                       for task_type in batch}
            done |= {task_type: future.result() for task_type, future in futures.items()}
    return done


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_baseline_trains_each_type_within_its_budget(runs, assets, task_type):
    run = runs[task_type]
    assert run.exit_code == 0, run.stderr_tail
    assert run.wall_seconds < BUDGET, f"finished {run.wall_seconds:.1f} s after start, past its {BUDGET} s budget"
    assert (run.output_dir / "model.safetensors").is_file() and not list(run.output_dir.glob("*.bin"))
    plugin, settings = get_task_type(task_type), _settings()
    trained = plugin.evaluate(run.task, run.prepared, run.output_dir, settings)
    assert trained.score is not None, trained.failure
    if task_type != "grpo":  # 25 s of GRPO on 2 cores is a step or two: only the mechanics are checked
        base = plugin.evaluate(run.task, run.prepared, assets.tiny_llama, settings)
        assert trained.score < base.score
