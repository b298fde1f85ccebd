"""The Ray executor on this machine: the same tournament on 1 and on 2 Ray workers, and the dispatch
overhead per run on Ray against local, each pair measured side by side in one run.

1. Scaling. A local cluster (a head that runs nothing, worker nodes of one CPU each) plays the demo's
   tournament (its set-up, task source and the real pipeline: preparation, the bwrap sandbox, artifact
   checks, hidden-split evaluation) with stand-in competitors that copy the base model and then burn
   a fixed amount of CPU (``--train-seconds``, in place of training), first with one worker node, then
   with a second one added; both drive two runs at once. The wall-time ratio is the figure
   (target <= 0.6 with two workers).
2. Dispatch overhead. ``--runs`` runs that do nothing, executed one after another: locally (the call
   alone), as bare Ray tasks (submit, schedule, return the report) and as Ray tasks that also build
   the sandboxed executor on the node, as every real run there does; per run, the difference between
   the first and the last is what Ray adds to every run.

Usage: ``.venv/bin/python -m benchmarks.ray_scaling [--json] [--train-seconds S] [--runs N]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

import benchmarks.ray_scaling as this_module
from trainarena.assets import ensure_assets
from trainarena.cluster.node import NodeExecutor, SandboxedOnNode
from trainarena.cluster.ray_executor import RayExecutor
from trainarena.demo.example_repos import commit_as_repository
from trainarena.demo.text import demo_task_source, set_up_demo
from trainarena.orchestrator import drive
from trainarena.runs import CompetitorInfo, RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.store import open_store, tournament_runs
from trainarena.tasks.base import TaskDefinition

MB = 1024 * 1024
NODE = {"num_cpus": 1, "object_store_memory": 80 * MB, "memory": 2048 * MB}
STAND_INS = ("baseline", "torchloop", "instruct_only", "crasher", "trl_defaults")  # four entrants and the champion
# Copies the base model (a valid artifact), then burns CPU for the time given, as training would.
STAND_IN = textwrap.dedent(
    """
    import argparse, shutil, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--model"); parser.add_argument("--output-dir")
    args, _ = parser.parse_known_args()
    shutil.copytree(args.model, args.output_dir, dirs_exist_ok=True)
    end, x = time.process_time() + {seconds}, 0
    while time.process_time() < end:
        x = (x * 31 + 7) % 1000003
    """
)
MANIFEST = '[trainarena]\ncontract = 1\nentrypoint = "train.py"\ntask_types = ["instruct"]\n'
TARGET_RATIO = 0.6


def _stand_ins(root: Path, seconds: float) -> Path:
    for name in STAND_INS:
        (root / name).mkdir(parents=True)
        (root / name / "train.py").write_text(STAND_IN.format(seconds=seconds) + f"STAND_IN_FOR = {name!r}\n")
        (root / name / "trainarena.toml").write_text(MANIFEST)
        commit_as_repository(root / name, f"stand-in {name}")  # `demo --examples` plays git repositories
    return root


def _settings(data: Path, assets_dir: Path, address: str) -> Settings:
    (data / "cache").mkdir(parents=True)
    (data / "cache" / "assets").symlink_to(assets_dir, target_is_directory=True)
    return Settings(data_dir=data, sandbox={"grace_seconds": 1, "cpus_per_run": 1}, task_mix={"dpo": 0, "grpo": 0},
                    cluster={"executor": "ray", "address": address, "memory_per_run_mb": 256})  # fmt: skip


def play_tournament(scratch: Path, assets_dir: Path, examples: Path, address: str, budget: float) -> dict[str, Any]:
    """The demo's tournament on the cluster as it is now; its wall time and runs."""
    settings = _settings(scratch, assets_dir, address)
    assets = ensure_assets(assets_dir)
    with open_store(settings) as store:
        setup = set_up_demo(store, settings, seed=1, examples=examples)
        executor = RayExecutor(settings, SandboxedOnNode())
        started = time.monotonic()
        try:
            finished = drive(store, setup.tournament_id, task_source=demo_task_source(assets, budget, settings.task_mix),
                             executor=executor, rules=settings.rules, weight_rules=settings.weights,
                             work_dir=settings.work_dir, parallel=2)  # fmt: skip
        finally:
            executor.close()
        wall = time.monotonic() - started
        with store.session() as session:
            runs = tournament_runs(session, setup.tournament_id)
            in_runs = sum(run.wall_seconds or 0.0 for run in runs)
            count = len(runs)
    return {"wall_seconds": wall, "runs": count, "champion": finished.champion if finished else None,
            "sandboxed_seconds": in_runs}  # fmt: skip


@dataclass(frozen=True)
class NothingOnNode:
    """A ``NodeExecutorFactory`` that runs nothing; with ``build_sandbox`` it first builds the real
    sandboxed executor on the node, as every real run does. What is left is the cost of dispatching."""

    build_sandbox: bool = True

    def __call__(self, settings: Settings, gpus: list[int]) -> NodeExecutor:
        if self.build_sandbox:
            SandboxedOnNode()(settings, gpus).close()
        return Nothing()


class Nothing:
    def execute(self, request: RunRequest) -> RunReport:
        raise NotImplementedError("the benchmark dispatches evaluations only")

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        raise NotImplementedError("the benchmark dispatches evaluations only")

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        from trainarena.contract import RunStatus

        return RunReport(RunStatus.SUCCEEDED, 0.0, 0.0)

    def close(self) -> None:
        """Nothing is held."""


def _seconds_per_run(executor: Any, task: TaskDefinition, runs: int) -> float:
    executor.evaluate_base_model(task)  # a first task starts a Ray worker process: not counted
    started = time.perf_counter()
    for _ in range(runs):
        executor.evaluate_base_model(task)
    return (time.perf_counter() - started) / runs


def dispatch_overhead(scratch: Path, assets_dir: Path, address: str, runs: int) -> dict[str, float]:
    """Seconds per no-op run: called locally, as a bare Ray task, and as a Ray task that builds the
    sandboxed executor on its node (what every real run on Ray does)."""
    settings = _settings(scratch, assets_dir, address)
    task = demo_task_source(ensure_assets(assets_dir), 1.0, settings.task_mix)("text", None, "m", 0, 1)  # type: ignore[arg-type]
    measured = {"local_seconds_per_run": _seconds_per_run(NothingOnNode(build_sandbox=False)(settings, []), task, runs)}
    for key, factory in (("ray_bare_seconds_per_run", NothingOnNode(build_sandbox=False)),
                         ("ray_seconds_per_run", NothingOnNode())):  # fmt: skip
        executor = RayExecutor(settings, factory)
        try:
            measured[key] = _seconds_per_run(executor, task, runs)
        finally:
            executor.close()
    return {**measured, "ray_overhead_seconds_per_run": measured["ray_seconds_per_run"] - measured["local_seconds_per_run"]}


def measure(train_seconds: float, runs: int, budget: float) -> dict[str, Any]:
    assets_dir = ensure_assets(Settings().assets_dir).root.parent
    ray.cloudpickle.register_pickle_by_value(this_module)  # the no-op factory: workers cannot import benchmarks/
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * MB})
    cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    try:
        with tempfile.TemporaryDirectory(prefix="trainarena-ray-bench-") as scratch:
            root = Path(scratch)
            examples = _stand_ins(root / "examples", train_seconds)
            overhead = dispatch_overhead(root / "dispatch", assets_dir, cluster.address, runs)
            one = play_tournament(root / "one-worker", assets_dir, examples, cluster.address, budget)
            cluster.add_node(**NODE)
            cluster.wait_for_nodes()
            two = play_tournament(root / "two-workers", assets_dir, examples, cluster.address, budget)
    finally:
        ray.shutdown()
        cluster.shutdown()
    return {"train_seconds": train_seconds, "one_worker": one, "two_workers": two,
            "wall_ratio_two_to_one": two["wall_seconds"] / one["wall_seconds"], "target_ratio": TARGET_RATIO,
            "dispatch": overhead, "dispatch_runs": runs}  # fmt: skip


def report(data: dict[str, Any]) -> list[str]:
    one, two, dispatch = data["one_worker"], data["two_workers"], data["dispatch"]
    ratio = data["wall_ratio_two_to_one"]
    verdict = "OK" if ratio <= data["target_ratio"] else "OVER TARGET"
    return [
        f"the demo's tournament, {one['runs']} runs, stand-ins burning {data['train_seconds']:g} s of CPU each",
        f"{'Ray workers':<14}{'wall s':>9}{'in sandboxes s':>16}  champion",
        f"{'1':<14}{one['wall_seconds']:>9.1f}{one['sandboxed_seconds']:>16.1f}  {one['champion']}",
        f"{'2':<14}{two['wall_seconds']:>9.1f}{two['sandboxed_seconds']:>16.1f}  {two['champion']}",
        f"wall ratio 2 workers / 1: {ratio:.2f} (target <= {data['target_ratio']}): {verdict}",
        f"dispatch of a no-op run, {data['dispatch_runs']} one after another:",
        f"  local {dispatch['local_seconds_per_run']:.4f} s/run, Ray {dispatch['ray_seconds_per_run']:.4f} s/run "
        f"(a bare Ray task {dispatch['ray_bare_seconds_per_run']:.4f}, the rest builds the sandbox on the node)",
        f"  Ray adds {dispatch['ray_overhead_seconds_per_run']:.4f} s/run",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--train-seconds", type=float, default=4.0, help="CPU seconds each stand-in burns in place of training")
    parser.add_argument("--runs", type=int, default=40, help="no-op runs dispatched for the overhead measure")
    parser.add_argument("--budget", type=float, default=30.0, help="training budget of every run (seconds)")
    args = parser.parse_args()
    data = measure(args.train_seconds, args.runs, args.budget)
    print(json.dumps(data, indent=2) if args.json else "\n".join(report(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
