"""Runs an example competitor script the way the platform calls it (the contract's argv and
environment, SIGKILL at budget + grace), unsandboxed, for the quality benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from trainarena.contract import RunSpec, TaskType, script_environment

GRACE_SECONDS = 10.0  # as the platform: SIGKILL this long after the budget
NOTE_CHARS = 120
CPU_CLOCK_DIR = Path(__file__).resolve().parent / "cpu_clock"  # its sitecustomize.py turns the clock
# On the CPU clock the script stops itself on its own CPU time; the wall clock only guards against a
# script that never stops, at this many budgets (a load of 20 makes a 30 s run take 600 s).
CPU_CLOCK_WALL_BUDGETS = 25


def run_contract_script(
    script: Path,
    task_type: TaskType,
    model_dir: Path,
    train_file: Path,
    output_dir: Path,
    budget: float,
    seed: int,
    extra_env: dict[str, str] | None = None,
    cpu_clock_threads: int | None = None,
) -> tuple[int | None, float, str]:
    """(exit code or None when killed, wall seconds, last line of its output). With ``cpu_clock_threads``
    the script's ``time.time()`` runs on its own CPU time over that many threads (cpu_clock/), so its
    budget is compute, not wall time: the same on a loaded machine as on an idle one."""
    spec = RunSpec(run_id=f"quality-{task_type.value}-{script.parent.name}", task_type=task_type,
                   dataset_file=train_file.name, budget_seconds=budget, seed=seed)
    script = script.resolve()
    argv = spec.argv(str(script))
    paths = {"--model": str(model_dir), "--dataset": str(train_file),
             "--dataset-spec": str(train_file.parent / "dataset_spec.json"), "--output-dir": str(output_dir)}
    argv = [sys.executable] + [paths.get(argv[i - 1], arg) for i, arg in enumerate(argv) if i > 0]
    started = time.time()
    env = script_environment(spec, started + budget) | {"PATH": os.environ.get("PATH", "/usr/bin:/bin")} | (extra_env or {})
    limit = budget + GRACE_SECONDS
    if cpu_clock_threads:
        env |= {"PYTHONPATH": str(CPU_CLOCK_DIR), "TRAINARENA_BENCH_CPU_CLOCK": f"{started}:{cpu_clock_threads}"}
        limit = budget * CPU_CLOCK_WALL_BUDGETS + GRACE_SECONDS
    process = subprocess.Popen(argv, env=env, cwd=script.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None, time.time() - started, "killed at budget + grace"
    lines = (stdout if process.returncode == 0 else stderr or "").strip().splitlines() or [""]
    return process.returncode, time.time() - started, lines[-1][:NOTE_CHARS]
