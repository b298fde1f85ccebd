"""The tournament life cycle over task pools: create a tournament from a pool (who enters, who
defends, which stored tasks it draws), drive it to the end, read it back. Plain functions over the
store, so ``trainarena tournament create/run`` and a scheduler call the same ones.

Entry: every registered competitor who registered before entry closes, whose registration allows the
kind and whose manifest supports every task type the pool can still draw (``drawable_tasks``: a used-up
or broken task's type does not count) enters, in registration order; the
reigning champion of the kind defends in the boss round instead. A competitor whose repository can no
longer be fetched is left out, with the reason. Tasks: the tournament draws, at creation and from its
seed, as many stored tasks as its bracket can need whatever the outcomes (every round's tasks on the
longest path failures can make, and the boss rounds'), without
replacement; each round plays the next unplayed tasks of the draw, every match of a round the same
ones, so no task is played twice in one tournament: a bracket round from the draw's start, a boss round
from its end (the draw holds enough of each), so a boss round's tasks do not depend on how many
rounds led to it and the defender's runs can be trained before its challenger is known. A pool with too few tasks is refused up front.
"""

from __future__ import annotations

import random
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.contract import MANIFEST_NAME, STORED_NAME_MAX_LENGTH, RunStatus, TaskType, stored_name_problem
from trainarena.engine import Finished, tasks_at_most
from trainarena.engine.model import TOURNAMENT_KINDS, Stage
from trainarena.operations.pools import StoredTaskUnusable, definition_problem, stored_definition
from trainarena.operations.task_inputs import changed_input
from trainarena.orchestrator import Progress, RunStored, Waiting, drive
from trainarena.records.recorder import recorder_for, revealed_task_names
from trainarena.registry import register_due_champion_models
from trainarena.runs import RunExecutor, TaskSource
from trainarena.settings import Settings
from trainarena.store import (
    Competitor,
    MatchRow,
    Round,
    Run,
    Store,
    StoredTask,
    StoreError,
    TaskPool,
    TaskRow,
    TournamentDraw,
    create_tournament,
    current_champion,
    get_draw,
    get_stored_task,
    get_tournament,
    list_competitors,
    list_tournaments,
    require_pool,
    stored_weights,
)
from trainarena.store.records import boss_tasks_for, fix_rules
from trainarena.submissions import RegistrationError, checkout_path, parse_manifest, register
from trainarena.tasks.base import TaskDefinition
from trainarena.wording import counted


class TournamentRefused(ValueError):
    """A tournament that cannot be created as asked, with the reason and the numbers."""


# --- Creating ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedTournament:
    id: int
    name: str
    kind: str
    pool: str
    seed: int
    entrants: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...]  # (competitor, why it did not enter)
    unusable_tasks: tuple[tuple[str, str], ...]  # (stored task, why it was not drawn)
    defender: str | None
    tasks: tuple[str, ...]  # the stored tasks drawn, in play order
    entry_closes_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "kind": self.kind, "pool": self.pool, "seed": self.seed,
            "entrants": list(self.entrants), "defender": self.defender, "tasks": list(self.tasks),
            "left_out": [{"competitor": name, "reason": reason} for name, reason in self.left_out],
            "unusable_tasks": [{"task": name, "reason": reason} for name, reason in self.unusable_tasks],
            "entry_closes_at": self.entry_closes_at.isoformat(),
        }


def entry_problem(competitor: Competitor, kind: str, task_types: set[TaskType], settings: Settings) -> str | None:
    """Why ``competitor`` cannot enter a ``kind`` tournament whose pool can draw tasks of ``task_types``
    (:func:`drawable_tasks`), or None: every round plays the same tasks for all its entrants, so an
    entrant must support each type a round may play. A checkout cleared from the cache is fetched
    again; a repository that is gone is a reason."""
    if competitor.kind not in (None, "both", kind):
        return f"registered for {competitor.kind} tasks, not {kind}"
    checkout = checkout_path(settings, competitor.commit)
    if not checkout.is_dir():
        try:
            register(settings, name=competitor.name, repo=competitor.repo_url, commit=competitor.commit)
        except RegistrationError as error:
            return f"its repository cannot be fetched any more ({error})"
    manifest = parse_manifest((checkout / MANIFEST_NAME).read_text(encoding="utf-8"))
    if all(manifest.supports(t) for t in task_types):
        return None
    supported = " and ".join(t.value for t in manifest.task_types or ())
    return (f"its {MANIFEST_NAME} supports {supported} tasks, but the pool can draw "
            f"{' and '.join(sorted(t.value for t in task_types))} tasks: an entrant must support every type the pool "
            "can draw (each round plays the same tasks for all its entrants)")


def task_problem(task: StoredTask, settings: Settings | None = None) -> str | None:
    """Why a stored task cannot be drawn any more, or None: its definition cannot run
    (``pools.definition_problem``), its base model folder or its dataset is gone, or either changed
    since the task was added (their digests, ``task_inputs.changed_input``; a hub dataset is not re-read)."""
    if (problem := definition_problem(task)) is not None:
        return problem
    definition = task.definition
    model, source = Path(definition["base_model"]), Path(str(definition["dataset"].get("source")))
    if model.is_absolute() and not model.exists():
        return f"its base model {model} is gone"
    if source.is_absolute() and not source.exists():
        return f"its dataset {source} is gone"
    if (changed := changed_input(task, assets_dir=None if settings is None else settings.assets_dir)) is not None:
        return f"{changed}; add it again as a new task"
    return None


def _revealed(task: str, revealed: dict[str, str]) -> str | None:
    if task not in revealed:
        return None
    return (f"its split seed was revealed when tournament {revealed[task]!r} ended, so its hidden rows are public; "
            "store tasks on new data (the same dataset again is refused: its rows are known)")


def drawable_tasks(session: Session, pool: TaskPool, settings: Settings) -> tuple[list[StoredTask], list[tuple[str, str]]]:
    """The pool's tasks a tournament can draw now, by name, and (name, why) of the others: a task an
    ended tournament revealed is used up (``_revealed``), one with a :func:`task_problem` cannot run.
    Entry, the draw and the pools' public view all read the pool through this."""
    revealed = revealed_task_names(session)
    drawable, unusable = [], []
    for task in sorted(pool.tasks, key=lambda t: t.name):
        if (problem := _revealed(task.name, revealed) or task_problem(task, settings)) is not None:
            unusable.append((task.name, problem))
        else:
            drawable.append(task)
    return drawable, unusable


def drawable_json(session: Session, pool: TaskPool, settings: Settings) -> dict[str, Any]:
    """What a competitor may know of a pool before it enters (``GET /v1/pools/drawable``): its drawable
    tasks' types, and how many of them train which base model on which budget. Never a task's name,
    dataset or split key: a name may say the data, and the data is what the hidden split keeps secret."""
    drawable, _ = drawable_tasks(session, pool, settings)
    setups: dict[tuple[str, str, float], int] = {}
    for task in drawable:
        setup = (task.task_type, str(task.definition["base_model"]), float(task.definition["budget_seconds"]))
        setups[setup] = setups.get(setup, 0) + 1
    return {"name": pool.name, "kind": pool.kind, "tasks": len(drawable),
            "task_types": sorted({task.task_type for task in drawable}),
            "setups": [{"type": kind, "base_model": model, "budget_seconds": budget, "tasks": count}
                       for (kind, model, budget), count in sorted(setups.items())]}


def _grouped_by_reason(problems: list[tuple[str, str]]) -> str:
    """'t1, t2: its split seed was revealed ...; t3: its dataset ... is gone': a spent pool's tasks (or
    the competitors an entry time leaves out) share one reason, which was repeated whole for each, a
    screenful for a pool of twenty."""
    names: dict[str, list[str]] = {}
    for name, reason in problems:
        names.setdefault(reason, []).append(name)
    return "; ".join(f"{', '.join(grouped)}: {reason}" for reason, grouped in names.items())


def create_pool_tournament(
    session: Session,
    settings: Settings,
    *,
    kind: str,
    pool: str,
    entry_closes: datetime | None = None,
    seed: int | None = None,
    name: str | None = None,
) -> CreatedTournament:
    """Record a tournament of ``kind`` drawing from ``pool`` (flushed, not committed); TournamentRefused
    when the kind is not one, the pool is of another kind or too small, or nobody can enter."""
    if kind not in TOURNAMENT_KINDS:  # before the pool: "pool 'p' holds text tasks, not foo" hid the typo
        raise TournamentRefused(f"kind must be {' or '.join(TOURNAMENT_KINDS)}, got {kind!r}")
    if name is not None and (problem := stored_name_problem("tournament", name)) is not None:  # before entry is checked
        raise TournamentRefused(problem)
    try:
        pool_row = require_pool(session, pool)
    except StoreError as error:
        raise TournamentRefused(str(error)) from None
    if pool_row.kind != kind:
        raise TournamentRefused(f"pool {pool!r} holds {pool_row.kind} tasks, not {kind}")
    closes = entry_closes or datetime.now(UTC)
    champion = current_champion(session, kind)
    drawable, unusable = drawable_tasks(session, pool_row, settings)  # entry is judged on what can be played
    task_types = {TaskType(task.task_type) for task in drawable}
    entrants, left_out = [], []
    for competitor in list_competitors(session):
        if competitor.retired_at is not None:
            continue  # retired (a replaced version, say): not a candidate, so not listed as left out either
        if competitor.registered_at > closes:
            left_out.append((competitor.name, f"registered after entry closed ({closes.isoformat(timespec='seconds')})"))
        elif champion is not None and competitor.id == champion.id:
            continue  # the reigning champion defends in the boss round
        elif (problem := entry_problem(competitor, kind, task_types, settings)) is not None:
            left_out.append((competitor.name, problem))
        else:
            entrants.append(competitor.name)
    if not entrants:
        reasons = _grouped_by_reason(left_out) or "no competitor is registered"
        raise TournamentRefused(f"nobody can enter a {kind} tournament on pool {pool!r} ({reasons})")
    if len(entrants) == 1 and champion is None and not settings.rules.crown_unscored:
        raise TournamentRefused(f"only {entrants[0]} can enter a {kind} tournament on pool {pool!r} and no champion defends: "
                                "a lone entrant plays nothing, and a title needs a valid score (docs/rules.md, 'How a "
                                "tournament ends'); register another competitor")
    needed = tasks_at_most(len(entrants), champion is not None, settings.rules, boss_tasks_for(kind, settings.rules))
    available = [task.name for task in drawable]
    if len(available) < needed:
        broken = f" ({len(unusable)} unusable: {_grouped_by_reason(unusable)})" if unusable else ""
        raise TournamentRefused(
            f"pool {pool!r} has {counted(len(available), 'usable task')}{broken}, but {len(entrants)} entrants"
            f"{' and a defending champion' if champion else ''} can play {needed} (no task is played twice in a "
            f"tournament); add {needed - len(available)} more with `trainarena task add ... --pool {pool}`"
        )
    seed = secrets.randbits(31) if seed is None else seed
    name = name or _next_name(session, kind, pool)
    try:
        tournament = create_tournament(session, name=name, kind=kind, seed=seed, entrants=entrants,
                                       champion=None if champion is None else champion.name)
    except StoreError as error:
        raise TournamentRefused(str(error)) from None
    fix_rules(tournament, settings.rules)  # the draw is sized for them
    drawn = random.Random(seed).sample(available, needed)
    session.add(TournamentDraw(tournament_id=tournament.id, pool_id=pool_row.id, task_names=drawn, entry_closes_at=closes))
    session.flush()
    return CreatedTournament(tournament.id, name, kind, pool, seed, tuple(entrants), tuple(left_out), tuple(unusable),
                             None if champion is None else champion.name, tuple(drawn), closes)


def _next_name(session: Session, kind: str, pool: str) -> str:
    """KIND-POOL-N, a tournament name by the rule (contract.stored_name_problem) whatever the pool was
    named before the rule: characters it forbids become '-', and a long pool name is cut."""
    stem = f"{kind}-{re.sub(r'[^A-Za-z0-9._-]', '-', pool)}"[: STORED_NAME_MAX_LENGTH - 12]
    taken = {t.name for t in list_tournaments(session)}
    number = sum(1 for t in taken if t.startswith(f"{stem}-")) + 1
    while f"{stem}-{number}" in taken:
        number += 1
    return f"{stem}-{number}"


# --- Driving -------------------------------------------------------------------------------------


def played_task_names(session: Session, tournament_id: int) -> set[str]:
    """The stored tasks the tournament's stored rounds play (task rows hold the stored task's name)."""
    rows = session.scalars(
        select(TaskRow).join(TaskRow.match).join(MatchRow.round).where(Round.tournament_id == tournament_id)
    )
    return {row.definition["name"] for row in rows}


def pool_task_source(store: Store, tournament_id: int, inputs: DrawnInputs | None = None) -> TaskSource:
    """The tournament's tasks: a new round plays the drawn tasks no stored round played yet, in draw
    order, a boss round from the draw's end (task ``i`` of every match of the round is the same task). The orchestrator creates a round in
    one transaction, so the rounds read here are exactly the earlier ones, on a resume as well. A task
    whose data changed since it was stored is refused (StoredTaskUnusable), never played on the change."""
    inputs = inputs or DrawnInputs()

    def source(kind: str, stage: Stage, match_id: str, task_index: int, seed: int):
        with store.session() as session:
            draw = get_draw(session, tournament_id)
            if draw is None:
                raise StoreError(f"tournament {tournament_id} was not created from a pool (no task draw)")
            played = played_task_names(session, tournament_id)
            remaining = [name for name in draw.task_names if name not in played]
            if stage == Stage.BOSS:
                remaining.reverse()
            if task_index >= len(remaining):
                raise StoreError(f"tournament {tournament_id}: its draw of {len(draw.task_names)} tasks is used up "
                                 f"({stage} round, match {match_id}); the pool was checked for fewer rounds")
            stored = get_stored_task(session, remaining[task_index])
            if stored is None:
                raise StoreError(f"stored task {remaining[task_index]!r} drawn by tournament {tournament_id} is gone")
            return replace(inputs.definition(stored, tournament_id), seed=seed)

    return source


class DrawnInputs:
    """A drive's check of its drawn tasks' data (``task_inputs``; each file hashed once unless it is
    touched meanwhile). ``settings`` places the built-in assets, which are not checked."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._assets_dir = None if settings is None else settings.assets_dir

    def definition(self, stored: StoredTask, tournament_id: int) -> TaskDefinition:
        """``pools.stored_definition``, and StoredTaskUnusable when its data changed since it was stored."""
        definition = stored_definition(stored)
        if (changed := changed_input(stored, assets_dir=self._assets_dir)) is not None:
            raise StoredTaskUnusable(
                f"stored task {stored.name!r}: {changed}; tournament {tournament_id} drew it and commits to the data "
                "as stored, so it is not played on the change: restore the file as it was, then run the tournament "
                "again (its runs resume where they stopped)")
        return definition


def _unplayed_or_in_play(session: Session, tournament_id: int, task_names: list[str]) -> list[str]:
    """The drawn tasks no round played yet, and those of a round whose runs are not all finished."""
    unfinished = (select(TaskRow.definition).join(Run, Run.task_id == TaskRow.id).join(TaskRow.match).join(MatchRow.round)
                  .where(Round.tournament_id == tournament_id,
                         Run.status.in_([RunStatus.PENDING.value, RunStatus.RUNNING.value])))
    in_play = {definition["name"] for definition in session.scalars(unfinished)}
    played = played_task_names(session, tournament_id)
    return [name for name in task_names if name not in played or name in in_play]


def check_drawn_tasks(session: Session, tournament_id: int, inputs: DrawnInputs | None = None) -> None:
    """StoredTaskUnusable naming the first drawn task still to play (no round played it yet, or its
    round's runs are not all done) that cannot run (a budget an older build stored) or whose data
    changed since it was stored, so the tournament is refused before it plays, not rounds later."""
    draw = get_draw(session, tournament_id)
    inputs = inputs or DrawnInputs()
    for name in [] if draw is None else _unplayed_or_in_play(session, tournament_id, draw.task_names):
        if (stored := get_stored_task(session, name)) is not None:
            inputs.definition(stored, tournament_id)


@dataclass(frozen=True)
class TournamentResult:
    id: int
    name: str
    champion: str | None
    crowned: bool
    reason: str
    weights: dict[str, float]
    finished: Finished

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "champion": self.champion, "crowned": self.crowned,
                "reason": self.reason, "weights": self.weights}


def drive_pool_tournament(
    store: Store, settings: Settings, tournament_id: int, *, executor: RunExecutor, **options: Any
) -> Finished | None:
    """``orchestrator.drive`` on a pool tournament with the settings' rules, lease and work dir and its
    pool's task source; ``options`` are drive's own (progress, parallel, max_steps, wait, on_stored...).
    Once it has finished, a newly crowned champion's models go into the registry when the settings say
    so (``registry.register_champions``; the crowning owes them from its own transaction on), after
    those of any crowning before whose registration a fault or a dead process left out (idempotent, so
    a resumed drive registers nothing twice: ``registry.champions``)."""
    inputs = DrawnInputs(settings)
    with store.session() as session:
        check_drawn_tasks(session, tournament_id, inputs)
    finished = drive(store, tournament_id, task_source=pool_task_source(store, tournament_id, inputs), executor=executor,
                     rules=settings.rules, weight_rules=settings.weights, work_dir=settings.work_dir,
                     lease_rules=settings.lease, recorder=recorder_for(settings),
                     champion_models_due=settings.registry.register_champions, **options)
    if finished is not None:
        register_due_champion_models(store, settings)
    return finished


def run_pool_tournament(
    store: Store,
    settings: Settings,
    tournament_id: int,
    *,
    executor: RunExecutor,
    progress: Progress | None = None,
    parallel: int = 1,
    wait: bool = False,
    on_wait: Waiting | None = None,
    on_stored: RunStored | None = None,
) -> TournamentResult:
    """Drive a pool tournament to its end under its lease (resuming where the store says it was) and
    return the champion and the weights. LeaseHeld when another driver has it and ``wait`` is off."""
    with store.session() as session:
        name = get_tournament(session, tournament_id).name
    finished = drive_pool_tournament(store, settings, tournament_id, executor=executor, progress=progress,
                                     parallel=parallel, wait=wait, on_wait=on_wait, on_stored=on_stored)
    assert finished is not None  # no max_steps: drive returns only at the end
    with store.session() as session:
        weights = stored_weights(session, tournament_id)
    return TournamentResult(tournament_id, name, finished.champion, finished.crowned, finished.reason, weights, finished)
