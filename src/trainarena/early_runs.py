"""Early runs: the next round's runs, trained on run slots that would otherwise wait at a round's end.

``engine.lookahead.foreseen_round`` names the round that follows the open one when its unfinished
runs succeed, whatever their scores. A free slot with no pending run left trains that round's runs
early, each in a folder of its own under ``tournament-<id>/early/``, under the same run name, task and
attempt number (1) it gets once its round is created. Nothing of an early run reaches the store, the
records or the progress display until its round is created: the claim of the round's runs then
adopts it (the run's attempt is written as for any claimed run), its folder becomes the run's
``run-<id>/attempt-1`` and its report is stored then: the stored run and its signed record are those
of its first attempt, with the times it actually trained (before the round existed). An early run its round does not need (a run assumed to
succeed failed, and another round or the end followed) is dropped: never stored, its folder removed.
The defender's runs of the first boss round (``engine.lookahead.defender_boss_places``) come first:
they are needed whatever the bracket's outcomes, unless nobody reaches that round. A run of the first
boss round is adopted by it whichever round it turns out to be (its tasks do not depend on the round's
index), and dropped only when another boss round's claim, or the end, finds it unneeded. A run whose
script reached its deadline (``execution.supervise.told_at_deadline``) is taken as failed from then,
10 s of grace before it ends: the round foreseen is the one that follows its failure.
A driver that dies loses its early runs, not a stored one: the next drive clears their folders and
trains them as usual; one a claim had adopted is its run's first try, whose folder (its logs) the
next drive, or a cancel, moves to the run's (``keep_adopted``). A drive stopped at once (a stop signal, its tournament cancelled) removes them
itself, as it withdraws its claimed runs (``clear_stopped``). A drive that fails drops those not
adopted yet. A place whose task the task source cannot give now (a drawn task whose data changed,
``StoreError``) is not trained early: the look ahead is a guess and never ends a drive whose runs in
flight are still to be stored; the round's creation meets the same error, once they are.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import secrets
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy.orm import Session

from trainarena.engine.bracket import boss_match_id, next_step
from trainarena.engine.lookahead import defender_boss_places, foreseen_round, round_places
from trainarena.engine.model import PlayRound, Stage, TournamentRecord
from trainarena.execution.output_tree import remove_tree
from trainarena.runs import LOGS_DIR, CompetitorInfo, RunReport, RunRequest, definition_digest, tournament_dir
from trainarena.settings import TournamentRules
from trainarena.store import Round, StoreError, Tournament, TournamentStatus, get_tournament, require_competitor
from trainarena.store.records import load_record, load_round, load_tournament, open_matches, open_round, round_plan
from trainarena.tasks.base import TaskDefinition

# (tournament, stage, round index, match id, task index) -> the task the round's rows will hold for
# that place (a boss round's does not depend on its index).
TaskOf = Callable[[Tournament, Stage, int, str, int], TaskDefinition]
# (match id, task index, competitor, digest of the task with its seed): a run's identity before and
# after its round is created (match ids are unique within a tournament: they name their round).
EarlyKey = tuple[str, int, str, str]

log = logging.getLogger(__name__)


@dataclass
class _Early:
    request: RunRequest  # provisional: a negative run id, a folder under early/
    round_index: int | None  # None: the first boss round's, whichever round that turns out to be
    adopted: RunRequest | None = None  # the stored run's request, once its round's claim adopted it
    report: RunReport | None = None  # its final report, while not adopted yet
    dropped: bool = False
    stop: threading.Event = field(default_factory=threading.Event)  # set when dropped: its script ends


class EarlyRuns:
    """The early runs of one drive: started by free slots, adopted by the claim of their round's runs."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        # This drive's own folder under early/: a driver that lost its lease and trains on (a stalled
        # heartbeat) must not remove, at its end, the early runs of the driver that took over.
        self.owner = secrets.token_hex(4)
        self.runs: dict[EarlyKey, _Early] = {}
        self.by_id: dict[int, EarlyKey] = {}
        self._ids = itertools.count(-1, -1)
        # Ids of the requests (provisional for early runs) whose script reached its deadline, told from
        # the runs' threads.
        self._timed_out: set[int] = set()
        self._lock = threading.Lock()
        # The record of the complete rounds, and the id of the open round after them (None: none open).
        self._played: tuple[int | None, TournamentRecord] | None = None

    def _in_play(self, session: Session, tournament_id: int,
                 rules: TournamentRules) -> tuple[Tournament, TournamentRecord, Round | None] | None:
        """What early runs are decided from: the tournament, the record of its complete rounds and its
        open round loaded whole (None: every round is complete); None once the tournament finished.
        The record is loaded whole once per open round (finished runs never change), not per call."""
        tournament = get_tournament(session, tournament_id)
        if tournament.status == TournamentStatus.FINISHED:
            return None
        round_row = open_round(session, tournament_id)
        key = None if round_row is None else round_row.id
        if self._played is None or key is None or self._played[0] != key:
            self._played = key, load_record(load_tournament(session, tournament_id), rules)
        return tournament, self._played[1], None if round_row is None else load_round(session, round_row.id)

    def foresee(self, session: Session, tournament_id: int, rules: TournamentRules, task_of: TaskOf,
                budget: int) -> list[RunRequest]:
        """Up to ``budget`` runs not started early yet: the defender's of the first boss round, then
        those of the round foreseen after the open one, each in the order its round will claim them."""
        state = self._in_play(session, tournament_id, rules)
        if state is None or state[2] is None:
            return []
        tournament, record, round_row = state
        open_plan, matches = round_plan(round_row), open_matches(round_row, self._timed_out_runs())
        plan = foreseen_round(record, open_plan, matches, rules)
        if plan is None and all(match.settled() for match in matches):
            return []  # the tournament ends after the open round
        # A boss round's tasks do not depend on its index: the earliest it can have stands for it.
        places = [(Stage.BOSS, open_plan.index + 1, place) for place in defender_boss_places(record, open_plan)]
        if plan is not None:
            places += [(plan.stage, plan.index, place) for place in round_places(plan)]
        started = []
        for stage, round_index, (match_id, index, name) in places:
            if len(started) == budget:
                break
            task = _task_or_none(task_of, tournament, stage, round_index, match_id, index)
            if task is None or early_key(match_id, index, name, task) in self.runs:
                continue
            request = self._request(session, tournament, stage, match_id, index, name, task)
            key = _key(request)
            first_boss = stage == Stage.BOSS and match_id == boss_match_id(0)
            self.runs[key], self.by_id[request.run_id] = _Early(request, None if first_boss else round_index), key
            started.append(request)
        return started

    def deadline_reached(self, request: RunRequest) -> None:
        """The script of ``request`` (an early run, or a claimed one) reached its deadline: it will end
        timed out. Called from the run's thread."""
        with self._lock:
            self._timed_out.add(request.run_id)

    def _timed_out_runs(self) -> frozenset[int]:
        """The stored runs whose script reached its deadline (an early run's once its round adopted it)."""
        with self._lock:
            told = frozenset(self._timed_out)
        adopted = {early.adopted.run_id for early in self.runs.values()
                   if early.adopted is not None and early.request.run_id in told}
        return frozenset(run_id for run_id in told if run_id > 0) | adopted

    def unclaimed(self) -> bool:
        """Whether some early run is neither dropped nor adopted yet (one a stored outcome may rule out)."""
        return any(not early.dropped and early.adopted is None for early in self.runs.values())

    def awaiting(self, round_index: int, boss: bool) -> bool:
        """Whether some early run not dropped nor adopted yet may be adopted by the claim of round
        ``round_index`` (a ``boss`` round's also adopts those trained for the first boss round)."""
        return any(not early.dropped and early.adopted is None
                   and (boss if early.round_index is None else early.round_index == round_index)
                   for early in self.runs.values())

    def rule_out(self, session: Session, tournament_id: int, rules: TournamentRules, task_of: TaskOf) -> None:
        """Drop the early runs the outcomes stored so far rule out (a run assumed to succeed failed, so
        another round, or the end, follows), at once: not when a slot next frees and the next round's
        claim finds them unneeded, which, with every slot training such runs, is when they end. The
        next round is known once every match of the open round is settled (as when they started) or
        the round is done."""
        state = self._in_play(session, tournament_id, rules)
        if state is None:
            return
        tournament, record, round_row = state
        if round_row is None:
            step = next_step(record, rules)
            plan = step.plan if isinstance(step, PlayRound) else None
        else:
            matches = open_matches(round_row, self._timed_out_runs())
            if not all(match.settled() for match in matches):
                return  # the next round still depends on scores to come: nothing is ruled out yet
            plan = foreseen_round(record, round_plan(round_row), matches, rules)
        if plan is None:
            self.drop_unneeded(None)
            return
        places = round_places(plan)
        tasks = [_task_or_none(task_of, tournament, plan.stage, plan.index, match_id, index) for match_id, index, _ in places]
        if None in tasks:
            return  # what the round needs cannot be told now: its creation stops the drive, which drops them
        needed = frozenset(early_key(match_id, index, name, task)
                           for (match_id, index, name), task in zip(places, tasks, strict=True))
        self.drop_unneeded(plan.index, needed, boss=plan.stage == Stage.BOSS)

    def _request(self, session: Session, tournament: Tournament, stage: Stage, match_id: str, index: int,
                 name: str, task: TaskDefinition) -> RunRequest:
        competitor = require_competitor(session, name)
        provisional = next(self._ids)
        return RunRequest(
            tournament_id=tournament.id, tournament_name=tournament.name, run_id=provisional, attempt=1,
            task_id=provisional,
            competitor=CompetitorInfo(competitor.name, competitor.repo_url, competitor.commit, competitor.tree_hash,
                                      competitor.entrypoint),
            stage=stage, match_id=match_id, task_index=index, task=task,
            run_dir=self._early_dir(tournament.id) / self.owner / _place_folder(match_id, index, name) / "attempt-1",
        )

    def is_early(self, request: RunRequest) -> bool:
        return request.run_id in self.by_id

    def stop_of(self, request: RunRequest) -> threading.Event:
        """Set once the early run ``request`` is dropped, to end its script (``execution.supervise``)."""
        return self.runs[self.by_id[request.run_id]].stop

    def dropped(self, request: RunRequest) -> bool:
        """Whether the early run ``request`` was dropped (its artifact is not worth scoring); its folder
        is then removed."""
        early = self.runs[self.by_id[request.run_id]]
        if early.dropped:
            self._remove(early)
        return early.dropped

    def adoptable(self, key: EarlyKey) -> bool:
        """Whether the pending run ``key`` (not tried yet) was trained early, or is training early."""
        early = self.runs.get(key)
        return early is not None and not early.dropped and early.adopted is None

    def adopt(self, request: RunRequest) -> None:
        """The just claimed run ``request`` takes over its early run (in the claim's transaction: nothing
        moves until :meth:`take_over`, after it is committed)."""
        self.runs[_key(request)].adopted = request

    def take_over(self, request: RunRequest) -> tuple[int, RunReport | None] | None:
        """For a claimed run that adopted an early run: the early run's provisional id and, when it is
        done, the report to store now (its folder moved to the run's); None for any other run."""
        early = self.runs.get(_key(request))
        if early is None or early.adopted is not request:
            return None
        return early.request.run_id, None if early.report is None else self._moved(early, early.report)

    def drop_unneeded(self, round_index: int | None, needed: frozenset[EarlyKey] = frozenset(), boss: bool = False) -> None:
        """Drop the early runs of rounds up to ``round_index`` (created, or passed by; None: every round,
        at the tournament's end) that are not ``needed`` by the round's claim, and, when that round is a
        ``boss`` round, those trained for the first boss round: those done are removed now, those still
        training once they are done."""
        for key, early in self.runs.items():
            if early.adopted is not None or early.dropped or key in needed:
                continue
            if round_index is None or (boss if early.round_index is None else early.round_index <= round_index):
                early.dropped = True
                early.stop.set()
                if early.report is not None:
                    self._remove(early)

    def finished(self, request: RunRequest, report: RunReport) -> tuple[RunRequest, RunReport] | None:
        """An early run's final report: the stored run's request and the report to store, when its round
        adopted it; else None (kept for the adoption to come, or removed when dropped)."""
        early = self.runs[self.by_id[request.run_id]]
        if early.adopted is not None:
            return early.adopted, self._moved(early, report)
        if early.dropped:
            self._remove(early)
        else:
            early.report = report
        return None

    def lost(self, request: RunRequest) -> RunRequest | None:
        """An early run whose try was lost (``RunInterrupted``) or broke: the stored run's request when
        adopted (recorded as for any run), else None (dropped: its round claims the run as usual)."""
        early = self.runs[self.by_id[request.run_id]]
        if early.adopted is None:
            early.dropped = True
            self._remove(early)
        return early.adopted

    def _moved(self, early: _Early, report: RunReport) -> RunReport:
        """The early folder becomes the stored run's, and the report's paths follow it."""
        source, target = self._move(early)

        def follow(path: Path | None) -> Path | None:
            return path if path is None or not path.is_relative_to(source) else target / path.relative_to(source)

        return replace(report, log_path=follow(report.log_path), artifact_path=follow(report.artifact_path))

    @staticmethod
    def _move(early: _Early) -> tuple[Path, Path]:
        """The adopted early run's folder becomes the stored run's attempt folder (once: moved already,
        nothing is left to move). Returns (early folder, run's folder)."""
        assert early.adopted is not None
        source, target = early.request.run_dir, early.adopted.run_dir
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
            os.replace(source, target)
        return source, target

    def clear(self, tournament_id: int) -> None:
        """At the drive's end: its early runs not stored are gone (a resumed drive trains them as usual);
        another driver's are left alone."""
        remove_tree(self._early_dir(tournament_id) / self.owner)
        with contextlib.suppress(OSError):
            self._early_dir(tournament_id).rmdir()  # when no other driver's are there

    def clear_stopped(self, tournament_id: int, still_ending: Collection[RunRequest]) -> None:
        """At the end of a drive stopped at once (a stop signal, its tournament cancelled), its runs
        killed and nothing of them stored: a cancelled tournament is never driven again, so nothing
        would clear its early runs' folders. An adopted run's folder becomes its stored run's attempt
        folder, where the attempt's withdrawal keeps its logs as any run's; the rest are removed. Those
        ``still_ending`` (their thread still running, or an artifact still being scored) are left to the
        next drive's :meth:`clear_left_behind`: a process may still write there. A resumed drive reuses
        nothing under early/ (it clears it at its start, and adopts only runs never tried)."""
        ending = {request.run_id for request in still_ending}
        for early in self.runs.values():
            if early.adopted is not None and early.request.run_id not in ending:
                self._move(early)
        if not ending:
            self.clear(tournament_id)
            return
        for early in self.runs.values():
            if early.request.run_id not in ending:
                self._remove(early)

    def left_behind(self, tournament_id: int) -> int:
        """How many early runs' folders there are under the tournament's early/ (each drive's runs in a
        folder of its own): what :meth:`clear_left_behind` would remove, counted for a cancel's report."""
        return sum(1 for drive in _folders(self._early_dir(tournament_id)) for _ in _folders(drive))

    def keep_adopted(self, tournament_id: int, first_tries: Mapping[Path, tuple[str, int, str]]) -> None:
        """Before :meth:`clear_left_behind`: a run a killed driver had claimed whose first try (its
        attempt folder, mapped to its match id, task index and competitor) adopted an early run still
        training has its files in that early run's folder, moved only once it ended. They become the
        attempt's folder now: its try, interrupted, keeps its logs as any run's."""
        for target, (match_id, index, name) in first_tries.items():
            if (target / LOGS_DIR).exists():  # trained in its own folder: not adopted
                continue
            for drive in _folders(self._early_dir(tournament_id)):
                source = drive / _place_folder(match_id, index, name) / "attempt-1"
                if source.is_dir():
                    remove_tree(target)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(source, target)
                    break

    def clear_left_behind(self, tournament_id: int) -> None:
        """At the drive's start, the lease held: early runs of drivers killed outright, or of one that
        lost its lease (whose results it can no longer store), are gone."""
        remove_tree(self._early_dir(tournament_id))

    def _early_dir(self, tournament_id: int) -> Path:
        return tournament_dir(self.work_dir, tournament_id) / "early"

    @staticmethod
    def _remove(early: _Early) -> None:
        remove_tree(early.request.run_dir.parent)


def _place_folder(match_id: str, task_index: int, competitor: str) -> str:
    """The folder of an early run under its drive's, named by its place."""
    return f"{match_id}-t{task_index}-{competitor}"


def _folders(folder: Path) -> list[Path]:
    """The folders in ``folder``; none when it is gone (or cannot be read: then it cannot be removed either)."""
    try:
        return [entry for entry in folder.iterdir() if entry.is_dir()]
    except OSError:
        return []


def _task_or_none(task_of: TaskOf, tournament: Tournament, stage: Stage, round_index: int, match_id: str,
                  index: int) -> TaskDefinition | None:
    """The task of a place the look ahead names, or None (logged) when the task source cannot give it
    now: raised here, the error would end the drive before the runs in flight are stored."""
    try:
        return task_of(tournament, stage, round_index, match_id, index)
    except StoreError as error:
        log.warning("tournament %s: %s task %s is not trained early: %s", tournament.id, match_id, index, error)
        return None


def early_key(match_id: str, task_index: int, competitor: str, task: TaskDefinition) -> EarlyKey:
    return match_id, task_index, competitor, definition_digest(task)


def _key(request: RunRequest) -> EarlyKey:
    return early_key(request.match_id, request.task_index, request.competitor.name, request.task)

