"""Drives a tournament from the store, one idempotent step at a time, so it can always be resumed.

One driver at a time drives a tournament: it first takes the tournament's lease in the store
(``store/leases.py``), renews it from a heartbeat thread, fences every write step with it, and
releases it at the end. Another driver meanwhile says who holds the lease and waits (polling until
it can take over or the tournament finished) or raises :class:`LeaseHeld`. A lease left by a killed
driver is taken over once it expired. Then:

1. runs left RUNNING by the previous lease holder are recovered: their attempt is recorded as
   interrupted (withdrawn, when a stopped driver left a note that the store would not take its
   withdrawal: ``stopped_attempts``) and the run is PENDING again (only the lease holder does this,
   so never while another live driver executes them);
2. the first stored round with unfinished runs gets its next runs executed: each run gets a new
   attempt row, is marked RUNNING and committed, executed outside any transaction, and its report
   stored on that attempt, which becomes the run's counted attempt; a try the executor lost
   (``RunInterrupted``: its node died) is recorded as interrupted and the run is PENDING again, so
   the next step tries it again in a new attempt; a run the executor could not start
   (``RunNotStarted``: no node can hold it) has its attempt withdrawn, PENDING as if never claimed,
   and the drive stops with the error;
3. with every stored round complete, the pure engine (``engine.bracket.next_step``) is asked what is
   next: ``PlayRound`` creates the round's rows (round, matches, tasks drawn from the task source,
   one pending run per competitor and task) in one transaction; ``Finished`` stores the champion
   history, the weights and the outcome in one transaction (both written by ``tournament_steps``).

A finished run is never executed again; a tournament that died anywhere resumes from what the store
holds. A driver that lost its lease (it stalled past the expiry and was taken over) stops at its next
write with :class:`LeaseLost`, writing nothing. A tournament the operator cancelled stops its driver
too (``TournamentCancelled``), once its heartbeat or its next write step finds it: the runs in flight
are killed at once and their attempts withdrawn, and nothing of them is stored.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from trainarena.attempts import (
    interrupt_attempt,
    recover_interrupted,
    store_report,
    withdraw_attempt,
)
from trainarena.contract import RunStatus
from trainarena.early_runs import EarlyRuns, early_key
from trainarena.engine.bracket import next_step
from trainarena.engine.model import Finished, PlayRound, Stage
from trainarena.execution.output_tree import remove_tree
from trainarena.execution.supervise import EitherStop, current_stop_event, stop_when
from trainarena.records.recorder import Recorder
from trainarena.round_tasks import task_of
from trainarena.run_slots import RunSlots, Tending
from trainarena.runs import (
    RESULT_FILE_NAME,
    CompetitorInfo,
    DriverStopped,
    ProgressEvent,
    RunExecutor,
    RunInterrupted,
    RunNotStarted,
    RunReport,
    RunRequest,
    TaskSource,
    attempt_dir,
    clear_stale_folder,
    definition_from_json,
    remove_empty_folders,
    tournament_dir,
)
from trainarena.settings import LeaseRules, TournamentRules, WeightRules
from trainarena.stopped_attempts import (
    WithdrawalNotes,
    clear_left_behind,
    first_tries,
    stopped_by,
    under_way,
    withdraw_stopped,
)
from trainarena.store import (
    AttemptStatus,
    Round,
    Run,
    RunAttempt,
    Store,
    Tournament,
    TournamentStatus,
    create_tournament,
    get_tournament,
)
from trainarena.store.leases import (
    DriverIdentity,
    LeaseHeld,
    LeaseHolder,
    LeaseKeeper,
    LeaseLost,
    fence,
    lease_holder,
    release,
    renew,
    try_acquire,
)
from trainarena.store.records import fix_rules, load_record, load_tournament, open_round, pending_runs, rules_of, stored_attempts
from trainarena.store.tournaments import TournamentCancelled, cancelled_problem
from trainarena.tournament_steps import create_round, store_finish

__all__ = [
    "LeaseHeld",
    "LeaseLost",
    "Tending",
    "create_tournament",
    "drive",
    "load_record",
]

Progress = Callable[[ProgressEvent], None]
Waiting = Callable[[LeaseHolder], None]
# Told each stored run's id and folder once its report is committed, to write its RESULT_FILE_NAME there
# (the CLI's result.json); and, at a drive's start, of each stored run whose folder still lacks it.
RunStored = Callable[[int, Path], None]
# How a run's last try ended when it was cut short and is played again as a new attempt.
_CUT_SHORT = (AttemptStatus.INTERRUPTED, AttemptStatus.WITHDRAWN)


# --- Driving -------------------------------------------------------------------------------------


@dataclass
class _Driver:
    store: Store
    tournament_id: int
    task_source: TaskSource
    executor: RunExecutor
    rules: TournamentRules
    weight_rules: WeightRules
    work_dir: Path
    progress: Progress
    parallel: int
    max_attempts: int | None
    lease_rules: LeaseRules
    me: DriverIdentity
    on_stored: RunStored | None = None
    recorder: Recorder | None = None
    early: EarlyRuns | None = None  # runs of a foreseen round trained on free slots (early_runs)
    champion_models_due: bool = False  # a crowning owes its champion's models to the registry
    # Set to kill the runs in flight at once: the lease was lost, or the tournament cancelled.
    stop_runs: threading.Event = field(default_factory=threading.Event)

    def emit(self, kind: str, **fields: Any) -> None:
        self.progress(ProgressEvent(kind, **fields))

    @contextlib.contextmanager
    def writing(self, *, once_cancelled: bool = False) -> Iterator[Session]:
        """A write step's transaction, fenced by the lease (LeaseLost if another driver took over) and,
        unless ``once_cancelled`` (withdrawing the drive's attempts), refused once the operator cancelled
        the tournament (TournamentCancelled): nothing of it is stored after its cancellation."""
        with self.store.transaction() as session:
            fence(session, self.tournament_id, self.me, self.lease_rules)
            tournament = get_tournament(session, self.tournament_id, lock=True)  # a cancel waits for this step
            if not once_cancelled and (cancelled := cancelled_problem(tournament)) is not None:
                raise cancelled
            yield session

    def renew_lease(self) -> bool:
        """Renew the lease (False: lost); a cancellation found meanwhile kills the runs in flight at once
        (``stop_runs``), so a cancelled tournament's runs do not train on for their whole budget."""
        with self.store.transaction() as session:
            renewed = renew(session, self.tournament_id, self.me, self.lease_rules)
            if renewed and cancelled_problem(get_tournament(session, self.tournament_id)) is not None:
                self.stop_runs.set()
            return renewed

    def take_lease(self, wait: bool, on_wait: Waiting | None) -> Finished | None:
        """Take the tournament's lease, waiting while another live driver holds it (when ``wait``).
        Returns the end instead when the tournament is (or meanwhile got) finished."""
        announced: str | None = None
        while True:
            with self.store.transaction() as session:
                tournament = get_tournament(session, self.tournament_id)
                if tournament.status == TournamentStatus.FINISHED:
                    return self._stored_end(session, load_tournament(session, self.tournament_id))
                if (cancelled := cancelled_problem(tournament)) is not None:
                    raise cancelled
                holder = lease_holder(session, self.tournament_id)
                dead = holder is not None and holder.is_dead_local_process(self.me)
                holder = try_acquire(session, self.tournament_id, self.me, self.lease_rules,
                                     take_from=holder.owner_id if dead and holder else None)
                if holder is None:  # the lease is ours: from now on the tournament's own rules, stored at its first drive
                    self.rules = fix_rules(tournament, self.rules)
            if holder is None:
                return None
            if not wait:
                raise LeaseHeld(f"tournament {tournament.name!r} is being driven by {holder.describe()}; "
                                "wait for it or try again later", self.tournament_id, holder)
            if on_wait is not None and announced != holder.owner_id:
                on_wait(holder)
                announced = holder.owner_id
            time.sleep(self.lease_rules.wait_poll_seconds)

    def announce_resumption(self, session: Session) -> None:
        """A tournament left mid-way (by a stop, a fault or a killed driver) is resumed: say at which
        round, with how many of its runs still to play and how many of them were cut short: those whose
        last try was interrupted (a driver killed or failed) or withdrawn (stopped by a signal). Counting
        only the tries this drive recovered said "none cut short" after a `tournament run` stopped by
        Ctrl-C, which withdraws its own tries before it exits."""
        tournament = get_tournament(session, self.tournament_id)
        round_row = open_round(session, self.tournament_id) or (tournament.rounds[-1] if tournament.rounds else None)
        if round_row is None:
            return
        left = pending_runs(session, round_row.id)
        cut_short = tuple(f"{run.competitor.name} on {definition_from_json(run.task.definition).name}" for run in left
                          if run.attempt_records and run.attempt_records[-1].status in _CUT_SHORT)
        self.emit("resumed", tournament=tournament.name, tournament_id=tournament.id, round_index=round_row.index,
                  stage=Stage(round_row.stage), runs_total=len(left), runs_interrupted=len(cut_short),
                  cut_short=cut_short)

    def step(self, budget: int) -> tuple[int, Finished | None, list[RunRequest]]:
        """One transaction: returns (steps taken, the end if reached, runs claimed to execute now). A claim
        loads the open round's next pending runs only; the whole record, once a round is complete."""
        with self.writing() as session:
            tournament = get_tournament(session, self.tournament_id)
            if tournament.status == TournamentStatus.FINISHED:
                return 0, self._stored_end(session, load_tournament(session, self.tournament_id)), []
            round_row = open_round(session, self.tournament_id)
            if round_row is not None:
                return self._claim_runs(session, tournament, round_row, budget)
            tournament = load_tournament(session, self.tournament_id)
            if self.recorder is not None:
                self.recorder.rounds_played(session, tournament, self.rules)
            decision = next_step(load_record(tournament, self.rules), self.rules)
            if isinstance(decision, PlayRound):
                if self.recorder is not None and not tournament.rounds:
                    self.recorder.tournament_starting(session, tournament)
                runs = create_round(session, tournament, decision.plan, self.task_source)
                self.emit("round_created", tournament=tournament.name, round_index=decision.plan.index,
                          stage=decision.plan.stage, runs_total=runs)
                return 1, None, []
            if self.early is not None:
                self.early.drop_unneeded(None)
            store_finish(session, tournament, decision, self.weight_rules, self.champion_models_due)
            if self.recorder is not None:
                self.recorder.tournament_finished(session, tournament, self.rules, self.weight_rules)
            self.emit("finished", tournament=tournament.name, competitor=decision.champion)
            return 1, decision, []

    def _stored_end(self, session: Session, tournament: Tournament) -> Finished:
        rules = rules_of(tournament, self.rules)
        decision = next_step(load_record(tournament, rules), rules)
        if not isinstance(decision, Finished):
            raise ValueError(f"tournament {tournament.name!r} is marked finished but its record plays on")
        return decision

    def _claim_runs(self, session: Session, tournament: Tournament, round_row: Round,
                    budget: int) -> tuple[int, None, list[RunRequest]]:
        """Mark up to ``parallel`` pending runs RUNNING, and every one trained early (which needs no
        slot: it is adopted); a run interrupted too often fails instead."""
        steps, claimed, adopted = 0, [], set()
        # Only while some early run may be adopted can a claim take more than its slots' worth.
        boss = round_row.stage == Stage.BOSS.value
        limit = None if self.early is not None and self.early.awaiting(round_row.index, boss) else min(budget, self.parallel)
        for run in pending_runs(session, round_row.id, limit):
            key = None if self.early is None or run.attempts else early_key(
                run.task.match.match_id, run.task.index, run.competitor.name, definition_from_json(run.task.definition))
            if key is not None and self.early is not None and self.early.adoptable(key):
                adopted.add(key)
            elif steps + len(claimed) - len(adopted) >= min(budget, self.parallel):
                continue
            # A try the platform withdrew on purpose (its driver stopped by a signal) costs none.
            if self.max_attempts is not None and run.tries >= self.max_attempts:
                run.status = RunStatus.FAILED.value
                run.abandoned_reason = f"interrupted {run.tries} times without finishing; not tried again"
                steps += 1
                continue
            run.status = RunStatus.RUNNING.value
            run.attempt_records.append(RunAttempt(number=run.attempts + 1, status=AttemptStatus.RUNNING,
                                                  started_at=datetime.now(UTC), driver_host=self.me.host,
                                                  driver_pid=self.me.pid))
            claimed.append(self._request(tournament, round_row, run))
            if key in adopted:
                self.early.adopt(claimed[-1])  # type: ignore[union-attr]
        if self.early is not None:
            self.early.drop_unneeded(round_row.index, frozenset(adopted), boss=boss)
        return steps, None, claimed

    def foresee(self, budget: int) -> list[RunRequest]:
        """Up to ``budget`` runs of the round foreseen after the open one, to train early (``early_runs``)."""
        if self.early is None:
            return []
        with self.store.session() as session:  # reads only: an early run is written once adopted
            return self.early.foresee(session, self.tournament_id, self.rules,
                                      lambda *place: task_of(self.task_source, *place), budget)

    def rule_out_early(self) -> None:
        """Drop the early runs the outcomes stored so far rule out (``EarlyRuns.rule_out``)."""
        if self.early is None or not self.early.unclaimed():
            return
        with self.store.session() as session:
            self.early.rule_out(session, self.tournament_id, self.rules, lambda *place: task_of(self.task_source, *place))

    def _request(self, tournament: Tournament, round_row: Round, run: Run) -> RunRequest:
        task = run.task
        competitor = run.competitor
        run_dir = attempt_dir(self.work_dir, tournament.id, run.id, run.attempts)
        clear_stale_folder(run_dir)  # claimed now, under the lease: nothing of this attempt can be there yet
        return RunRequest(
            tournament_id=tournament.id,
            tournament_name=tournament.name,
            run_id=run.id,
            attempt=run.attempts,
            task_id=task.id,
            competitor=CompetitorInfo(
                competitor.name, competitor.repo_url, competitor.commit, competitor.tree_hash, competitor.entrypoint
            ),
            stage=Stage(round_row.stage),
            match_id=task.match.match_id,
            task_index=task.index,
            task=definition_from_json(task.definition),
            run_dir=run_dir,
        )

    def run_started(self, request: RunRequest) -> None:
        request.run_dir.mkdir(parents=True, exist_ok=True)
        self.emit("run_started", **self._run_fields(request))

    def run_finished(self, request: RunRequest, report: RunReport) -> None:
        if self.recorder is not None:
            self.recorder.warm(report, request.task)
        with self.writing() as session:
            store_report(session, request.run_id, request.attempt, report)
            if self.recorder is not None:
                self.recorder.run_stored(session, request.run_id)
        if self.on_stored is not None:
            self.on_stored(request.run_id, request.run_dir)
        score = None if report.evaluation is None else report.evaluation.score
        self.emit("run_finished", status=RunStatus(report.status), score=score, reason=report.failure_reason,
                  **self._run_fields(request))

    def write_unwritten_results(self) -> None:
        """The store is the one truth of a run's end, its result file a copy written after the commit:
        a driver killed between the two left a stored run without it, and ``on_stored`` is told of that
        run now, to write it from the store (its attempt's folder there: one cleaned up stays gone)."""
        if self.on_stored is None:
            return
        with self.store.session() as session:
            stored = stored_attempts(session, self.tournament_id)
        for run_id, number in stored:
            run_dir = attempt_dir(self.work_dir, self.tournament_id, run_id, number)
            if run_dir.is_dir() and not (run_dir / RESULT_FILE_NAME).exists():
                self.on_stored(run_id, run_dir)

    def run_interrupted(self, request: RunRequest, error: RunInterrupted) -> None:
        with self.writing() as session:
            interrupt_attempt(session, request.run_id, request.attempt, str(error))
        remove_tree(request.run_dir / "output")  # recorded as interrupted: nothing of it is scored or kept; logs stay
        self.emit("run_interrupted", **self._run_fields(request))

    def run_not_started(self, request: RunRequest, error: RunNotStarted) -> None:
        with self.writing() as session:
            withdraw_attempt(session, request.run_id, request.attempt)
        shutil.rmtree(request.run_dir, ignore_errors=True)  # the attempt is gone; its number is claimed again
        # So are its run's and the tournament's folders it leaves empty (a full disk let the drive make them).
        remove_empty_folders(request.run_dir.parent, tournament_dir(self.work_dir, self.tournament_id))
        self.emit("run_not_started", **self._run_fields(request))

    @staticmethod
    def _run_fields(request: RunRequest) -> dict[str, Any]:
        return {
            "tournament": request.tournament_name,
            "stage": request.stage,
            "match_id": request.match_id,
            "competitor": request.competitor.name,
            "task_index": request.task_index,
            "task_name": request.task.name,
            "budget_seconds": request.task.budget_seconds,
        }


def drive(
    store: Store,
    tournament_id: int,
    *,
    task_source: TaskSource,
    executor: RunExecutor,
    rules: TournamentRules,
    weight_rules: WeightRules,
    work_dir: Path,
    progress: Progress | None = None,
    max_steps: int | None = None,
    until: Callable[[], bool] | None = None,
    tending: Tending | None = None,
    parallel: int = 1,
    max_attempts: int | None = None,
    lease_rules: LeaseRules | None = None,
    wait: bool = False,
    on_wait: Waiting | None = None,
    on_stored: RunStored | None = None,
    recorder: Recorder | None = None,
    champion_models_due: bool = False,
) -> Finished | None:
    """Drive a tournament until it finishes; return how it ended (also for an already finished one).

    A step is one round created, one run executed, or the finish stored; with ``max_steps`` the drive
    stops after that many and returns None (drive again to go on); likewise once ``until()`` (asked
    whenever a run is done) says to stop, the runs in flight finished and stored first (early runs not
    adopted yet are dropped). ``tending`` is the caller's other work, done on the calling thread between
    waits for the runs in flight every ``tending.every_seconds`` while they go on (a daemon's schedule:
    a creation or publishing that fell due is not held up by a run's budget); ``until`` is asked after
    it too. Its faults never end the drive (``run_slots.Tending``). ``parallel`` runs of a round are
    executed at once on a thread pool (the executor's runs are separate processes), each slot taking the
    next pending run as soon as its own is done; a ``StagedExecutor``'s artifacts are scored on a thread
    of their own meanwhile (``run_slots.RunSlots``); a slot with no pending run left trains the runs of
    the round foreseen next early (``early_runs``; not in a drive of ``max_steps``). All store writes
    stay on the calling thread.
    ``max_attempts`` fails a run that has been interrupted that often (None: ``lease_rules.max_attempts``). ``work_dir`` holds one fresh directory per run attempt.

    While another live driver holds the tournament's lease: with ``wait``, ``on_wait`` is told who
    (once per holder) and the drive polls until it can take over or the tournament finished (then
    its end is returned); without, :class:`LeaseHeld` is raised at once, naming the holder.
    ``on_stored`` is called with each run's id and folder after its report is stored. A ``recorder``
    signs and logs each stored run, the commitment before the first round, each complete round and the
    end, in the transactions that store them (``records.recorder``). ``champion_models_due`` marks a
    champion it crowns as owed its models' registration, in the transaction that crowns it
    (``ChampionHistory.models_due``; the registration, after it, is the caller's: ``registry.champions``).
    """
    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {parallel}")
    me = DriverIdentity.of_this_process()
    driver = _Driver(store, tournament_id, task_source, executor, rules, weight_rules, work_dir,
                     progress or (lambda _event: None), parallel,
                     max_attempts if max_attempts is not None else (lease_rules or LeaseRules()).max_attempts,
                     lease_rules or LeaseRules(), me, on_stored,
                     recorder, champion_models_due=champion_models_due)
    end = driver.take_lease(wait, on_wait)
    if end is not None:
        return end
    try:
        # Lost (another driver took over after a stall), its runs are killed at once: their results can
        # no longer be stored, and the new driver trains the same runs. Stopped by a signal (DriverStopped)
        # or cancelled (found by the heartbeat or a write step), they are killed at once and withdrawn.
        with under_way(work_dir, tournament_id, me), \
                LeaseKeeper(driver.renew_lease, driver.lease_rules.heartbeat_seconds, driver.stop_runs.set), \
                stop_when(EitherStop(driver.stop_runs, current_stop_event())):
            try:
                return _drive_with_lease(driver, max_steps, until, tending)
            except (DriverStopped, TournamentCancelled) as stopped:
                why = (stopped_by(me, stopped.signal_name) if isinstance(stopped, DriverStopped)
                       else "its tournament was cancelled while it ran")
                withdraw_stopped(partial(driver.writing, once_cancelled=True), work_dir, tournament_id, me, why)
                raise
    finally:
        # A lease left behind (the store unreachable) expires by itself; the drive's own error matters more.
        with contextlib.suppress(SQLAlchemyError), store.transaction() as session:
            release(session, tournament_id, me)


def _drive_with_lease(driver: _Driver, max_steps: int | None, until: Callable[[], bool] | None,
                      tending: Tending | None) -> Finished | None:
    notes = WithdrawalNotes.read(tournament_dir(driver.work_dir, driver.tournament_id))
    with driver.writing() as session:
        recovered = recover_interrupted(session, driver.tournament_id, driver.me, notes.reason_for)
        tries = first_tries(session, driver.work_dir, driver.tournament_id, recovered)
        driver.announce_resumption(session)
    notes.remove()
    # Whether or not this drive trains runs early, those of a driver killed outright are gone: a drive
    # that trains none (one slot) would otherwise leave their folders, artifacts included, for good.
    clear_left_behind(driver.work_dir, driver.tournament_id, recovered, tries)
    driver.write_unwritten_results()
    # A drive of so many steps claims those, none early.
    if max_steps is None and driver.parallel > 1:
        driver.early = EarlyRuns(driver.work_dir)
    slots = RunSlots(driver)
    try:
        return slots.drive(max_steps, until, tending)
    except (DriverStopped, TournamentCancelled):
        driver.stop_runs.set()  # the runs in flight are killed at once (SIGKILL): nothing of them is stored
        slots.close(at_once=True)
        raise
    finally:
        slots.close()
