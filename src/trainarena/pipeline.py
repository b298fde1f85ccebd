"""One run, end to end: prepare the task's data, run the competitor's script in the sandbox, check
the artifact, score it on the hidden split. :class:`SandboxedExecutor` is the orchestrator's real
``RunExecutor``; ``trainarena run`` uses it outside a tournament too, so a competitor tests against the
exact path a tournament takes.

Layout of one run directory (host side)::

    <run_dir>/inputs/   model/ (hard links to the base model), train split, dataset_spec.json, task.json
    <run_dir>/output/   the artifact (the only directory the script can write)
    <run_dir>/logs/     stdout.log, stderr.log (written by the platform, outside the sandbox)

The data dir's ``runs`` folder, which holds the run directories, is made 0700 (``private_work_dir``).
Once the script has ended its output gets fixed modes before it is checked (``check_output``). The
output is kept only when its artifact passed the checks (the run succeeded, or its evaluation failed:
the signed record names those files); a run that failed in the sandbox (a crash, its budget, its
/output cap) or whose artifact was refused loses its ``output/`` as soon as its report is made, and
keeps ``logs/`` and ``inputs/``.

The submission folder is sealed before the sandbox binds it, once it holds the code the run's record
names, and checked unchanged once the script ended (``submissions.seal``); a run whose folder changed
raises ``SubmissionChanged`` before anything of it is scored, stored or signed.

Prepared task data is cached by the task definition's digest (``task_preparation``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import struct
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trainarena.contract import SANDBOX_INPUTS, RunSpec, RunStatus
from trainarena.execution import Backend, DevicePool, SandboxJob, check_output, gpus_for, remove_tree
from trainarena.execution.disk import full_disk_reason, os_error_text
from trainarena.execution.limits import output_cap
from trainarena.execution.supervise import STOPPED_REASON, current_stop_event
from trainarena.runs import (
    LOGS_DIR,
    SUBMISSION_CHANGED_REASON,
    CompetitorInfo,
    DiskFull,
    PendingEvaluation,
    RunNotStarted,
    RunReport,
    RunRequest,
    SubmissionChanged,
    record_timings,
)
from trainarena.settings import Settings
from trainarena.submissions import RegistrationError, checkout_path, register
from trainarena.submissions.seal import Seal, changes, discard, is_cached, seal_submission
from trainarena.task_preparation import TaskPreparer
from trainarena.tasks import budget_problem, get_task_type
from trainarena.tasks.base import DatasetError, PreparedTask, TaskDefinition
from trainarena.tasks.builtin_assets import model_name_for_script
from trainarena.tasks.child_evaluation import evaluation_scope
from trainarena.tasks.text.hub_rows import HUB_UNREACHABLE, hub_cut_off
from trainarena.tasks.warm_evaluation import WarmEvaluator

logger = logging.getLogger(__name__)


def resolve_base_model(base_model: str) -> Path:
    """A local model directory as is; otherwise a Hugging Face id, fetched (or found in the local HF
    cache when offline) by ``snapshot_download``."""
    local = Path(base_model).expanduser()
    if local.is_dir():
        return local.resolve()
    if hub_cut_off():
        raise DatasetError(f"base model {base_model!r}: no local folder of that name, and {HUB_UNREACHABLE}")
    from huggingface_hub import snapshot_download  # only for hub ids: keeps local runs import-light

    try:
        return Path(snapshot_download(base_model, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]))
    except Exception as error:  # noqa: BLE001 - any hub failure becomes one clear message
        raise DatasetError(f"base model {base_model!r} is neither a local directory nor available from the hub: {error}") from error


def parameter_count(model_dir: Path) -> int:
    """Parameters of a safetensors model, from the file headers alone (no tensor is loaded)."""
    total = 0
    for path in model_dir.rglob("*.safetensors"):
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        total += sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")
    return total


def visible_gpus(dev: Path = Path("/dev")) -> list[int]:
    """The GPUs this machine offers the runs: its NVIDIA device nodes, narrowed by the platform's own
    CUDA_VISIBLE_DEVICES when set (no torch import, no CUDA context in the platform process)."""
    found = sorted(int(p.name.removeprefix("nvidia")) for p in dev.glob("nvidia[0-9]*") if p.name[6:].isdigit())
    allowed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if allowed is None:
        return found
    wanted = {int(d) for d in allowed.split(",") if d.strip().isdigit()}
    return [d for d in found if d in wanted]


def link_tree(source: Path, destination: Path) -> None:
    """Mirror ``source`` into ``destination`` with hard links (copies across file systems): a
    multi-GB base model costs no disk per run, and the sandbox binds it read-only anyway."""
    for path in sorted(source.rglob("*")):
        target = destination / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path.resolve(), target)
        except OSError:
            shutil.copy2(path, target)


def private_work_dir(work_dir: Path, run_dir: Path) -> None:
    """Make the data dir's ``runs`` folder (``work_dir``) the platform's alone (0700) when ``run_dir``
    lies under it: what scripts leave there (written as the platform's uid under bwrap) is then out of
    other local users' reach, between the script's end and its artifact's digest too. The sandboxes need
    no path through it: bwrap and docker bind each run's folders by their host paths, as the platform."""
    if not run_dir.absolute().is_relative_to(work_dir.absolute()):
        return
    work_dir.mkdir(parents=True, exist_ok=True)
    if work_dir.stat().st_mode & 0o777 != 0o700:
        work_dir.chmod(0o700)


def thread_env(cpus: int) -> dict[str, str]:
    """Thread caps for the numeric libraries, so runs played side by side share the cores fairly.
    Passive OpenMP waiting: spinning idle threads made small-model steps 20-40x slower on a busy
    2-core machine (measured), and cost nothing on an idle one."""
    caps = {name: str(cpus) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")} if cpus else {}
    return {"OMP_WAIT_POLICY": "PASSIVE", **caps}


def unsupported_reason(submission_dir: Path, task: TaskDefinition) -> str | None:
    """Why a script is not run on a task: its manifest's ``task_types`` leave the task's type out."""
    from trainarena.contract import MANIFEST_NAME
    from trainarena.submissions.manifest import parse_manifest

    path = submission_dir / MANIFEST_NAME
    if not path.is_file():  # registration guarantees one; a hand-made checkout may have none
        return None
    manifest = parse_manifest(path.read_text(encoding="utf-8"))
    if manifest.supports(task.task_type):
        return None
    declared = ", ".join(t.value for t in manifest.task_types or ())
    # No square brackets: the reason is printed through rich, which would take them for markup.
    return f"the script does not support {task.task_type.value} tasks (its {MANIFEST_NAME} declares task_types: {declared}); not run"


class SandboxedExecutor:
    """``StagedExecutor``: prepare -> sandboxed run -> artifact check (``train``), then hidden-split
    evaluation (``finish`` of what ``train`` returned). Each step's seconds go into the report's
    ``timings`` and the run folder's ``timings.json``; evaluations share one warm worker
    (``DataRules.eval_warm_worker``)."""

    def __init__(self, settings: Settings, backend: Backend, gpus: list[int] | None = None) -> None:
        self._settings = settings
        self._backend = backend
        self._devices = DevicePool(visible_gpus() if gpus is None else gpus)
        self._preparer = TaskPreparer(settings)
        rules = settings.data
        self._evaluator = WarmEvaluator(rules.eval_worker_max_evaluations) if rules.eval_warm_worker else None

    @property
    def name(self) -> str:
        """Where runs execute: the backend's name."""
        return self._backend.name

    def execute(self, request: RunRequest) -> RunReport:
        return _complete(self.train(request))

    def train(self, request: RunRequest) -> RunReport | PendingEvaluation:
        return self.train_task(request.competitor, request.task, request.run_dir, request.run_name)

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        """One script on one task, inside or outside a tournament (``trainarena run``)."""
        return _complete(self.train_task(competitor, task, run_dir, run_name))

    def train_task(
        self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str
    ) -> RunReport | PendingEvaluation:
        """The run up to its checked artifact: a final report, or the evaluation still to do."""
        started, clock = time.time(), _Clock()
        timings: dict[str, float] = {}
        if (problem := budget_problem(task.budget_seconds, self._settings.data)) is not None:
            # Task files and stored tasks refuse such a budget; a round made by an older build may still
            # hold one, and its script would run with no deadline. The last check, before anything starts.
            reason = f"task: {problem}, which gives the run no deadline (or no time); add the task again with a finite budget in range"
            return _timed(RunReport(RunStatus.FAILED, started, time.time(), failure_reason=reason), run_dir, timings)
        try:
            submission, sealed = self._sealed_submission(competitor)
        except RegistrationError as error:  # the repository is gone: this competitor's run fails, nothing else
            return _timed(RunReport(RunStatus.FAILED, started, time.time(), failure_reason=f"submission: {error}"), run_dir, timings)
        unsupported = unsupported_reason(submission, task)
        if unsupported:  # recorded as a clear failure, without starting a run that can only fail
            return _timed(RunReport(RunStatus.FAILED, started, time.time(), failure_reason=unsupported), run_dir, timings)
        try:
            prepared = self._preparer.prepare(task)
            model = resolve_base_model(task.base_model)
        except DatasetError as error:
            # The task, not the competitor, is broken: every competitor fails it alike, with the reason.
            return _timed(RunReport(RunStatus.FAILED, started, time.time(), failure_reason=f"task: {error}"), run_dir, timings)
        needed = gpus_for(parameter_count(model), task.task_type, self._settings.resources)
        devices = self._devices.acquire(needed, stop=current_stop_event())
        if devices is None:  # stopped (a cancelled job, a lost lease) while other runs held the GPUs
            reason = f"{STOPPED_REASON}: it was still waiting for {needed} GPU(s), and never started"
            return _timed(RunReport(RunStatus.FAILED, started, time.time(), failure_reason=reason), run_dir, timings)
        try:
            try:
                job = self._stage(competitor, submission, task, prepared, model, devices, run_dir, run_name)
            except OSError as error:  # the platform's disk, not the competitor: the drive stops, naming it
                raise RunNotStarted(f"could not prepare the inputs of run {run_name}: {os_error_text(error, run_dir)}") from None
            timings["prepare"] = clock.lap()
            result = self._backend.run(job)
        finally:
            self._devices.release(devices)
        if result.status != RunStatus.SUCCEEDED and (full := full_disk_reason(output_cap(job, self._settings.sandbox))):
            raise DiskFull(f"run {run_name} not counted: {full}")  # the platform's failure, not the script's
        self._check_sealed(sealed, job)  # before anything of the run is scored, stored or signed
        # The sandbox's own clock runs from the script's start to its last process's exit: the rest of
        # the backend's call is setting up and tearing down the sandbox.
        timings |= {"script": result.wall_seconds, "sandbox": max(0.0, clock.lap() - result.wall_seconds)}
        report = dict(
            started_at=result.started_at,
            finished_at=result.finished_at,
            log_path=result.stderr_path.parent,
            prepared_paths=prepared.to_json(),  # kept on the task: where its data is, what was dropped
        )
        if result.status != RunStatus.SUCCEEDED:  # over its cap, timed out, crashed: nothing of it is scored or kept
            remove_tree(job.output_dir)
            return _timed(RunReport(result.status, failure_reason=result.failure_reason, **report), run_dir, timings)
        check = check_output(job.output_dir, task.task_type, self._settings.artifacts)  # modes settled first
        timings["artifact_check"] = clock.lap()
        if not check.ok:
            remove_tree(job.output_dir)
            return _timed(RunReport(RunStatus.INVALID, failure_reason=f"artifact: {check.reason}", **report), run_dir, timings)
        scoring = _Scoring(self, task, prepared, run_dir, timings, dict(report, artifact_path=job.output_dir,
                                                                         artifact_digest=check.digest))
        # On a GPU host the evaluator takes a GPU too: scoring while the next script trains would share
        # it with a run whose budget is wall time, so there the slot scores before it takes another run.
        return scoring.finish() if self._devices.has_gpus else scoring

    def warm_up(self, task: TaskDefinition) -> None:
        """Have the evaluation worker ready (libraries imported) before the first artifact of ``task``'s
        kind: called on the scoring thread while the first scripts train."""
        if self._evaluator is not None:
            self._evaluator.warm_up(task.task_type.value, task.base_model, self._settings.data)

    def end_scoring(self) -> None:
        """This thread scores no more (a drive's scoring thread, at the drive's end): its worker goes."""
        if self._evaluator is not None:
            self._evaluator.close_mine()

    def score(self, scoring: _Scoring) -> RunReport:
        """``finish`` of a run's pending evaluation."""
        with evaluation_scope(self._evaluator) as times:
            evaluation = get_task_type(scoring.task.task_type).evaluate(scoring.task, scoring.prepared,
                                                                        scoring.report["artifact_path"], self._settings)
        timings = scoring.timings | {"eval_startup": times.startup, "eval_compute": times.compute}
        if evaluation.score is None:
            return _timed(RunReport(RunStatus.INVALID, failure_reason=f"evaluation: {evaluation.failure}",
                                    evaluation=evaluation, **scoring.report), scoring.run_dir, timings)
        return _timed(RunReport(RunStatus.SUCCEEDED, evaluation=evaluation, **scoring.report), scoring.run_dir, timings)

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        """The untrained base model scored on the hidden split as if it were the artifact: the floor a
        script should rise above (no sandbox: nothing submitted runs)."""
        started = time.time()
        try:
            prepared = self._preparer.prepare(task)
            model = resolve_base_model(task.base_model)
        except DatasetError as error:
            return RunReport(RunStatus.FAILED, started, time.time(), failure_reason=f"task: {error}")
        with evaluation_scope(self._evaluator):
            evaluation = get_task_type(task.task_type).evaluate(task, prepared, model, self._settings)
        status = RunStatus.SUCCEEDED if evaluation.score is not None else RunStatus.INVALID
        reason = None if evaluation.score is not None else f"evaluation: {evaluation.failure}"
        return RunReport(status, started, time.time(), artifact_path=model, failure_reason=reason,
                         evaluation=evaluation, prepared_paths=prepared.to_json())  # fmt: skip

    def _stage(
        self,
        competitor: CompetitorInfo,
        submission: Path,
        task: TaskDefinition,
        prepared: PreparedTask,
        model: Path,
        devices: tuple[int, ...],
        run_dir: Path,
        run_name: str,
    ) -> SandboxJob:
        """Lay out the run directory and describe the sandboxed job."""
        private_work_dir(self._settings.work_dir, run_dir)
        inputs, output, logs = (run_dir / name for name in ("inputs", "output", LOGS_DIR))
        for directory in (inputs, output, logs):
            directory.mkdir(parents=True, exist_ok=True)
        link_tree(model, inputs / "model")
        shutil.copy2(prepared.train_file, inputs / prepared.train_file.name)
        (inputs / "dataset_spec.json").write_text(json.dumps(prepared.dataset_spec, indent=2, sort_keys=True))
        spec = RunSpec(
            run_id=run_name,
            task_type=task.task_type,
            dataset_file=prepared.train_file.name,
            budget_seconds=task.budget_seconds,
            seed=task.seed,
            devices=devices,
            base_model_name=model_name_for_script(task.base_model, self._settings.assets_dir, str(SANDBOX_INPUTS / "model")),
        )
        (inputs / "task.json").write_text(spec.to_json())
        rules = self._settings.sandbox
        return SandboxJob(
            spec=spec,
            entrypoint=competitor.entrypoint,
            submission_dir=submission,
            inputs_dir=inputs,
            output_dir=output,
            log_dir=logs,
            grace_seconds=rules.grace_seconds,
            memory_limit_mb=rules.memory_limit_mb,
            log_max_bytes=rules.log_max_bytes,
            extra_env=thread_env(rules.cpus_per_run),
        )

    def _submission_dir(self, competitor: CompetitorInfo) -> Path:
        """The exported tree of the registered commit (fetched again if the cache was cleared), or the
        folder an unregistered script runs from."""
        if competitor.submission_dir is not None:
            return competitor.submission_dir
        checkout = checkout_path(self._settings, competitor.commit)
        if not checkout.is_dir():
            register(self._settings, name=competitor.name, repo=competitor.repo_url, commit=competitor.commit)
        return checkout

    def _sealed_submission(self, competitor: CompetitorInfo) -> tuple[Path, Seal]:
        """The submission folder, sealed for the run once it holds the code the run's record names
        (``submissions.seal``). A registered commit's checkout that does not is exported again, once; a
        working tree's snapshot that does not is removed, and SubmissionChanged raised (only a new
        snapshot of the tree can serve); a folder that cannot be read is a RegistrationError."""
        for again in (False, True):
            folder = self._submission_dir(competitor)
            sealed, problem = seal_submission(self._settings.cache_dir, folder, competitor.tree_hash)
            if sealed is not None and problem is None:
                return folder, sealed
            if not is_cached(self._settings.cache_dir, folder):
                raise RegistrationError(f"{folder}: {problem}")
            if again or competitor.submission_dir is not None:
                break
            logger.warning("the checkout %s is not the tree of %s (%s): exported again", folder, competitor.commit, problem)
        raise SubmissionChanged(f"{SUBMISSION_CHANGED_REASON} before the run started: {folder} was no longer the code "
                                f"of {competitor.name} ({problem}); it was removed, to be made afresh, and nothing ran")

    def _check_sealed(self, sealed: Seal, job: SandboxJob) -> None:
        """Raise SubmissionChanged, with nothing of the run kept, when its submission folder changed since
        it was sealed: its record would name code other than what ran. A cached copy is removed."""
        changed = changes(sealed)
        if changed is None:
            return
        remove_tree(job.output_dir)
        if is_cached(self._settings.cache_dir, sealed.folder):
            discard(sealed.folder)
        raise SubmissionChanged(f"{SUBMISSION_CHANGED_REASON} during the run ({changed}): nothing of this try is scored "
                                "as that code, and the cached copy was removed, to be made afresh")

    def close(self) -> None:
        if self._evaluator is not None:
            self._evaluator.close()
        self._backend.close()


@dataclass(frozen=True)
class _Scoring:
    """``PendingEvaluation``: a run whose artifact passed its checks, to be scored by ``executor``."""

    executor: SandboxedExecutor
    task: TaskDefinition
    prepared: PreparedTask
    run_dir: Path
    timings: dict[str, float]
    report: dict[str, Any]  # the RunReport's fields so far

    def finish(self) -> RunReport:
        return self.executor.score(self)


class _Clock:
    """Seconds since the last lap (monotonic)."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    def lap(self) -> float:
        now = time.monotonic()
        seconds, self._last = now - self._last, now
        return seconds


def _timed(report: RunReport, run_dir: Path, timings: dict[str, float]) -> RunReport:
    """``report`` with its steps' seconds, which also go into the run folder's timings file (a run that
    failed before any step, e.g. a task type its script declines, gets no folder for nothing)."""
    if timings:
        record_timings(run_dir, timings)
    return replace(report, timings=timings)


def _complete(trained: RunReport | PendingEvaluation) -> RunReport:
    return trained if isinstance(trained, RunReport) else trained.finish()
