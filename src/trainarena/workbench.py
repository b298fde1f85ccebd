"""``trainarena run``'s engine: a script on a task outside any tournament, through the tournament's own
executor, recorded in the store, and compared with the task's references.

A script is a registered competitor or a working tree (snapshotted and checked as registration would,
``submissions.worktree``). The references of a task are the untrained base model scored as the
artifact and the house script (``examples/competitors/baseline``, ``image_baseline`` for image tasks)
run on the same task and budget (image tasks have the house script alone: ``reference_origins``).
Each is computed the first time a task (``runs.task_key``) is run, stored as a run of origin
``base_model`` or ``house``, and reused from the store afterwards; the house script's once per seed,
as a run is compared with the house run on its own seed. With several seeds, run k uses the task
file's seed + k, the house script is run on the same seeds, and the runs are compared with it seed by
seed (paired differences, ``engine.comparison``).
Every run ends with its ``result.json`` in its folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from trainarena.attempts import store_report
from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.demo.text import examples_root
from trainarena.engine.comparison import LeadInterval, SeedSpread, lead, lead_interval, seed_spread, widened_by_seeds
from trainarena.engine.scores import has_shares
from trainarena.execution.output_tree import remove_tree
from trainarena.pipeline import unsupported_reason
from trainarena.records.recorder import recorder_for
from trainarena.reporting.run_detail import write_result_json
from trainarena.runs import CompetitorInfo, RunNotStarted, RunReport, SubmissionChanged, definition_json, stopped_report, task_key
from trainarena.settings import Settings
from trainarena.store import Run, Store, get_competitor, named_lock
from trainarena.store.adhoc import WorkingTree, cached_reference, start_adhoc_run, withdraw_adhoc_run
from trainarena.store.models import EvaluationRow, RunOrigin
from trainarena.submissions import RegistrationError, checkout_path
from trainarena.submissions.worktree import WorktreeSnapshot, snapshot_digest, snapshot_problem, snapshot_worktree
from trainarena.tasks.base import TaskDefinition

__all__ = ["Script", "SeedsSummary", "Workbench", "house_script_dir", "registered_script", "unsupported", "worktree_script"]

# What the workbench says while it works: one line per step that takes a while.
Say = Callable[[str], None]


class WorkbenchExecutor(Protocol):
    """What the workbench needs of ``pipeline.SandboxedExecutor`` (tests pass a fake)."""

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport: ...

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport: ...


class RunStopped(KeyboardInterrupt):
    """Ctrl-C stopped run ``run_id``, which is stored as failed with the logs it wrote: still a
    KeyboardInterrupt, carrying the run the shell names on its way out."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"run {run_id} stored as failed")
        self.run_id = run_id


@dataclass(frozen=True)
class Script:
    """A script to run: a registered competitor (by name), or a checked snapshot of a working tree."""

    info: CompetitorInfo
    competitor: str | None  # the registered name; None for a working tree
    tree: WorkingTree | None


def registered_script(info: CompetitorInfo) -> Script:
    return Script(info, info.name, None)


def worktree_script(settings: Settings, path: Path, name: str | None = None) -> Script:
    """Snapshot and check the working tree at ``path`` (RegistrationError names what is wrong)."""
    snapshot: WorktreeSnapshot = snapshot_worktree(settings, path)
    info = CompetitorInfo(
        name=name or snapshot.path.name,
        repo_url=str(snapshot.path),
        commit=snapshot.commit or "",
        tree_hash=snapshot.source_digest,
        entrypoint=snapshot.entrypoint,
        submission_dir=snapshot.snapshot_dir,
    )
    tree = WorkingTree(str(snapshot.path), snapshot.commit, snapshot.dirty, str(snapshot.snapshot_dir))
    return Script(info, None, tree)


def house_script_dir(settings: Settings, task_type: TaskType) -> Path:
    """The house script of a task type (settings.workbench, else the bundled examples)."""
    rules = settings.workbench
    if task_type == TaskType.IMAGE:
        return rules.image_house_script or examples_root() / "image_baseline"
    return rules.house_script or examples_root() / "baseline"


def unsupported(settings: Settings, script: Script, task: TaskDefinition) -> str | None:
    """Why the script's manifest refuses ``task`` (None if it may run), known before anything runs. A
    registered competitor's manifest is read from its checkout; one the cache lost is not fetched for
    this: its run fetches it again and refuses there."""
    folder = script.info.submission_dir or checkout_path(settings, script.info.commit)
    return unsupported_reason(Path(folder), task)


def reference_origins(task_type: TaskType) -> tuple[str, ...]:
    """The references a task type has. An image artifact is a LoRA, which the base model is not, so
    image tasks are compared with the house script alone."""
    if task_type == TaskType.IMAGE:
        return (RunOrigin.HOUSE,)
    return (RunOrigin.BASE_MODEL, RunOrigin.HOUSE)


@dataclass(frozen=True)
class SeedsSummary:
    """Several seeds of one script: the spread of its scores and its lead over the house script."""

    spread: SeedSpread
    house_lead: LeadInterval | None  # None without a house score on a seed the script scored on too
    house_scores: tuple[float | None, ...] = ()  # the house script's score on each seed (None: failed)
    pairs: int = 0  # seeds on which both scored: what the interval resamples


class Workbench:
    def __init__(self, settings: Settings, store: Store, executor: WorkbenchExecutor, say: Say | None = None) -> None:
        self._settings = settings
        self._store = store
        self._executor = executor
        self._say = say or (lambda _message: None)
        self._recorder = recorder_for(settings)

    def references(self, task: TaskDefinition) -> dict[str, int]:
        """The run ids of the task's references (the house script's on the task's seed), computing (and
        storing) those not computed yet. A reference that failed is stored as such and tried again next time."""
        return {origin: self._reference(origin, task) for origin in reference_origins(task.task_type)}

    def house_runs(self, task: TaskDefinition, seeds: int) -> list[int]:
        """The house script's run on each of the script's seeds (the task's seed + k), computed (and
        stored) the first time a seed of the task is asked for, reused from the store afterwards."""
        return [self._reference(RunOrigin.HOUSE, replace(task, seed=task.seed + k)) for k in range(seeds)]

    def _reference(self, origin: str, task: TaskDefinition) -> int:
        """The stored reference of ``origin`` on ``task``, or a new one. The house script's runs are one per
        seed (a run is compared with the one on its own seed, ``reporting.references``); the untrained base
        model's score is one for every seed."""
        key = task_key(task)
        seed = task.seed if origin == RunOrigin.HOUSE else None
        # Two `trainarena run`s of a new task at once: the second waits and reuses the first's.
        with named_lock(self._store.engine, f"reference-{origin}-{key}" + ("" if seed is None else f"-seed-{seed}")):
            with self._store.session() as session:
                cached = cached_reference(session, key, origin, seed=seed)
                found = None if cached is None else cached.id
            return found if found is not None else self._compute_reference(origin, task)

    def _compute_reference(self, origin: str, task: TaskDefinition) -> int:
        if origin == RunOrigin.BASE_MODEL:
            self._say(f"scoring the untrained base model on {task.name} (once per task)")
            return self._execute(origin, task, None)
        folder = house_script_dir(self._settings, task.task_type)
        try:
            house = worktree_script(self._settings, folder, name="house script")
        except RegistrationError as error:
            raise RegistrationError(
                f"the house script at {folder} cannot be run ({error}); point TRAINARENA_WORKBENCH__HOUSE_SCRIPT "
                "(or __IMAGE_HOUSE_SCRIPT) at a copy of examples/competitors/baseline, or pass --no-reference"
            ) from error
        self._say(f"running the house script on {task.name} (seed {task.seed}, once per task and seed)")
        return self._execute(origin, task, house)

    def run(self, script: Script, task: TaskDefinition, seeds: int = 1) -> list[int]:
        """Run ``script`` once per seed (the task's seed, then +1, +2, ...); return the stored run ids.
        A series stops early, saying which seeds did not run, when a working tree's snapshot was lost
        (changed, so removed) and the tree no longer holds the code the earlier seeds ran."""
        ids = []
        for k in range(seeds):
            if k and (lost := self._snapshot_lost(script)) is not None:
                self._say(f"seeds {task.seed + k}..{task.seed + seeds - 1} not run: {lost}; run again to play them")
                break
            seeded = replace(task, seed=task.seed + k)
            count = f" (seed {seeded.seed}, {k + 1} of {seeds})" if seeds > 1 else ""
            self._say(f"running {script.info.name} on {task.name} (budget {task.budget_seconds:g} s){count}")
            ids.append(self._execute(RunOrigin.ADHOC, seeded, script))
        return ids

    def _snapshot_lost(self, script: Script) -> str | None:
        """Why a working tree's script cannot run its next seed as the code its earlier seeds ran, or None.
        Its cached snapshot, removed after it changed (``submissions.seal``), is made again from the tree
        when the tree still holds the same files (the new snapshot's folder, named by their content
        digest, is the old one); an edit to the tree meanwhile, a comment's included, is not played."""
        folder = script.info.submission_dir
        if script.tree is None or folder is None or (folder.is_dir() and snapshot_problem(folder, snapshot_digest(folder)) is None):
            return None
        try:
            again = snapshot_worktree(self._settings, Path(script.tree.path))
        except RegistrationError as error:
            return f"its snapshot changed and was removed, and the working tree cannot be snapshotted again ({error})"
        if again.snapshot_dir != folder:  # another content digest (the source digest would miss a comment)
            return ("its snapshot changed and was removed, and the working tree has changed since the first seed "
                    "(a series compares one code over its seeds)")
        return None

    def _execute(self, origin: str, task: TaskDefinition, script: Script | None) -> int:
        """Record the run as running, execute it (``script`` None: score the base model), store its
        report and write its result.json. A run stopped by an error or Ctrl-C is stored as failed, Ctrl-C then
        raised as RunStopped; one whose submission's files changed under it (``SubmissionChanged``) is stored
        as failed with that reason; one the platform could not start or count (``RunNotStarted``) is
        removed, as if never started, and the error raised on."""
        with self._store.transaction() as session:
            competitor = None if script is None or script.competitor is None else get_competitor(session, script.competitor)
            run = start_adhoc_run(session, origin=origin, definition=definition_json(task), digest=task_key(task),
                                  competitor=competitor, source=None if script is None else script.tree)  # fmt: skip
            run_id = run.id
        run_dir = self._settings.work_dir / "adhoc" / f"run-{run_id}"
        started = time.time()
        try:
            if script is None:
                report = self._executor.evaluate_base_model(task)
            else:
                report = self._executor.run_task(script.info, task, run_dir, f"adhoc-run{run_id}")
        except SubmissionChanged as error:  # nothing here tries it again: stored as failed, saying why
            report = stopped_report(error, started, run_dir)
        except RunNotStarted:  # the platform's (a full disk, no node): nothing is held against the script
            with self._store.transaction() as session:
                withdraw_adhoc_run(session, run_id)
            remove_tree(run_dir)  # as a tournament's withdrawn attempt's: nothing of it is kept
            raise
        except BaseException as error:
            self._finish(run_id, run_dir, task, stopped_report(error, started, run_dir))
            if isinstance(error, KeyboardInterrupt):
                raise RunStopped(run_id) from error
            raise
        self._finish(run_id, run_dir, task, report)
        return run_id

    def _finish(self, run_id: int, run_dir: Path, task: TaskDefinition, report: RunReport) -> None:
        if self._recorder is not None:
            self._recorder.warm(report, task)
        with self._store.transaction() as session:
            store_report(session, run_id, 1, report)
            if self._recorder is not None:
                self._recorder.run_stored(session, run_id)
        write_result_json(self._store, run_id, run_dir)

    def summarize(self, run_ids: list[int], house_ids: list[int]) -> SeedsSummary | None:
        """Spread of the runs that scored, and their lead over the house script paired by seed (run k
        against the house run k, ``house_ids`` in the same seed order; none: no lead). None if no run scored.

        The lead is ``engine.comparison.lead_interval`` over the per-seed leads (each against a
        reference of 0, higher is better), so the interval resamples the seeds, which carries both
        sides' seed noise, and, where every run has per-example shares, the hidden examples, paired; then
        widened to the per-seed leads' Student-t interval (``widened_by_seeds``), honest at few seeds."""
        rules = self._settings.workbench
        with self._store.session() as session:
            mine = [_scored(session.get_one(Run, run_id)) for run_id in run_ids]
            scored = [e for e in mine if e is not None]
            if not scored:
                return None
            spread = seed_spread([e.score for e in scored])
            house = [_scored(session.get_one(Run, run_id)) for run_id in house_ids]
            pairs = [(a, b) for a, b in zip(mine, house, strict=False) if a is not None and b is not None]
            house_scores = tuple(None if e is None else e.score for e in house)
            if not pairs:
                return SeedsSummary(spread, None, house_scores)
            direction = Direction(scored[0].direction)
            leads = [lead(a.score, b.score, direction) for a, b in pairs]
            # A house run stored before per-example shares (engine.scores) is compared by score alone.
            shared = all(has_shares(e.details) for pair in pairs for e in pair)
            shared = shared and len({len(e.per_example) for pair in pairs for e in pair}) == 1
            example_leads = [
                list(lead(np.asarray(a.per_example, dtype=np.float64), np.asarray(b.per_example, dtype=np.float64), direction))
                for a, b in pairs
            ] if shared else []  # fmt: skip
            zeros = [0.0] * len(example_leads[0]) if shared else []
            interval = lead_interval(
                leads, example_leads, 0.0, zeros, Direction.HIGHER,
                confidence=rules.confidence, resamples=rules.resamples, seed=rules.resample_seed,
            )  # fmt: skip
        return SeedsSummary(spread, widened_by_seeds(interval, leads), house_scores, len(pairs))


def _scored(run: Run) -> EvaluationRow | None:
    """A run's evaluation if it succeeded with a score."""
    evaluation = run.evaluation
    if run.status != RunStatus.SUCCEEDED or evaluation is None or evaluation.score is None:
        return None
    return evaluation
