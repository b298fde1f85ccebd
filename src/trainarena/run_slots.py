"""Run slots: how a driver executes the runs of a tournament (``orchestrator.drive``).

``parallel`` slots each take the next pending run the moment they are free, and a staged executor's
artifacts are scored on one thread while the slots train the next runs (docs/benchmarks.md,
"Overhead"). The driver claims runs and stores what came of them; the slots only schedule.
"""

from __future__ import annotations

import contextvars
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from trainarena.engine.model import Finished
from trainarena.runs import RunExecutor, RunInterrupted, RunReport, RunRequest, record_timings


class SlotDriver(Protocol):
    """The driver's side: it claims runs in its write steps and stores their outcomes."""

    tournament_id: int
    executor: RunExecutor
    parallel: int

    def step(self, budget: int) -> tuple[int, Finished | None, list[RunRequest]]: ...

    def run_started(self, request: RunRequest) -> None: ...

    def run_finished(self, request: RunRequest, report: RunReport) -> None: ...

    def run_interrupted(self, request: RunRequest, error: RunInterrupted) -> None: ...


class RunSlots:
    """``parallel`` run slots, each given the next pending run the moment it is free (not when the
    other slots' runs are done too). With a ``StagedExecutor`` a slot is free once the script is done
    and its artifact checked: the artifact is scored on one evaluation thread meanwhile, while the slot
    trains the next run. A round's next round waits for every score of it, as the engine needs them.

    Each run's folder gets its slot's part of the timings: ``slot`` and ``claimed_at`` (unix seconds),
    ``slot_freed_at`` (when the slot could take the next run) and ``store`` (seconds storing its
    report); a slot's time for a run ends at the slot's next ``claimed_at``, or at the tournament's end."""

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

    def drive(self, max_steps: int | None) -> Finished | None:
        steps = 0
        while True:
            while self.free and not self.errors and (max_steps is None or steps < max_steps):
                budget = len(self.free) if max_steps is None else min(len(self.free), max_steps - steps)
                taken, end, requests = self.driver.step(budget)
                if end is not None:  # only with nothing in flight: a round ends when all its runs are stored
                    return end
                steps += taken + len(requests)
                for request in requests:
                    self._start(request)
                if taken == 0 and not requests:
                    break
            if not self.in_flight:
                if self.errors:
                    raise self.errors[0]
                if max_steps is not None and steps >= max_steps:
                    return None
                raise RuntimeError(f"tournament {self.driver.tournament_id}: an open round has no pending run after recovery")
            self._collect()

    def _start(self, request: RunRequest) -> None:
        slot = self.free.pop()
        self.marks[request.run_id] = {"slot": slot, "claimed_at": time.time()}
        self.driver.run_started(request)
        warm_up = getattr(self.driver.executor, "warm_up", None)
        if self.scoring is not None and warm_up is not None and not self.warmed:
            # The scoring thread readies its worker while the first scripts train (it would otherwise
            # start cold on the first artifact, possibly at a round's end where every slot waits).
            self.scoring.submit(contextvars.copy_context().run, warm_up, request.task)
            self.warmed = True
        work = self.driver.executor.train if self.staged else self.driver.executor.execute  # type: ignore[attr-defined]
        # In the caller's context: a stop requested around the drive (execution.supervise.stop_when) reaches the run.
        self.in_flight[self.runs.submit(contextvars.copy_context().run, work, request)] = (request, slot)

    def _collect(self) -> None:
        """Wait for a run's script or score; store what is final, queue what is to be scored. If an
        executor raised, no run is claimed any more; the others still finish and are stored, then the
        first error is raised."""
        done, _ = wait(self.in_flight, return_when=FIRST_COMPLETED)
        for future in done:
            request, slot = self.in_flight.pop(future)
            if slot is not None:
                self.free.append(slot)
                self.marks[request.run_id]["slot_freed_at"] = time.time()
            error = future.exception()
            if isinstance(error, RunInterrupted):  # its node died: recorded, and the run is claimed again
                self.marks.pop(request.run_id, None)
                self.driver.run_interrupted(request, error)
            elif error is not None:
                self.errors.append(error)
            elif isinstance(outcome := future.result(), RunReport):
                self._store(request, outcome)
            else:
                assert self.scoring is not None
                self.in_flight[self.scoring.submit(contextvars.copy_context().run, outcome.finish)] = (request, None)

    def _store(self, request: RunRequest, report: RunReport) -> None:
        started = time.monotonic()
        self.driver.run_finished(request, report)
        record_timings(request.run_dir, self.marks.pop(request.run_id) | {"store": time.monotonic() - started})

    def close(self) -> None:
        self.runs.shutdown(wait=True)
        if self.scoring is not None:
            end_scoring = getattr(self.driver.executor, "end_scoring", None)
            if end_scoring is not None:  # on the scoring thread, whose worker it is
                self.scoring.submit(end_scoring)
            self.scoring.shutdown(wait=True)
