"""A store whose tournament and customers' jobs were recorded (signed and logged) as they ran, in a
second and without training: a scripted tournament executor that leaves everything a real run leaves
(prepared splits, ``logs/sandbox.txt``, log files, artifact files, per-example scores), and the job
worker with tests/jobs' fake executor. The records tests and the records API tests share it."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "jobs"))

from job_support import FakeExecutor, customer, fast_settings, queued_job, uploaded, wait_for  # noqa: E402

from trainarena.contract import Direction, RunStatus, TaskType  # noqa: E402
from trainarena.engine.model import Stage  # noqa: E402
from trainarena.jobs import JobWorker  # noqa: E402
from trainarena.orchestrator import create_tournament, drive  # noqa: E402
from trainarena.records.recorder import recorder_for  # noqa: E402
from trainarena.runs import RunReport, RunRequest  # noqa: E402
from trainarena.settings import Settings  # noqa: E402
from trainarena.store import Store, add_competitor  # noqa: E402
from trainarena.store.models import Job, JobStatus  # noqa: E402
from trainarena.tasks.base import Evaluation, TaskDefinition  # noqa: E402

# Each entrant's registration (repo, commit, tree hash, source digest) and how its runs end.
ENTRANTS = {
    "alpha": {"repo_url": "https://github.com/x/alpha", "commit": "a" * 40, "tree_hash": "1" * 40, "source_digest": "d1" * 32},
    "beta": {"repo_url": "https://github.com/x/beta", "commit": "b" * 40, "tree_hash": "2" * 40, "source_digest": "d2" * 32},
    "crasher": {"repo_url": "https://github.com/x/crasher", "commit": "c" * 40, "tree_hash": "3" * 40, "source_digest": "d3" * 32},
}  # fmt: skip
FAILING = "crasher"
CRASH_REASON = "exited with code 1.\n--- stderr tail ---\nZeroDivisionError"
FIELD_MAPPING = {"field_instruction": "q", "field_output": "a"}
SANDBOX_LINES = ["backend=bwrap", "memory:cgroup 2 GiB", "pids:cgroup 256", "network:none"]
STARTED, FINISHED = 1_700_000_000.0, 1_700_000_012.5


def base_model(root: Path) -> Path:
    """A local base model folder (never loaded: the executor is scripted)."""
    model = root / "base-model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "model.safetensors").write_bytes(b"base weights")
    return model


class RecordedExecutor:
    """Every run prepares its task's splits (a train file, a hidden folder) and writes its logs and
    ``sandbox.txt`` as the sandbox would; ``crasher`` fails, the others leave two artifact files and a
    score with per-example values. ``calls`` counts executions (a resumed drive must not repeat one)."""

    def __init__(self, data_root: Path) -> None:
        self.data_root = data_root
        self.calls = 0

    def execute(self, request: RunRequest) -> RunReport:
        self.calls += 1
        task = request.task
        splits = self.data_root / "prepared" / task.name
        (splits / "hidden").mkdir(parents=True, exist_ok=True)
        _write_whole(splits / "train.jsonl", '{"q": "1+1", "a": "2"}\n' * 9)
        _write_whole(splits / "hidden" / "hidden.jsonl", '{"q": "2+2", "a": "4"}\n')
        prepared = {"train_file": str(splits / "train.jsonl"), "hidden_file": str(splits / "hidden" / "hidden.jsonl"),
                    "train_rows": 9, "hidden_rows": 1}  # fmt: skip
        logs = request.run_dir / "logs"
        logs.mkdir(parents=True)
        (logs / "stdout.log").write_text(f"{request.competitor.name} starting\n")
        (logs / "stderr.log").write_text("step 1 loss 2.0\n")
        (logs / "sandbox.txt").write_text("\n".join(SANDBOX_LINES) + "\n")
        times = {"started_at": STARTED, "finished_at": FINISHED, "log_path": logs, "prepared_paths": prepared}
        if request.competitor.name == FAILING:
            return RunReport(RunStatus.FAILED, failure_reason=CRASH_REASON, **times)
        artifact = request.run_dir / "output"
        artifact.mkdir()
        (artifact / "adapter_model.safetensors").write_bytes(f"weights {request.run_id}".encode())
        (artifact / "adapter_config.json").write_text('{"r": 8}')
        bonus = 0.1 if request.competitor.name == "alpha" else 0.0
        per_example = (1.0 - bonus, 2.0 - bonus)
        return RunReport(RunStatus.SUCCEEDED, artifact_path=artifact, artifact_digest="ab" * 32,
                         evaluation=Evaluation(sum(per_example) / 2, Direction.LOWER, per_example=per_example), **times)  # fmt: skip


def _write_whole(path: Path, text: str) -> None:
    """Written aside, then renamed, as the pipeline prepares a task: two runs of one task at once (two
    slots) never let the recorder hash a split half rewritten by the other."""
    aside = path.parents[1] / f".{path.name}.{threading.get_ident()}"  # outside the split folders hashed
    aside.write_text(text)
    os.replace(aside, path)


def task_source(model: Path):  # noqa: ANN201
    def make(kind: str, stage: Stage, match_id: str, index: int, seed: int) -> TaskDefinition:
        return TaskDefinition(f"instruct-{match_id}-{index}", TaskType.INSTRUCT, str(model),
                              {"source": "qa.jsonl", **FIELD_MAPPING}, 30.0, seed)  # fmt: skip

    return make


def add_entrants(store: Store) -> int:
    """The entrants and a tournament of theirs (not started); its id."""
    with store.transaction() as session:
        for name, registration in ENTRANTS.items():
            add_competitor(session, name=name, entrypoint="train.py", **registration)
        return create_tournament(session, name="week-1", kind="text", seed=3, entrants=list(ENTRANTS)).id


def drive_recorded(settings: Settings, store: Store, tournament_id: int, executor: RecordedExecutor,
                   max_steps: int | None = None):  # noqa: ANN201
    """Drive with the recorder the settings ask for (none when records are off)."""
    return drive(store, tournament_id, task_source=task_source(base_model(settings.data_dir.parent)), executor=executor,
                 rules=settings.rules, weight_rules=settings.weights, work_dir=settings.work_dir, max_steps=max_steps,
                 recorder=recorder_for(settings))  # fmt: skip


@dataclass(frozen=True)
class RecordedJobs:
    mine: str  # a job of customer "acme"
    theirs: str  # a job of customer "globex"
    acme: int  # API key ids
    globex: int


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    """The jobs tests' fast settings (a local base model) with any other sections given."""
    fast = fast_settings(data_dir)
    return fast.model_copy(update=overrides) if overrides else fast


def run_jobs(settings: Settings, store: Store, owners: tuple[int, int] | None = None) -> RecordedJobs:
    """One finished job for each of two customers (``owners``' key ids, else two new customers
    acme and globex), run by the job worker with a fake executor."""
    acme, globex = owners or (customer(store, "acme"), customer(store, "globex"))
    mine = queued_job(settings, store, acme, uploaded(settings, store, acme), validation_share=0.2, seed=7)
    theirs = queued_job(settings, store, globex, uploaded(settings, store, globex))
    worker = JobWorker(settings, store=store, executor=FakeExecutor())
    worker.start()
    try:
        for job_id in (mine, theirs):
            wait_for(lambda job_id=job_id: _finished(store, job_id), what=f"job {job_id} to finish")
    finally:
        worker.stop()
    return RecordedJobs(mine, theirs, acme, globex)


def _finished(store: Store, job_id: str) -> bool:
    with store.session() as session:
        return session.get_one(Job, job_id).status in JobStatus.FINISHED
