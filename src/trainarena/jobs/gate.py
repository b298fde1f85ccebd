"""Sharing the devices between tournament runs and customers' jobs (``JobRules.share_with_tournaments``).

A :class:`DeviceGate` is shared by both sides of one serving process (``trainarena serve`` runs the
schedule and the job worker together): a run enters the gate with the devices it was given and
leaves it when the sandboxed run ends. Two rules:

- a job and a tournament run never hold the same device at once (each side's own device pool already
  keeps two runs of one side apart);
- the side that goes first (``tournaments_first``: tournaments) is never held back by the other: a
  run of the other side waits while a run of the first side holds, or waits for, any of its devices.

On a machine without GPUs every run is given no device; the gate then treats the CPU as the one
device, so jobs and tournament runs still take turns (with ``tournaments_first`` a job waits while a
tournament run is in flight or waiting). Runs of one side share the CPU as before.

:class:`GatedBackend` puts any execution backend behind the gate, so neither the pipeline nor the
orchestrator changes: the job worker wraps its backend on the ``job`` side; ``serve`` wraps the
tournaments' backend on the ``tournament`` side with the same gate (``make_backend`` then
``GatedBackend(backend, gate, TOURNAMENT)``). A run waiting at the gate stops waiting when the stop
around it is set (``execution.supervise.stop_when``: a cancelled job, a stopping worker, a drive that
lost its lease) and reports itself stopped without starting, so neither a cancel nor a worker's stop
waits out the other side's run. What the gate does not cover: the scoring of an artifact, which runs
after the sandboxed run has left the gate.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from trainarena.contract import RunStatus
from trainarena.execution import Backend, SandboxJob
from trainarena.execution.base import RunResult
from trainarena.execution.supervise import STOPPED_REASON, current_stop_event, wait_unless_stopped

TOURNAMENT, JOB = "tournament", "job"
SIDES = (TOURNAMENT, JOB)
CPU = -1  # the device key of a run given no GPU
FIRST_SIDE = {"tournaments_first": TOURNAMENT, "jobs_first": JOB}


class StoppedAtGate(Exception):
    """A run's stop was set while it waited at the gate: it never entered."""


class DeviceGate:
    """Orders tournament runs and jobs on each device (module docstring)."""

    def __init__(self, rule: str) -> None:
        if rule not in FIRST_SIDE:
            raise ValueError(f"share_with_tournaments {rule!r} is not one of {sorted(FIRST_SIDE)}")
        self.first = FIRST_SIDE[rule]
        self._holding = {side: Counter[int]() for side in SIDES}
        self._waiting = {side: Counter[int]() for side in SIDES}
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, side: str, devices: tuple[int, ...], stop: threading.Event | None = None) -> Iterator[None]:
        """Block until ``side`` may use ``devices`` (() = the CPU), hold them for the block. Raises
        :class:`StoppedAtGate` instead when ``stop`` is set first."""
        if side not in SIDES:
            raise ValueError(f"side {side!r} is not one of {SIDES}")
        keys = devices or (CPU,)
        with self._changed:
            self._waiting[side].update(keys)
            try:
                entered = wait_unless_stopped(self._changed, lambda: self._may_enter(side, keys), stop)
            finally:
                self._waiting[side].subtract(keys)
                self._changed.notify_all()  # a side that waited behind this one re-checks
            if not entered:
                raise StoppedAtGate(f"{STOPPED_REASON}: it was still waiting at the device gate ({side} side), and never started")
            self._holding[side].update(keys)
        try:
            yield
        finally:
            with self._changed:
                self._holding[side].subtract(keys)
                self._changed.notify_all()

    def _may_enter(self, side: str, keys: tuple[int, ...]) -> bool:
        other = JOB if side == TOURNAMENT else TOURNAMENT
        if any(self._holding[other][key] > 0 for key in keys):
            return False
        yields = side != self.first
        return not (yields and any(self._waiting[other][key] > 0 for key in keys))

    def busy(self, side: str) -> bool:
        """Whether ``side`` holds or waits for any device now."""
        with self._changed:
            return any(self._holding[side].values()) or any(self._waiting[side].values())


class GatedBackend:
    """An execution backend whose runs pass ``gate`` on ``side`` with the devices their spec names."""

    def __init__(self, inner: Backend, gate: DeviceGate, side: str) -> None:
        self._inner = inner
        self._gate = gate
        self._side = side
        self.name = inner.name

    def run(self, job: SandboxJob) -> RunResult:
        """The inner backend's run once the gate lets it in; FAILED, not started, when the stop around
        this call (``stop_when``) is set while it waits, with empty logs as a run that never began."""
        try:
            with self._gate.hold(self._side, job.spec.devices, current_stop_event()):
                return self._inner.run(job)
        except StoppedAtGate as stopped:
            now = time.time()
            job.log_dir.mkdir(parents=True, exist_ok=True)
            stdout, stderr = job.log_dir / "stdout.log", job.log_dir / "stderr.log"
            stdout.write_text("")
            stderr.write_text(f"{stopped}\n")
            return RunResult(RunStatus.FAILED, None, now, now, stdout, stderr, failure_reason=str(stopped))

    def close(self) -> None:
        self._inner.close()
