"""The job worker: a service (``api.app.Service``: ``start()`` / ``stop()``) that runs queued jobs.

One loop thread, every ``JobRules.poll_seconds``: queue again the jobs of workers that stopped beating
(``stale_seconds``, by the store's clock), beat for its own running jobs and pass on their
cancellations, and claim queued jobs while fewer than ``concurrency`` run, each in its own thread
(``jobs.runner``). Jobs outlive the process: stopping the worker stops its runs and queues their jobs
again, and a worker that is killed outright stops beating, so another (or the next start) queues its
jobs again after ``stale_seconds``. A worker whose beats did not land in time (a stalled store write,
a paused process) finds at its next beat that the job is no longer its own and kills its run at once:
the job's next try, perhaps under another worker, is the one that counts. Each try is a new attempt
of the job's run. A try its worker stops with the service is withdrawn, not counted (``jobs.runner``);
so are those of a process leaving at once on a second stop signal (:meth:`JobWorker.leave_now`).

A try the platform could not start (its data directory's disk full, no cluster node that can hold
it) is withdrawn and its job queued again to wait in the store (``jobs.queue.withdraw``: no worker,
here or elsewhere, before or after a restart, claims it before its ``not_before``); the worker that
met the fault also claims no other job for that wait: the fault is likely its host's or its
cluster's, so claiming at once would only withdraw the next job the same way (a fault counted towards
its jobs.max_platform_faults, and a wait). Its own running jobs and the queue's upkeep (heartbeats,
cancellations, dead workers' jobs) go on meanwhile, and a worker whose queued jobs all wait claims
nothing, polling every ``poll_seconds``. A service stop ends its running jobs' runs at once (their
tries are withdrawn, nothing of them kept: ``jobs.runner.StopRequest``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import ExitStack

from trainarena.jobs.copies import remove_ended_copies, sweep_ended_copies
from trainarena.jobs.gate import JOB, DeviceGate, GatedBackend
from trainarena.jobs.queue import beat, cancellations, claim_next, requeue_stale, running_under, withdraw_stopped
from trainarena.jobs.records import SERVICE_STOPPED_AT_ONCE
from trainarena.jobs.runner import JobExecutor, JobRunner, PlatformFault, StopRequest
from trainarena.settings import Settings
from trainarena.store import Store, open_store
from trainarena.store.models import JobStatus

log = logging.getLogger(__name__)

# How long a process leaving at once (a second stop signal) waits for the store to record its jobs'
# tries withdrawn before it leaves anyway (``JobWorker.leave_now``).
LEAVING_RECORD_SECONDS = 5.0


def sandboxed_executor(settings: Settings, gate: DeviceGate) -> JobExecutor:
    """The configured executor (``settings.cluster``): locally, the pipeline's over the configured
    backend behind ``gate`` on the job side; on Ray, Ray's resource requests keep runs apart."""
    from trainarena.cluster import make_executor

    return make_executor(settings, wrap=lambda backend: GatedBackend(backend, gate, JOB))


class JobWorker:
    """Runs queued jobs beside the API (module docstring). ``store`` None: opened at start from the
    settings; ``executor`` None: the sandboxed executor behind ``gate`` (a fresh one when None)."""

    def __init__(self, settings: Settings, store: Store | None = None, executor: JobExecutor | None = None,
                 gate: DeviceGate | None = None, worker_id: str | None = None) -> None:  # fmt: skip
        self._settings = settings
        self._store = store
        self._executor = executor
        self.gate = gate or DeviceGate(settings.jobs.share_with_tournaments)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._running: dict[str, tuple[threading.Thread, StopRequest]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._loop: threading.Thread | None = None
        self._resources = ExitStack()
        self._last_beat = 0.0
        # time.monotonic() before which it claims no job, after a try the platform could not start. Not
        # the job's stored wait (job.not_before), which holds back that one job on every worker: this
        # holds back every other queued job from this worker alone, whose host or cluster likely has the
        # fault (a full disk), so it does not withdraw them one after the other, each then waiting and
        # counting a fault towards jobs.max_platform_faults. Another host's worker still claims them,
        # and a restart (perhaps after the fault was mended) forgets it: it is this process's, not the job's.
        self._claim_after = 0.0

    def start(self) -> None:
        if self._store is None:
            self._store = self._resources.enter_context(open_store(self._settings))
        if self._executor is None:
            self._executor = sandboxed_executor(self._settings, self.gate)
        self._runner = JobRunner(self._settings, self._store, self._executor)
        self._stopping.clear()
        self._loop = threading.Thread(target=self._serve, daemon=True, name=f"job-worker-{self.worker_id}")
        self._loop.start()

    def stop(self) -> None:
        """Stop claiming, stop the running jobs' runs (their jobs are queued again), wait for them."""
        self._stopping.set()
        if self._loop is not None:  # first: a job it claims meanwhile is then among those stopped below
            self._loop.join()
        with self._lock:
            running = list(self._running.values())
        for _thread, stop in running:
            stop.discard()
        for thread, _stop in running:
            thread.join()
        self._resources.close()

    def leave_now(self) -> None:
        """For a process about to leave at once (a second stop signal; its runs die with it): record the
        tries the store has running under this worker as withdrawn (``SERVICE_STOPPED_AT_ONCE``) and
        their jobs queued again, not counted, rather than leave them to be found stale by another worker
        after ``stale_seconds`` and counted as interrupted tries. On a thread of its own, waited for at
        most ``LEAVING_RECORD_SECONDS``: the signal may have interrupted a store call of the caller's
        thread that holds SQLite's write lock, and a store that does not answer must not keep the
        process from leaving (its tries are then found stale, as a killed worker's are)."""
        self._stopping.set()  # no new claim meanwhile: its try would be left running
        if self._store is None:
            return
        recording = threading.Thread(target=self._withdraw_own_tries, daemon=True, name=f"job-worker-{self.worker_id}-leaving")
        recording.start()
        recording.join(LEAVING_RECORD_SECONDS)

    def _withdraw_own_tries(self) -> None:
        assert self._store is not None
        try:
            with self._store.transaction() as session:
                for job_id in running_under(session, self.worker_id):
                    withdraw_stopped(session, job_id, self.worker_id, None, SERVICE_STOPPED_AT_ONCE)
        except Exception:  # leaving anyway: its jobs are found stale instead
            log.exception("job worker %s: could not withdraw its running jobs' tries while leaving at once", self.worker_id)

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def _serve(self) -> None:
        rules = self._settings.jobs
        assert self._store is not None
        sweep_ended_copies(self._store, self._settings)  # what a worker that died mid-removal left
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:  # a database hiccup must not end the worker; the next tick tries again
                log.exception("job worker %s: tick failed", self.worker_id)
            self._stopping.wait(rules.poll_seconds)

    def _tick(self) -> None:
        """One round: requeue the dead workers' jobs, beat and pass on cancellations, claim."""
        assert self._store is not None
        with self._store.transaction() as session:
            requeued = requeue_stale(session, self._settings.jobs, running_here=self.running())
        remove_ended_copies(self._store, self._settings, requeued)  # those that failed or were cancelled instead
        self._beat()
        while len(self.running()) < self._settings.jobs.concurrency and not self._stopping.is_set() and not self._backing_off():
            ended: list[str] = []
            with self._store.transaction() as session:  # not a job whose lost try is still going here
                job_id = claim_next(session, self.worker_id, skip=self.running(), ended=ended)
            remove_ended_copies(self._store, self._settings, ended)
            if job_id is None:
                return
            self._launch(job_id)

    def _beat(self) -> None:
        """Pass on cancellations (every tick), mark the running jobs alive (when due), and stop at once
        the runs of jobs the beat found no longer this worker's (queued again after heartbeats that did
        not land in time, perhaps running under another worker now)."""
        assert self._store is not None
        ids = self.running()
        now = time.monotonic()
        due = now - self._last_beat >= self._settings.jobs.heartbeat_seconds
        with self._store.transaction() as session:
            mine = beat(session, self.worker_id, ids) if due else set(ids)
            cancelled = cancellations(session, ids)
        if due:
            self._last_beat = now
        with self._lock:
            for job_id in set(ids) - mine:
                if job_id in self._running:
                    log.warning("job worker %s: job %s is no longer its running job (queued again after late heartbeats, "
                                "or just ended); its run, if still going, is killed", self.worker_id, job_id)  # fmt: skip
                    self._running[job_id][1].discard()
            for job_id in cancelled & mine:
                if job_id in self._running:
                    self._running[job_id][1].cancel()

    def _launch(self, job_id: str) -> None:
        stop = StopRequest()
        thread = threading.Thread(target=self._run, args=(job_id, stop), daemon=True, name=f"job-{job_id}")
        with self._lock:  # started under the lock: stop() never finds a thread it cannot join yet
            self._running[job_id] = (thread, stop)
            thread.start()

    def _backing_off(self) -> bool:
        with self._lock:
            return time.monotonic() < self._claim_after

    def _after_try(self, job_id: str, fault: PlatformFault | None) -> None:
        """After a try the platform could not start, claim nothing for the job's wait (module docstring),
        and say so in one line."""
        if fault is None:
            return
        rules = self._settings.jobs
        withdrawn = fault.withdrawn  # None: taken back meanwhile; still this host's fault, so the first wait
        wait = rules.platform_retry_seconds if withdrawn is None else withdrawn.seconds
        with self._lock:
            self._claim_after = max(self._claim_after, time.monotonic() + wait)
        outcome = {None: "no longer its own",
                   JobStatus.QUEUED: "queued again to wait as long, its try not counted",
                   JobStatus.FAILED: f"failed after {rules.max_platform_faults} such tries (jobs.max_platform_faults)"}  # fmt: skip
        status = None if withdrawn is None else withdrawn.job_status
        log.warning("job worker %s: job %s not started, the platform's fault: %s; claiming no job for %g s; the job is %s",
                    self.worker_id, job_id, fault.reason, wait, outcome.get(status, status))  # fmt: skip

    def _run(self, job_id: str, stop: StopRequest) -> None:
        try:
            self._after_try(job_id, self._runner.run(job_id, self.worker_id, stop))
        except Exception:
            log.exception("job %s: the worker could not record its end", job_id)
        finally:
            with self._lock:  # only its own entry (a later try of the job, launched here, keeps its own)
                if self._running.get(job_id, (None, None))[1] is stop:
                    del self._running[job_id]

