"""One tournament driver as its own process, for the concurrent-driver tests (run as a script).

It waits for a gate file (so several start at the same moment), opens the store (migrating a fresh
one), sets up the tournament under a store-wide lock if nobody has, and drives it, waiting while
another driver holds the lease. Every execution is appended to a shared file as
``start|end RUN ATTEMPT PID``; ``--hang`` makes executions hang (to be killed there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.model import Stage
from trainarena.orchestrator import create_tournament, drive
from trainarena.runs import RunReport, RunRequest
from trainarena.settings import LeaseRules, Settings
from trainarena.store import add_competitor, get_competitor, get_tournament_by_name, named_lock, open_store_url
from trainarena.tasks.base import Evaluation, TaskDefinition

ENTRANTS = [f"c{i}" for i in range(5)]


def task_source(kind: str, stage: Stage, match_id: str, index: int, seed: int) -> TaskDefinition:
    return TaskDefinition(f"{match_id}-{index}", TaskType.INSTRUCT, "tiny", {"seed": seed}, 1.0, seed)


class RecordingExecutor:
    """c0 is best (loss = the competitor's number); each execution is recorded in ``log``."""

    def __init__(self, log: Path, hang: bool) -> None:
        self.log = log
        self.hang = hang

    def _record(self, what: str, request: RunRequest) -> None:
        with self.log.open("a") as handle:  # one short append per line: whole lines, even across processes
            handle.write(f"{what} {request.run_id} {request.attempt} {os.getpid()}\n")

    def execute(self, request: RunRequest) -> RunReport:
        if self.hang:  # output and logs half written before the start line the test waits for to kill it
            for part in ("output", "logs"):
                (request.run_dir / part).mkdir(parents=True)
                (request.run_dir / part / "partial").write_text("half\n")
        self._record("start", request)
        if self.hang:
            time.sleep(600)  # killed here
        time.sleep(0.05)
        loss = float(request.competitor.name.removeprefix("c"))
        log = request.run_dir / "stdout.log"
        log.write_text("trained\n")
        report = RunReport(RunStatus.SUCCEEDED, time.time(), time.time(), log, request.run_dir, "ab" * 32,
                           evaluation=Evaluation(loss, Direction.LOWER))
        self._record("end", request)
        return report


def _set_up(store) -> int:
    with named_lock(store.engine, "test-set-up"), store.transaction() as session:
        for name in ENTRANTS:
            if get_competitor(session, name) is None:
                add_competitor(session, name=name, repo_url="u", commit="0" * 40, tree_hash=name,
                               source_digest=name, entrypoint="train.py")
        existing = get_tournament_by_name(session, "t")
        if existing is not None:
            return existing.id
        return create_tournament(session, name="t", kind="text", seed=3, entrants=ENTRANTS).id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("executions", type=Path)
    parser.add_argument("--gate", type=Path)
    parser.add_argument("--ready", type=Path)
    parser.add_argument("--lease-seconds", type=float, default=60.0)
    parser.add_argument("--heartbeat-seconds", type=float, default=10.0)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    if args.ready is not None:
        args.ready.touch()
    while args.gate is not None and not args.gate.exists():
        time.sleep(0.001)
    settings = Settings(data_dir=args.work_dir)
    lease = LeaseRules(lease_seconds=args.lease_seconds, heartbeat_seconds=args.heartbeat_seconds, wait_poll_seconds=0.2)
    with open_store_url(args.url) as store:
        tournament_id = _set_up(store)
        finished = drive(
            store, tournament_id, task_source=task_source, executor=RecordingExecutor(args.executions, args.hang),
            rules=settings.rules, weight_rules=settings.weights, work_dir=settings.work_dir, parallel=args.parallel,
            lease_rules=lease, wait=True, on_wait=lambda holder: print(f"waiting for {holder.describe()}", file=sys.stderr),
        )
    print(json.dumps({"pid": os.getpid(), "champion": None if finished is None else finished.champion}))


if __name__ == "__main__":
    main()
