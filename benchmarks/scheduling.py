"""Scheduling overhead of the orchestrator: a whole tournament of 1,000 simulated entrants driven
through ``orchestrator.drive`` against a real store (SQLite in a scratch folder) with a fake executor
that returns each run's report at once, measured side by side with 100 entrants (``--large``,
``--small``: other sizes). Everything the
wall time holds is the platform's own work per run (claiming it in the store, its attempt row, storing
its report and score, creating rounds, the engine's decisions); the per-run ratio between the two
sizes shows whether that work grows with the tournament.

Usage: ``.venv/bin/python -m benchmarks.scheduling [--json] [--parallel N] [--small N] [--large N]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.model import Stage
from trainarena.orchestrator import create_tournament, drive
from trainarena.runs import RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.store import add_competitor, open_store
from trainarena.tasks.base import Evaluation, TaskDefinition


def _task(kind: str, stage: Stage, match_id: str, index: int, seed: int) -> TaskDefinition:
    return TaskDefinition(f"{stage}-{match_id}-{index}", TaskType.INSTRUCT, "simulated", {"seed": seed}, 60.0, seed)


class InstantExecutor:
    """Every run succeeds at once with a loss fixed by the competitor and the task."""

    def __init__(self) -> None:
        self.runs = 0

    def execute(self, request: RunRequest) -> RunReport:
        self.runs += 1
        digest = hashlib.sha256(f"{request.competitor.name}:{request.task.seed}".encode()).digest()
        loss = 2.0 + int.from_bytes(digest[:4], "big") / 2**32
        now = time.time()
        return RunReport(RunStatus.SUCCEEDED, now, now, artifact_digest=digest.hex(), evaluation=Evaluation(loss, Direction.LOWER))


def simulate(entrants: int, parallel: int, scratch: Path) -> dict[str, Any]:
    settings = Settings(data_dir=scratch / f"entrants-{entrants}")
    names = [f"sim{i:05d}" for i in range(entrants)]
    with open_store(settings) as store:
        with store.transaction() as session:
            for name in names:
                add_competitor(session, name=name, repo_url=f"https://example.org/{name}.git", commit="f" * 40,
                               tree_hash=f"tree-{name}", source_digest=f"digest-{name}", entrypoint="train.py")  # fmt: skip
            tournament_id = create_tournament(session, name="simulated", kind="text", seed=3, entrants=names).id
        executor = InstantExecutor()
        started = time.perf_counter()
        finished = drive(store, tournament_id, task_source=_task, executor=executor, rules=settings.rules,
                         weight_rules=settings.weights, work_dir=settings.work_dir, parallel=parallel)  # fmt: skip
        wall = time.perf_counter() - started
    return {"entrants": entrants, "runs": executor.runs, "wall_seconds": wall, "seconds_per_run": wall / executor.runs,
            "champion": None if finished is None else finished.champion}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--parallel", type=int, default=1, help="runs the driver claims and executes at once")
    parser.add_argument("--small", type=int, default=100, help="entrants of the small tournament")
    parser.add_argument("--large", type=int, default=1_000, help="entrants of the large tournament")
    args = parser.parse_args(argv)
    if not 2 <= args.small < args.large:
        parser.error("need 2 <= --small < --large")
    with tempfile.TemporaryDirectory(prefix="trainarena-scheduling-") as scratch:
        results = [simulate(n, args.parallel, Path(scratch)) for n in (args.small, args.large)]
    small, large = results
    data = {"parallel": args.parallel, "sizes": results,
            "per_run_ratio_large_to_small": large["seconds_per_run"] / small["seconds_per_run"]}  # fmt: skip
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{'entrants':>9}{'runs':>7}{'wall s':>9}{'ms/run':>9}  champion")
    for row in results:
        print(f"{row['entrants']:>9}{row['runs']:>7}{row['wall_seconds']:>9.1f}{row['seconds_per_run'] * 1000:>9.1f}  {row['champion']}")
    print(f"per-run overhead at {large['entrants']:,} / at {small['entrants']:,}: {data['per_run_ratio_large_to_small']:.2f} (1.0 = flat)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
