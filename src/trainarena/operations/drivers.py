"""Pool tournaments driven in the background of a serving process (``POST /v1/tournaments/{id}/start``):
one thread per tournament, driving it (``drive_pool_tournament``: each slot taking the next run as
soon as its own is done) under the tournament's lease until it finishes or the process stops. The
lease keeps one driver per tournament across processes (``tournament run``, ``serve``, another API);
a start while one drives it is refused with the holder named. A stop lets the runs under way finish
and be stored; runs it did not reach are played by the next driver. Each drive first registers the
champions' models earlier registrations left out, every crowning owing them, oldest first (a finished
tournament is not driven again, so this is where a failure after a crowning heals; ``registry.champions``).

The drivers are a ``Service`` of the API app (start/stop with the process); they own no store: each
start names the store to drive on, which outlives them (the app stops its services before closing it).
"""

from __future__ import annotations

import logging
import threading

from trainarena.operations.pools import StoredTaskUnusable
from trainarena.operations.tournaments import DrawnInputs, check_drawn_tasks, drive_pool_tournament
from trainarena.registry import register_due_champion_models
from trainarena.reporting.run_detail import write_result_json
from trainarena.runs import RunExecutor
from trainarena.settings import Settings
from trainarena.store import Store, TournamentStatus, get_draw, get_tournament
from trainarena.store.leases import DriverIdentity, LeaseError, live_holder

logger = logging.getLogger(__name__)


class DriveRefused(RuntimeError):
    """A tournament that cannot be started now: already driven (here or elsewhere), or finished."""


class DrivingUnavailable(RuntimeError):
    """This process cannot play runs (no sandbox backend), with the reason and the fix."""


class BackgroundDrivers:
    """The tournaments this process drives in the background, each on its own thread.

    ``executor`` plays the runs (None when the process has no sandbox: ``unavailable`` says why). A
    drive that ends early (another driver took the lease, or the platform broke) is logged; the
    tournament stays where the store says it is, and a later start resumes it.
    """

    def __init__(self, settings: Settings, executor: RunExecutor | None, *, parallel: int = 1, unavailable: str = "") -> None:
        self.settings = settings
        self.executor = executor
        self.parallel = parallel
        self.unavailable = unavailable
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        self._stop.clear()

    def stop(self) -> None:
        """Stop driving after each tournament's step under way, and wait for the threads."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join()

    def driving(self, tournament_id: int) -> bool:
        with self._lock:
            return tournament_id in self._threads

    def begin(self, store: Store, tournament_id: int) -> None:
        """Start driving ``tournament_id`` on a thread; StoreError when there is no such tournament,
        DriveRefused when it is finished, not a pool tournament, draws a task that cannot run or is
        driven already, DrivingUnavailable when this process cannot play runs."""
        if self.executor is None:
            raise DrivingUnavailable(self.unavailable or "this process has no sandbox to play runs in")
        with self._lock:
            self._refuse_if_busy(store, tournament_id)
            thread = threading.Thread(target=self._drive, args=(store, tournament_id), daemon=True,
                                      name=f"trainarena-drive-{tournament_id}")  # fmt: skip
            self._threads[tournament_id] = thread
            thread.start()

    def _refuse_if_busy(self, store: Store, tournament_id: int) -> None:
        if tournament_id in self._threads:
            raise DriveRefused(f"tournament {tournament_id} is already being driven by this process")
        with store.session() as session:
            tournament = get_tournament(session, tournament_id)
            if tournament.status in TournamentStatus.ENDED:
                raise DriveRefused(f"tournament {tournament.name!r} is {tournament.status}; nothing is left to drive")
            if get_draw(session, tournament_id) is None:
                raise DriveRefused(f"tournament {tournament.name!r} was not created from a task pool; "
                                   "drive it with the command that created it")
            try:
                check_drawn_tasks(session, tournament_id, DrawnInputs(self.settings))
            except StoredTaskUnusable as error:
                raise DriveRefused(f"tournament {tournament.name!r}: {error}") from None
            holder = live_holder(session, tournament_id)
        me = DriverIdentity.of_this_process()
        if holder is not None and not holder.is_dead_local_process(me):
            raise DriveRefused(f"tournament {tournament.name!r} is being driven by {holder.describe()}")

    def _drive(self, store: Store, tournament_id: int) -> None:
        try:
            if self._stop.is_set():  # stopped before this thread began: claim nothing
                return
            self._register_left_out(store)
            drive_pool_tournament(
                store, self.settings, tournament_id, executor=self.executor, until=self._stop.is_set,
                parallel=self.parallel, wait=False,
                on_stored=lambda run_id, run_dir: write_result_json(store, run_id, run_dir),
            )
        except LeaseError as error:
            logger.warning("stopped driving tournament %s: %s", tournament_id, error)
        except Exception:  # noqa: BLE001 - a background thread logs why it stopped; a later start resumes
            logger.exception("driving tournament %s failed", tournament_id)
        finally:
            with self._lock:
                self._threads.pop(tournament_id, None)

    def _register_left_out(self, store: Store) -> None:
        try:
            registered = register_due_champion_models(store, self.settings)
        except Exception:  # noqa: BLE001 - logged; the next drive (or serve) tries again
            logger.exception("registering the champion models left out before failed")
            return
        if registered:
            logger.info("registered %d champion models left out before: %s", len(registered), ", ".join(m.id for m in registered))
