"""The loop of ``trainarena serve``: ask the schedule what is due (operations/schedule.py), do it,
sleep until the next due time or a stop. The store is the clock and the memory, so a killed ``serve``
started again picks up where the store says it was.

- Create: a tournament from the kind's pool (under a store-wide lock, the facts read again inside it,
  so two ``serve`` on one store create it once). Refused (pool too small, nobody can enter) or
  faulted: logged with the reason, and the kind rests for ``schedule.retry_after_fault`` (not until its
  next due time: the operator's fix, a task added, is taken up within that); the other kind goes on.
- Drive: the oldest unfinished tournament under its lease, its ``parallel`` slots each taking the
  next run as soon as its own is done (and early runs of the round foreseen next), until it finishes
  or a stop comes. Meanwhile, every ``schedule.tend_every`` between waits for the runs in flight
  (``Serving.tend``, on the driving thread), what falls due is done while the runs go on: a creation
  of the other kind, publishing or registering again after a fault; so none of it waits for a run's
  budget, and the drive is neither stopped nor yielded for it. Another driver holding the lease: logged,
  tried again after the lease poll. A fault (the platform broke, not a competitor): logged, the kind
  rests for ``schedule.retry_after_fault``; a run it cut short is run again as a new attempt.
- After a tournament finishes (and once at start, for a ``serve`` killed between the two), the
  weights are published; publishing is idempotent, so a failure is logged and tried again after
  ``schedule.retry_after_fault``.
- A new champion's models are registered as its tournament finishes (``registry.register_champions``);
  a registration that failed or was cut short (a fault while driving, a killed ``serve``) is done at
  start and again ``schedule.retry_after_fault`` after a fault (``register_due_champion_models``,
  idempotent). At start, model folders that killed registrations left without a row are swept.
- The store failing for a moment (SQLite locked past its timeout, a PostgreSQL restart) while the
  schedule is read: logged, asked again after ``schedule.retry_after_fault``; serve never dies of it.

``stop`` is checked whenever a run is done (and after each tending) and wakes the sleep: runs under way
are finished and stored first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from trainarena.engine.model import TOURNAMENT_KINDS
from trainarena.operations.schedule import Action, Create, Drive, Sleep, enabled, grid, kind_facts, next_action, pool_of
from trainarena.operations.tournaments import TournamentRefused, create_pool_tournament, drive_pool_tournament
from trainarena.orchestrator import RunStored, Tending
from trainarena.records.recorder import publish_recorded
from trainarena.registry import register_due_champion_models, sweep_registry
from trainarena.reporting.reasons import short_reason
from trainarena.runs import ProgressEvent, RunExecutor
from trainarena.settings import Settings
from trainarena.store import Store, StoreError, get_tournament, named_lock, stored_weights
from trainarena.store.leases import LeaseError
from trainarena.store.weight_vectors import latest_finished_tournament
from trainarena.wording import counted


@dataclass(frozen=True)
class ServeEvent:
    """One line of serve's log: ``event`` is started, created, refused, resumed, round_created,
    run_finished, finished, published, registered, swept, waiting, fault, sleeping or stopped."""

    at: datetime
    event: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "event": self.event, "message": self.message, **self.fields}


Log = Callable[[ServeEvent], None]
Clock = Callable[[], datetime]


# A kind held back for the rest of a ``serve --once`` pass (its creation was refused or faulted): a due
# time that passed while the pass went on would otherwise log the same refusal again.
END_OF_PASS = datetime.max.replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Serving:
    """One ``serve`` process: its store, executor and log, and the kinds it holds back (in memory only:
    a restart tries them again at once, which a restart is for)."""

    store: Store
    settings: Settings
    executor: RunExecutor
    log: Log
    stop: threading.Event
    parallel: int = 1
    clock: Clock = utc_now
    on_stored: RunStored | None = None
    held_back: dict[str, datetime] = field(default_factory=dict)
    finished: int = 0
    _announced_sleep: datetime | None | str = "not yet"  # the due time last announced (None: nothing scheduled)
    _publish_again_at: datetime | None = None  # set when publishing failed
    _register_again_at: datetime | None = None  # set when a fault may have cut a champion's registration short

    def say(self, event: str, message: str, **fields: Any) -> None:
        self.log(ServeEvent(self.clock(), event, message, fields))

    def run(self, once: bool = False) -> int:
        """Serve until ``stop`` is set (``once``: until nothing is due now); returns the number of
        tournaments finished."""
        rules = self.settings.schedule
        plan = [f"{kind} every {duration_text(grid(kind, rules)[1])} from pool {pool_of(kind, rules)!r}" for kind in TOURNAMENT_KINDS if enabled(kind, rules)]
        self.say("started", "serving: " + ("; ".join(plan) or "no kind enabled"))
        self.sweep_registry()
        self.register_models()
        self.publish(quiet=True)
        while not self.stop.is_set():
            self._retry_due()
            try:
                action = self._next_action()
            except Exception as error:  # noqa: BLE001 - the store is out for a moment: wait and ask again
                wait = rules.retry_after_fault
                self.say("fault", f"reading the schedule failed: {type(error).__name__}: {error}; asked again in "
                         f"{duration_text(wait)}", reason=str(error))
                if once:
                    break
                self.stop.wait(wait.total_seconds())
                continue
            if isinstance(action, Create):
                if not self.create(action) and once:  # refused or faulted: logged once, not tried again this pass
                    self.held_back[action.kind] = END_OF_PASS
            elif isinstance(action, Drive):
                self.drive_step(action)
            elif once:
                break
            else:
                self.sleep(action)
        self.say("stopped", "stopped" + (" on request" if self.stop.is_set() else ": nothing more is due now"))
        return self.finished

    def sleep(self, action: Sleep) -> None:
        """Until the next due time, a stop, or publishing again after it failed."""
        if action.until != self._announced_sleep:  # a wake-up a hair early sleeps on without a second line
            if action.until is None:
                self.say("sleeping", "nothing is scheduled (both kinds disabled); waiting for a stop")
            else:
                self.say("sleeping", f"next due {action.until.isoformat(timespec='seconds')}", until=action.until.isoformat())
            self._announced_sleep = action.until
        wake = min((at for at in (action.until, self._publish_again_at, self._register_again_at) if at is not None), default=None)
        self.stop.wait(None if wake is None else max(0.0, (wake - self.clock()).total_seconds()))

    def create(self, action: Create) -> bool:
        """Create the tournament due (False where it was refused or faulted: the kind is held back)."""
        rules = self.settings.schedule
        try:
            with named_lock(self.store.engine, f"serve-create-{action.kind}"), self.store.transaction() as session:
                # Read again under the lock: another serve may have created it meanwhile.
                facts = kind_facts(session, rules, {})
                if next_action([f for f in facts if f.kind == action.kind], rules, self.clock()) != action:
                    return True  # another serve created it
                created = create_pool_tournament(session, self.settings, kind=action.kind, pool=action.pool)
        except (TournamentRefused, StoreError) as error:
            # The operator fixes a refusal (tops the pool up, registers someone) in minutes: waiting for the
            # next due time (14 days by default) would skip a whole cycle.
            retry = self.clock() + rules.retry_after_fault
            self.held_back[action.kind] = retry
            self.say("refused", f"no {action.kind} tournament from pool {action.pool!r}: {error}; "
                     f"tried again at {retry.isoformat(timespec='seconds')} (schedule.retry_after_fault)", kind=action.kind,
                     pool=action.pool, reason=str(error), retry_at=retry.isoformat())
            return False
        except Exception as error:  # noqa: BLE001 - the platform broke (the store, a disk): the kind rests, serve goes on
            retry = self.clock() + rules.retry_after_fault
            self.held_back[action.kind] = retry
            self.say("fault", f"creating a {action.kind} tournament failed: {type(error).__name__}: {error}; tried "
                     f"again at {retry.isoformat(timespec='seconds')}", kind=action.kind, reason=str(error),
                     retry_at=retry.isoformat())
            return False
        self.say("created", f"created {created.name} (id {created.id}): {len(created.entrants)} entrants, "
                 f"{len(created.tasks)} tasks, defending: {created.defender or 'nobody'}", **created.to_json())
        return True

    def _next_action(self) -> Action:
        """What the schedule says is due now, the kinds held back left out (reads the store)."""
        rules = self.settings.schedule
        with self.store.session() as session:
            return next_action(kind_facts(session, rules, self.held_back), rules, self.clock())

    def _retry_due(self) -> None:
        """Publish and register again, each once its retry time after a fault has come (the loop and,
        during a drive, ``tend``)."""
        if self._due(self._publish_again_at):
            self.publish(quiet=False)
        if self._due(self._register_again_at):
            self.register_models()

    def _due(self, retry_at: datetime | None) -> bool:
        return retry_at is not None and self.clock() >= retry_at

    def tend(self) -> None:
        """During a drive, between waits for its runs (every ``schedule.tend_every``, on the driving
        thread): publish and register again when due after a fault, and create a tournament of the other
        kind that fell due. Each reports its own faults; the runs go on meanwhile."""
        if self.stop.is_set():  # the drive ends as soon as its runs are stored: nothing new now
            return
        self._retry_due()
        try:
            action = self._next_action()
        except Exception as error:  # noqa: BLE001 - the store is out for a moment: read again at the next tending
            self.say("fault", f"reading the schedule during a drive failed: {type(error).__name__}: {error}; read again "
                     f"in {duration_text(self.settings.schedule.tend_every)}", reason=str(error))
            return
        if isinstance(action, Create):  # the kind driven is never due: one creation at most
            self.create(action)

    def drive_step(self, action: Drive) -> None:
        settings = self.settings
        try:
            tending = Tending(self.tend, settings.schedule.tend_every.total_seconds())
            finished = drive_pool_tournament(self.store, settings, action.tournament_id, executor=self.executor,
                                             progress=self.progress, until=self.stop.is_set, tending=tending,
                                             parallel=self.parallel, wait=False, on_stored=self.on_stored)
        except LeaseError as error:
            self.held_back[action.kind] = self.clock() + timedelta(seconds=settings.lease.wait_poll_seconds)
            self.say("waiting", f"not driving tournament {action.tournament_id}: {error}", tournament_id=action.tournament_id)
            return
        except Exception as error:  # noqa: BLE001 - a daemon logs a broken step and goes on with the other kind
            retry = self.clock() + settings.schedule.retry_after_fault
            self.held_back[action.kind] = retry
            # The fault may have come after the tournament finished, registering its champion's models.
            self._register_again_at = min(retry, self._register_again_at or retry)
            self.say("fault", f"tournament {action.tournament_id}: {type(error).__name__}: {error}; tried again at "
                     f"{retry.isoformat(timespec='seconds')}", tournament_id=action.tournament_id, reason=str(error))
            return
        if finished is None:
            return
        self.finished += 1
        with self.store.session() as session:
            weights = stored_weights(session, action.tournament_id)
            name = get_tournament(session, action.tournament_id).name
        self.say("finished", f"{name} (id {action.tournament_id}) finished: champion "
                 f"{finished.champion or 'none'} ({finished.reason})", tournament_id=action.tournament_id,
                 champion=finished.champion, crowned=finished.crowned, weights=weights)
        self.publish(quiet=False)

    def register_models(self) -> None:
        """Register the champions' models failed or cut-short registrations left out (each crowning owing
        them, oldest first)."""
        try:
            registered = register_due_champion_models(self.store, self.settings)
        except Exception as error:  # noqa: BLE001 - idempotent: tried again after a rest
            self._register_again_at = self.clock() + self.settings.schedule.retry_after_fault
            self.say("fault", f"champion models not registered: {type(error).__name__}: {error}; tried again at "
                     f"{self._register_again_at.isoformat(timespec='seconds')}", reason=str(error))
            return
        self._register_again_at = None
        if registered:
            self.say("registered", f"registered {len(registered)} champion models left out before: "
                     f"{', '.join(model.id for model in registered)}", models=[model.id for model in registered])

    def sweep_registry(self) -> None:
        """Remove the model folders killed registrations left without a row (``registry.sweep_registry``)."""
        try:
            with self.store.session() as session:
                removed = sweep_registry(session, self.settings)
        except Exception as error:  # noqa: BLE001 - only tidying: said, and serve goes on
            self.say("fault", f"the registry was not swept: {type(error).__name__}: {error}", reason=str(error))
            return
        if removed:
            self.say("swept", f"removed {len(removed)} model folders without a registry row: "
                     f"{', '.join(p.name for p in removed)}", folders=[p.name for p in removed])

    def publish(self, quiet: bool) -> None:
        """Publish the weights of the latest finished tournaments (stores nothing when unchanged)."""
        at = self.clock()
        try:
            with self.store.transaction() as session:
                if not any(latest_finished_tournament(session, kind, at) for kind in TOURNAMENT_KINDS):
                    return
                vector, new = publish_recorded(session, self.settings, at, now=at)  # its clock is its now
                summary = {"vector": vector.id, "new": new, "ratio": vector.ratio, "week": vector.week}
        except Exception as error:  # noqa: BLE001 - publishing is idempotent: tried again after a rest
            self._publish_again_at = at + self.settings.schedule.retry_after_fault
            self.say("fault", f"weights not published: {type(error).__name__}: {error}; tried again at "
                     f"{self._publish_again_at.isoformat(timespec='seconds')}", reason=str(error))
            return
        self._publish_again_at = None
        if new or not quiet:
            self.say("published", f"weights: vector {vector.id}{'' if new else ' (unchanged)'}, tournament ratio "
                     f"{vector.ratio:g}", **summary)

    def progress(self, event: ProgressEvent) -> None:
        if event.kind == "round_created":
            self.say("round_created", f"{event.tournament}: {event.stage} round {(event.round_index or 0) + 1} created, "
                     f"{event.runs_total} runs", tournament=event.tournament, runs=event.runs_total,
                     round_index=event.round_index)
        elif event.kind == "resumed":
            self.say("resumed", resumed_text(event), tournament_id=event.tournament_id, tournament=event.tournament,
                     round_index=event.round_index, stage=str(event.stage), runs_left=event.runs_total,
                     runs_interrupted=event.runs_interrupted, cut_short=list(event.cut_short))
        elif event.kind == "run_finished":
            score = "-" if event.score is None else f"{event.score:.4g}"
            # The line's reason is the short one: the whole (the stderr tail, progress bars and all) made
            # one event a dozen lines of the log; the JSON field keeps it whole.
            reason = f": {short_reason(event.reason)}" if event.reason else ""
            self.say("run_finished", f"{event.tournament}: {event.competitor} on {event.task_name}: "
                     f"{event.status} (score {score}){reason}", tournament=event.tournament,
                     competitor=event.competitor, task=event.task_name, status=str(event.status), score=event.score,
                     reason=event.reason)


# How many runs cut short a resumed line names; the rest it counts ("+3 more"), the --json line lists them all.
NAMED_CUT_SHORT = 5


def resumed_text(event: ProgressEvent) -> str:
    """'week-1 (id 3): resumed at knockout round 2: 5 runs left, 2 of them cut short and run again
    (lowrank on q1, baseline on q2)'."""
    where = f"{event.tournament} (id {event.tournament_id}): resumed at {event.stage} round {(event.round_index or 0) + 1}"
    if not event.runs_total:
        return f"{where}, all its runs played"
    interrupted = event.runs_interrupted or 0
    again = f"{interrupted} of them cut short and run again{_named(event.cut_short)}" if interrupted else "none cut short"
    return f"{where}: {counted(event.runs_total, 'run')} left, {again}"


def _named(runs: tuple[str, ...]) -> str:
    """' (a on t1, b on t2, +3 more)': the first few runs named, the rest counted; '' for none."""
    if not runs:
        return ""
    more = [f"+{len(runs) - NAMED_CUT_SHORT} more"] if len(runs) > NAMED_CUT_SHORT else []
    return f" ({', '.join([*runs[:NAMED_CUT_SHORT], *more])})"


def duration_text(duration: timedelta) -> str:
    """14d, 12h, 10m, 2.5s: the largest unit that divides the duration."""
    seconds = duration.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


class ServingThread:
    """``Serving.run`` on a thread beside the HTTP API (``trainarena serve``): the app's ``Service``.
    ``stop`` sets the loop's stop event and waits for the step under way to be stored."""

    def __init__(self, serving: Serving) -> None:
        self.serving = serving
        self._thread = threading.Thread(target=serving.run, name="trainarena-serve", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.serving.stop.set()
        self._thread.join()
