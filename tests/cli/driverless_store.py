"""A tournament whose driver was killed outright (kill -9, a crashed host): beside the finished store's
tournament, a second one with a round under way, one of its runs still marked running and its lease
held by a process of this host that no longer exists. Nothing recovers the run until the next drive."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cli_store import ScriptedExecutor, build_finished_store, fake_task
from sqlalchemy import delete, select

from trainarena.contract import RunStatus
from trainarena.orchestrator import create_tournament, drive
from trainarena.settings import LeaseRules, Settings
from trainarena.store import MatchRow, Round, Run, Store, TaskRow, TournamentLease, open_store
from trainarena.store.leases import DriverIdentity, try_acquire
from trainarena.store.models import AttemptStatus, RunAttempt

DRIVERLESS = "week-2"


@dataclass(frozen=True)
class DriverlessStore:
    tournament_id: int  # week-2: its driver killed while run_id trained
    run_id: int  # marked running, its attempt the dead driver's
    done_id: int  # the run week-2's driver finished before it was killed


def ended_pid() -> int:
    """The pid of a process of this host that has exited (a killed driver's)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def hand_lease_to(store: Store, tournament_id: int, host: str, pid: int) -> None:
    """The tournament's lease held (unexpired) by the driver ``host``/``pid``, in place of any other."""
    with store.transaction() as session:
        session.execute(delete(TournamentLease).where(TournamentLease.tournament_id == tournament_id))
        assert try_acquire(session, tournament_id, DriverIdentity("killed-driver", host, pid), LeaseRules()) is None


def build_driverless_store(data_dir: Path) -> DriverlessStore:
    """The finished store, then week-2 driven one run and its next run left running by a driver that
    was killed (``TRAINARENA_DATA_DIR`` must name ``data_dir``)."""
    build_finished_store(data_dir)
    settings = Settings()
    host, pid = socket.gethostname(), ended_pid()
    with open_store(settings) as store:
        with store.transaction() as session:
            tournament_id = create_tournament(session, name=DRIVERLESS, kind="text", seed=2, entrants=["crasher", "slowpoke", "hostile"]).id
        assert drive(store, tournament_id, task_source=fake_task, executor=ScriptedExecutor(), rules=settings.rules,
                     weight_rules=settings.weights, work_dir=settings.work_dir, max_steps=2) is None  # fmt: skip
        with store.transaction() as session:
            runs = list(session.scalars(select(Run).join(Run.task).join(TaskRow.match).join(MatchRow.round)
                                        .where(Round.tournament_id == tournament_id).order_by(Run.id)))  # fmt: skip
            done = next(run for run in runs if run.status != RunStatus.PENDING)
            left = next(run for run in runs if run.status == RunStatus.PENDING)
            left.status = RunStatus.RUNNING.value  # as a drive claims a run (orchestrator)
            left.attempt_records.append(RunAttempt(number=1, status=AttemptStatus.RUNNING, started_at=datetime.now(UTC),
                                                   driver_host=host, driver_pid=pid))  # fmt: skip
            ids = (done.id, left.id)
        hand_lease_to(store, tournament_id, host, pid)
    return DriverlessStore(tournament_id, ids[1], ids[0])
