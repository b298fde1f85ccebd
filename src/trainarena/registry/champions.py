"""Champions' models into the registry: when ``settings.registry.register_champions`` is on, the
models a newly crowned champion trained in the tournament that crowned it (its successful runs'
artifacts) are registered as public models. Idempotent: a run already registered is not again, so a
resumed or re-driven tournament registers nothing twice.

The registration follows the transaction that finished the tournament: a failure there (a full disk)
or a process killed in between leaves a crowning without its models, and nothing drives a finished
tournament again. :func:`register_due_champion_models` heals that: a pool tournament's drive calls it
once the tournament finished (its own crowning's registration), ``serve`` at start and again
``schedule.retry_after_fault`` after a fault while driving, the API's tournament drivers before each
drive. It registers every crowning that owes its models (``ChampionHistory.models_due``: the setting
was on when it was crowned) and is not registered yet, however many were crowned since, oldest first;
and each kind's latest crowning, so turning the setting on registers the reigning champions' models,
never those of champions dethroned while it was off.

Those callers overlap (a tournament finishing while a drive thread or another process heals), and a
run's row has no unique constraint: registration holds the store-wide ``named_lock``
:data:`REGISTRATION_LOCK` from reading what is registered until its rows are committed, so the second
of two finds the first one's rows and skips them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from trainarena.contract import RunStatus
from trainarena.engine.model import TOURNAMENT_KINDS
from trainarena.registry.models import ModelSource, SameAsBaseVerdict, register_model, same_as_base_verdict
from trainarena.settings import Settings
from trainarena.store import Store, get_stored_task, named_lock
from trainarena.store.models import ChampionHistory, MatchRow, RegisteredModel, Round, Run, TaskRow
from trainarena.tasks.digests import path_digest

REGISTRATION_LOCK = "register-champion-models"


def dataset_digest_of(session: Session, definition: dict) -> str:
    """The digest of a task's dataset: the stored task's (taken when it was added), else the dataset
    file's, else that of the dataset's definition (a Hub dataset is not read here)."""
    stored = get_stored_task(session, definition.get("name", ""))
    if stored is not None:
        return stored.dataset_digest
    source = Path(str(definition.get("dataset", {}).get("source")))
    if source.is_absolute() and source.exists():
        return path_digest(source)
    return hashlib.sha256(json.dumps(definition.get("dataset", {}), sort_keys=True).encode()).hexdigest()


def champion_runs(session: Session, tournament_id: int, competitor_id: int) -> list[Run]:
    """The competitor's successful runs with an artifact in the tournament, in run order."""
    query = (select(Run).join(Run.task).join(TaskRow.match).join(MatchRow.round)
             .where(Round.tournament_id == tournament_id, Run.competitor_id == competitor_id,
                    Run.status == RunStatus.SUCCEEDED.value).order_by(Run.id))  # fmt: skip
    return [run for run in session.scalars(query) if run.artifact_path and Path(run.artifact_path).is_dir()]


def register_champion_models(store: Store, settings: Settings, tournament_id: int) -> list[RegisteredModel]:
    """Register the models of the champion the finished tournament ``tournament_id`` crowned (none when it
    crowned nobody new, or the setting is off); the models registered now."""
    if not settings.registry.register_champions:
        return []
    verdicts = _same_as_base_verdicts(store, settings, tournament_id)
    # Held until the commit: what is registered is read under it (module docstring). A registration
    # that fails rolls back, and its folders go with its rows (register_model).
    with named_lock(store.engine, REGISTRATION_LOCK), store.transaction() as session:
        champion_id = _crowned_id(session, tournament_id)
        if champion_id is None:  # not finished, or the defender kept the title: nobody new was crowned
            return []
        done = _registered_run_ids(session)
        registered = []
        for run in champion_runs(session, tournament_id, champion_id):
            # A finished tournament's runs do not change: the verdicts cover each one not registered
            # before the lock (one registered since is in ``done``); one they miss, of a tournament
            # that finished in between, is left to the next heal (register_due_champion_models).
            if run.id in done or run.id not in verdicts:
                continue
            definition = run.task.definition
            evaluation = run.evaluation
            registered.append(register_model(
                settings, session, artifact_dir=Path(run.artifact_path), source=ModelSource.CHAMPION,
                task_type=definition["task_type"], base_model=definition["base_model"],
                dataset_digest=dataset_digest_of(session, definition),
                score=None if evaluation is None else evaluation.score, owner_key_id=None,
                run_id=run.id, competitor_id=champion_id, same_as_base=verdicts[run.id],
            ))  # fmt: skip
        return registered


def _same_as_base_verdicts(store: Store, settings: Settings, tournament_id: int) -> dict[int, SameAsBaseVerdict]:
    """Each unregistered champion run's :func:`same_as_base_verdict`, by run id, worked out before the
    registration's lock and transaction: a full model's tensors take long to read."""
    with store.session() as session:
        champion_id = _crowned_id(session, tournament_id)
        done = _registered_run_ids(session)
        runs = [] if champion_id is None else [
            (run.id, Path(run.artifact_path), run.task.definition)
            for run in champion_runs(session, tournament_id, champion_id) if run.id not in done]  # fmt: skip
    return {run_id: same_as_base_verdict(settings, artifact, definition["task_type"], definition["base_model"])
            for run_id, artifact, definition in runs}  # fmt: skip


def _crowned_id(session: Session, tournament_id: int) -> int | None:
    """The competitor the tournament ``tournament_id`` crowned; None when it crowned nobody (yet)."""
    crowning = session.scalar(select(ChampionHistory).where(ChampionHistory.tournament_id == tournament_id))
    return None if crowning is None else crowning.competitor_id


def _registered_run_ids(session: Session) -> set[int]:
    """The runs whose models are registered."""
    return set(session.scalars(select(RegisteredModel.run_id).where(RegisteredModel.run_id.is_not(None))))


def register_due_champion_models(store: Store, settings: Settings) -> list[RegisteredModel]:
    """``register_champion_models`` for each crowning whose champion's runs there are not all registered
    and that owes them or is its kind's latest (module docstring), oldest crowning first; the models
    registered now. One whose registration fails does not hold up those after it (its files may be
    what fails, every time): the first failure is raised once all were tried, and the next heal tries
    it again."""
    if not settings.registry.register_champions:
        return []
    with store.session() as session:
        done = _registered_run_ids(session)
        reigning = [session.scalar(select(ChampionHistory.id).where(ChampionHistory.kind == kind)
                                   .order_by(ChampionHistory.crowned_at.desc(), ChampionHistory.id.desc()).limit(1))
                    for kind in TOURNAMENT_KINDS]  # fmt: skip
        owed = session.scalars(
            select(ChampionHistory)
            .where(ChampionHistory.tournament_id.is_not(None),
                   or_(ChampionHistory.models_due, ChampionHistory.id.in_([id_ for id_ in reigning if id_ is not None])))
            .order_by(ChampionHistory.crowned_at, ChampionHistory.id)
        )  # fmt: skip
        pending = [crowning.tournament_id for crowning in owed if any(
            run.id not in done for run in champion_runs(session, crowning.tournament_id, crowning.competitor_id))]
    registered: list[RegisteredModel] = []
    failure: Exception | None = None
    for tournament_id in pending:
        try:
            registered += register_champion_models(store, settings, tournament_id)
        except Exception as error:  # noqa: BLE001 - raised below, after the others
            failure = failure or error
    if failure is not None:
        raise failure
    return registered
