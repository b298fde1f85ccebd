"""The job worker: a service (``api.app.Service``: ``start()`` / ``stop()``) that runs queued jobs.

One loop thread, every ``JobRules.poll_seconds``: queue again the jobs of workers that stopped beating
(``stale_seconds``, by the store's clock), beat for its own running jobs and pass on their
cancellations, and claim queued jobs while fewer than ``concurrency`` run, each in its own thread
(``jobs.runner``). Jobs outlive the process: stopping the worker stops its runs and queues their jobs
again, and a worker that is killed outright stops beating, so another (or the next start) queues its
jobs again after ``stale_seconds``. A worker whose beats did not land in time (a stalled store write,
a paused process) finds at its next beat that the job is no longer its own and kills its run at once:
the job's next try, perhaps under another worker, is the one that counts. Each try is a new attempt
of the job's run.

A try the platform could not start (its data directory's disk full, no cluster node that can hold
it) is withdrawn and its job queued again (``jobs.runner``); the worker then claims nothing for
``JobRules.platform_retry_delay`` (doubled after each such try in a row, up to
``platform_retry_max_seconds``; any other end of a try starts again from the first wait): the fault is
its host's or its cluster's, so claiming at once would only fail the next job the same way. Its own
running jobs and the queue's upkeep (heartbeats, cancellations, dead workers' jobs) go on meanwhile.
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
from trainarena.jobs.queue import beat, cancellations, claim_next, requeue_stale
from trainarena.jobs.runner import JobExecutor, JobRunner, PlatformFault, StopRequest
from trainarena.settings import Settings
from trainarena.store import Store, open_store
from trainarena.store.models import JobStatus

log = logging.getLogger(__name__)


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
        self._platform_faults = 0  # tries in a row the platform could not start
        self._claim_after = 0.0  # time.monotonic() before which it claims no job (after such tries)

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
            stop.shutdown()
        for thread, _stop in running:
            thread.join()
        self._resources.close()

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
                    self._running[job_id][1].lose()
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
        """Count the tries in a row the platform could not start; after one, claim nothing for a while
        (module docstring), and say so in one line."""
        rules = self._settings.jobs
        with self._lock:
            if fault is None:
                self._platform_faults = 0
                return
            self._platform_faults += 1
            delay = rules.platform_retry_delay(self._platform_faults)
            self._claim_after = max(self._claim_after, time.monotonic() + delay)
        outcome = {JobStatus.QUEUED: "queued again, its try not counted",
                   JobStatus.FAILED: f"failed after {rules.max_platform_faults} such tries (jobs.max_platform_faults)"}  # fmt: skip
        log.warning("job worker %s: job %s not started, the platform's fault: %s; the job is %s; claiming no job for %g s",
                    self.worker_id, job_id, fault.reason, outcome.get(fault.job_status, fault.job_status or "no longer its own"),
                    delay)  # fmt: skip

    def _run(self, job_id: str, stop: StopRequest) -> None:
        try:
            self._after_try(job_id, self._runner.run(job_id, self.worker_id, stop))
        except Exception:
            log.exception("job %s: the worker could not record its end", job_id)
        finally:
            with self._lock:  # only its own entry (a later try of the job, launched here, keeps its own)
                if self._running.get(job_id, (None, None))[1] is stop:
                    del self._running[job_id]

