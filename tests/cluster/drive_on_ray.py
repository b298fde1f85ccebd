"""The driver process of the driver-kill test: drives a tournament on a Ray cluster with fake runs,
c2's first try slow, until the test kills it. Arguments: Ray address, data directory, tournament id."""

from __future__ import annotations

import sys
from pathlib import Path

import ray
import ray_fakes
from ray_fakes import FakeOnNode, fake_task

from trainarena.cluster.ray_executor import RayExecutor
from trainarena.orchestrator import drive
from trainarena.settings import Settings
from trainarena.store import open_store


def main(address: str, data_dir: str, tournament_id: str) -> None:
    ray.cloudpickle.register_pickle_by_value(ray_fakes)
    settings = Settings(data_dir=Path(data_dir), cluster={"executor": "ray", "address": address, "memory_per_run_mb": 256})
    with open_store(settings) as store:
        executor = RayExecutor(settings, FakeOnNode(seconds=0.3, slow_for="c2", slow_seconds=300))
        drive(store, int(tournament_id), task_source=fake_task, executor=executor, rules=settings.rules,
              weight_rules=settings.weights, work_dir=settings.work_dir, parallel=2)  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:4])
