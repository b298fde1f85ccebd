"""Run slots: how a driver executes the runs of a tournament (``orchestrator.drive``).

``parallel`` slots each take the next pending run the moment they are free, and a staged executor's
artifacts are scored on one thread while the slots train the next runs (docs/benchmarks.md,
"Overhead"); a slot with no pending run left trains the next round's runs early when that round is
foreseen (``early_runs``). The driver claims runs and stores what came of them; the slots only schedule.
While runs are in flight the driving thread waits for them; a caller with other work (``serve``'s
schedule) passes ``Tending``, done between those waits every so often, while the runs go on.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from trainarena.early_runs import EarlyRuns
from trainarena.engine.model import Finished
from trainarena.execution.disk import os_error_text
from trainarena.execution.supervise import EitherStop, current_stop_event, stop_when, told_at_deadline
from trainarena.runs import RunExecutor, RunInterrupted, RunNotStarted, RunReport, RunRequest, record_timings

log = logging.getLogger(__name__)
# How long a drive told to stop waits for the runs it killed at once to end (their sandboxes gone).
STOPPED_RUNS_WAIT_SECONDS = 10.0
WAKE_SECONDS = 1.0


def _log_warm_up_failure(warming: Future[Any]) -> None:
    """The warm-up only saves time (the first evaluation starts its worker itself), so its failure stops
    nothing; but it is said, with its traceback, rather than lost with the future."""
    error = warming.exception()
    if error is not None:
        log.warning("warming up the evaluation worker failed; the first evaluation starts it instead: %s", error,
                    exc_info=error)


def _stoppable(work: Callable[[RunRequest], Any], stop: threading.Event, request: RunRequest) -> Any:
    with stop_when(stop):
        return work(request)


def _told_at_deadline(work: Callable[[RunRequest], Any], told: Callable[[], None], request: RunRequest) -> Any:
    with told_at_deadline(told):
        return work(request)


@dataclass(frozen=True)
class Tending:
    """The caller's other work during a drive (``serve``: a creation or publishing that fell due): ``work``
    is called on the driving thread between waits for the runs in flight, every ``every_seconds`` (counted
    from the end of the previous call, so never in a busy loop), while the runs go on. It must be quick
    and report its own faults; one it raises anyway is logged and the drive goes on."""

    work: Callable[[], None]
    every_seconds: float

    def __post_init__(self) -> None:
        if not self.every_seconds > 0:
            raise ValueError(f"Tending.every_seconds must be positive, got {self.every_seconds}")


class SlotDriver(Protocol):
    """The driver's side: it claims runs in its write steps and stores their outcomes."""

    tournament_id: int
    executor: RunExecutor
    parallel: int
    early: EarlyRuns | None  # with one, free slots train the runs of a foreseen round early

    def step(self, budget: int) -> tuple[int, Finished | None, list[RunRequest]]: ...

    def run_started(self, request: RunRequest) -> None: ...

    def run_finished(self, request: RunRequest, report: RunReport) -> None: ...

    def run_interrupted(self, request: RunRequest, error: RunInterrupted) -> None: ...

    def run_not_started(self, request: RunRequest, error: RunNotStarted) -> None: ...

    def foresee(self, budget: int) -> list[RunRequest]: ...

    def rule_out_early(self) -> None: ...


class RunSlots:
    """``parallel`` run slots, each given the next pending run the moment it is free (not when the
    other slots' runs are done too). With a ``StagedExecutor`` a slot is free once the script is done
    and its artifact checked: the artifact is scored on one evaluation thread meanwhile, while the slot
    trains the next run. A round's next round waits for every score of it, as the engine needs them.

    Each run's folder gets its slot's part of the timings: ``slot`` and ``claimed_at`` (unix seconds),
    ``slot_freed_at`` (when the slot could take the next run) and ``store`` (seconds storing its
    report); a slot's time for a run ends at the slot's next ``claimed_at``, or at the tournament's end.
    A run trained early (``early_runs``) has the timings of the slot that trained it, from its start."""

    def __init__(self, driver: SlotDriver) -> None:
        self.driver = driver
        self.staged = callable(getattr(driver.executor, "train", None))
        self.runs = ThreadPoolExecutor(max_workers=driver.parallel, thread_name_prefix="trainarena-run")
        self.scoring = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trainarena-eval") if self.staged else None
        self.free = list(reversed(range(driver.parallel)))
        self.in_flight: dict[Future[Any], tuple[RunRequest, int | None]] = {}  # slot None: being scored
        self.marks: dict[int, dict[str, Any]] = {}
        self.errors: list[BaseException] = []
        self.warmed = False
        self.early = driver.early
        self.deadline_news = threading.Event()  # set when a run's script reached its deadline: look ahead again
        self.tending: Tending | None = None
        self.tend_at = 0.0  # time.monotonic() of the next tending
        self.closed = False

    def drive(self, max_steps: int | None, until: Callable[[], bool] | None = None,
              tending: Tending | None = None) -> Finished | None:
        """Claim and run until the tournament ends (returned), or until ``max_steps`` steps or ``until()``
        (asked once a step was taken, then whenever a run is done or ``tending`` was done) says to yield:
        None, once the runs in flight are finished and stored (early ones not adopted yet are dropped)."""
        steps = 0
        yielding = False
        claim = True  # False after a wait that only tended: nothing changed that a claim could use
        self.tending = tending
        if tending is not None:
            self.tend_at = time.monotonic() + tending.every_seconds
        while True:
            if until is not None and not yielding and steps and until():  # after some progress: never a busy loop
                yielding = True
                if self.early is not None:  # no round adopts them now: ended at once, never stored
                    self.early.drop_unneeded(None)
            while claim and self.free and not self.errors and not yielding and (max_steps is None or steps < max_steps):
                budget = len(self.free) if max_steps is None else min(len(self.free), max_steps - steps)
                taken, end, requests = self.driver.step(budget)
                if end is not None:  # nothing in flight but dropped early runs, stopped: a round ends when all its runs are stored
                    return end
                steps += taken + len(requests)
                for request in requests:
                    taken_over = None if self.early is None else self.early.take_over(request)
                    if taken_over is None:
                        self._start(request)
                    else:
                        self._adopt(request, *taken_over)
                if taken == 0 and not requests:
                    # No run of the open round left to claim: free slots train the next round's early.
                    for request in self.driver.foresee(len(self.free)) if self.early is not None and self.free else ():
                        self._start(request)
                    break
            if not self.in_flight:
                if self.errors:
                    raise self.errors[0]
                if yielding or (max_steps is not None and steps >= max_steps):
                    return None
                raise RuntimeError(f"tournament {self.driver.tournament_id}: an open round has no pending run after recovery")
            claim = self._collect()

    def _start(self, request: RunRequest) -> None:
        slot = self.free.pop()
        self.marks[request.run_id] = {"slot": slot, "claimed_at": time.time()}
        try:
            if self.early is not None and self.early.is_early(request):  # told once its round adopts it
                request.run_dir.mkdir(parents=True, exist_ok=True)
            else:
                self.driver.run_started(request)
        except OSError as error:
            self._folder_not_made(request, slot, error)
            return
        warm_up = getattr(self.driver.executor, "warm_up", None)
        if self.scoring is not None and warm_up is not None and not self.warmed:
            # The scoring thread readies its worker while the first scripts train (it would otherwise
            # start cold on the first artifact, possibly at a round's end where every slot waits).
            warming = self.scoring.submit(contextvars.copy_context().run, warm_up, request.task)
            warming.add_done_callback(_log_warm_up_failure)
            self.warmed = True
        work = self.driver.executor.train if self.staged else self.driver.executor.execute  # type: ignore[attr-defined]
        if self.early is not None and self.early.is_early(request):  # ended once dropped, or as the drive's runs
            # Dropped, it is killed at once; a stop around the drive gives it the grace (it may be adopted by then).
            stop = EitherStop(self.early.stop_of(request), current_stop_event())
            work = partial(_stoppable, work, stop)
        if self.early is not None:
            work = partial(_told_at_deadline, work, partial(self._deadline_reached, request))
        # In the caller's context: a stop requested around the drive (execution.supervise.stop_when) reaches the run.
        self.in_flight[self.runs.submit(contextvars.copy_context().run, work, request)] = (request, slot)

    def _folder_not_made(self, request: RunRequest, slot: int, error: OSError) -> None:
        """The platform's disk (unwritable, full) refused the run's folder: as a run no node could hold,
        its attempt is withdrawn (left running, the next drive would charge it a try as interrupted) and
        the drive stops, naming the path, once the runs in flight are stored. The folders this left empty
        are removed with the attempt (``run_not_started``), an early run's with it (``EarlyRuns.lost``)."""
        self.free.append(slot)
        self.marks.pop(request.run_id, None)
        not_started = RunNotStarted(f"could not make the folder of run {request.run_id}: {os_error_text(error, request.run_dir)}")
        self._not_started(request, not_started)
        self._stop_claiming(not_started)

    def _not_started(self, request: RunRequest, error: RunNotStarted) -> None:
        """A run that could not start is withdrawn; an early one as its stored run's attempt once a round
        adopted it (left running, the next drive would charge it a try), else it is dropped."""
        withdrawn = self.early.lost(request) if self.early is not None and self.early.is_early(request) else request
        if withdrawn is not None:
            self.driver.run_not_started(withdrawn, error)

    def _stop_claiming(self, error: BaseException) -> None:
        """Nothing is claimed after an error, raised once the runs in flight are stored: no round adopts
        the early runs now."""
        self.errors.append(error)
        if self.early is not None:
            self.early.drop_unneeded(None)

    def _collect(self) -> bool:
        """Wait for a run's script or score; store what is final, queue what is to be scored. If an
        executor raised, no run is claimed any more; the others still finish and are stored, then the
        first error is raised. With ``tending``, the wait ends when it is due, and it is done (after
        what finished meanwhile is stored). Returns whether any run or score was done, or a run's script
        reached its deadline (its failure may fix the next round)."""
        # Woken every WAKE_SECONDS at least: a stop signal that reached another thread has its handler
        # run on this one only once it runs Python again (cli/demo.py, stop_at_once_on_signals).
        due = WAKE_SECONDS if self.tending is None else self.tend_at - time.monotonic()
        done, _ = wait(self.in_flight, timeout=max(0.0, min(due, WAKE_SECONDS)), return_when=FIRST_COMPLETED)
        for future in done:
            request, slot = self.in_flight.pop(future)
            if slot is not None:
                self.free.append(slot)
                self.marks[request.run_id]["slot_freed_at"] = time.time()
            error = future.exception()
            early = self.early is not None and self.early.is_early(request)
            if isinstance(error, RunInterrupted):  # its node died: recorded, and the run is claimed again
                self.marks.pop(request.run_id, None)
                adopted = self.early.lost(request) if early else request  # type: ignore[union-attr]
                if adopted is not None:
                    self.driver.run_interrupted(adopted, error)
            elif error is not None:
                if isinstance(error, RunNotStarted):  # no node could hold it: withdrawn, then the drive stops
                    self._not_started(request, error)
                elif early:
                    self.early.lost(request)  # type: ignore[union-attr]
                self._stop_claiming(error)
            elif isinstance(outcome := future.result(), RunReport):
                stored = self.early.finished(request, outcome) if early else (request, outcome)  # type: ignore[union-attr]
                if stored is not None:
                    self._store(*stored, marks_of=request.run_id)
                    if self.early is not None:  # a failure may rule out early runs: ended now, slots or not
                        self.driver.rule_out_early()
            elif not (early and self.early.dropped(request)):  # type: ignore[union-attr]
                assert self.scoring is not None
                self.in_flight[self.scoring.submit(contextvars.copy_context().run, outcome.finish)] = (request, None)
        deadline_news = self.deadline_news.is_set()
        if deadline_news:
            self.deadline_news.clear()
            self.driver.rule_out_early()
        self._tend()
        return bool(done) or deadline_news

    def _deadline_reached(self, request: RunRequest) -> None:
        """From the run's thread: its script reached its deadline."""
        assert self.early is not None
        self.early.deadline_reached(request)
        self.deadline_news.set()

    def _tend(self) -> None:
        """The caller's other work, when due; its faults are logged and never end the drive."""
        if self.tending is None or time.monotonic() < self.tend_at:
            return
        try:
            self.tending.work()
        except Exception:  # noqa: BLE001 - the caller's other work never breaks the runs of a tournament
            log.exception("tournament %s: the work done between runs failed; the drive goes on", self.driver.tournament_id)
        self.tend_at = time.monotonic() + self.tending.every_seconds

    def _adopt(self, request: RunRequest, early_id: int, report: RunReport | None) -> None:
        """A claimed run trained early: stored now when done, else once its early run is."""
        self.driver.run_started(request)
        if report is not None:
            self._store(request, report, marks_of=early_id)

    def _store(self, request: RunRequest, report: RunReport, marks_of: int) -> None:
        """Store a run's report; its slot's timings are those kept under ``marks_of`` (its early run's
        provisional id when it was trained early)."""
        started = time.monotonic()
        self.driver.run_finished(request, report)
        record_timings(request.run_dir, self.marks.pop(marks_of) | {"store": time.monotonic() - started})

    def close(self, at_once: bool = False) -> None:
        """Wait for the runs in flight (early runs not adopted yet are stopped first: after a step that
        raised, no round adopts them, and they would hold the drive's end for their whole budget) and the
        scoring, then end. ``at_once``: the drive was told to
        stop and its runs were killed at once: wait (a bounded time) for them to end, not for any
        evaluation (its worker dies with the process), store nothing of them and remove its early runs."""
        if self.closed:
            return
        self.closed = True
        if at_once:
            wait([f for f, (_request, slot) in self.in_flight.items() if slot is not None], timeout=STOPPED_RUNS_WAIT_SECONDS)
            self.runs.shutdown(wait=False, cancel_futures=True)
            if self.scoring is not None:
                self.scoring.shutdown(wait=False, cancel_futures=True)
            if self.early is not None:  # killed, never to be stored: their folders go now
                self.early.clear_stopped(self.driver.tournament_id, [request for future, (request, _slot)
                                                                     in self.in_flight.items() if not future.done()])
            return
        if self.early is not None:
            self.early.drop_unneeded(None)
        self.runs.shutdown(wait=True)
        if self.scoring is not None:
            end_scoring = getattr(self.driver.executor, "end_scoring", None)
            if end_scoring is not None:  # on the scoring thread, whose worker it is
                self.scoring.submit(end_scoring)
            self.scoring.shutdown(wait=True)
        if self.early is not None:
            self.early.clear(self.driver.tournament_id)
