"""A stopped driver's attempts: withdrawn in the store, or by the next drive from the note left for it.

A driver stopped on purpose (a stop signal, its tournament cancelled) withdraws its attempts still
running (``attempts.withdraw_own_attempts``): the platform stopped them, so they cost the competitor
no try, and nothing of them is kept but their logs. When that write fails (the store unreachable,
the lease lost), they stay running, and the next lease holder's recovery would record them as
interrupted, a try each, as it does a killed driver's (``lease.max_attempts`` then fails a run
stopped that often). So the driver leaves a note in the tournament's work folder naming itself (host
and pid), the reason and when; the next drive's recovery (``attempts.recover_interrupted``)
withdraws that driver's attempts still running that started before then, with that reason, and
removes the note. A driver that leaves at once (a second stop signal, or a clean-up that ran too long:
``cli/demo.py``, ``cli/serve.py``) writes that note for each drive of its process still under way
before it exits, without asking the store (:func:`leave_notes_at_once`). A driver killed outright
leaves none: its attempts are interrupted. The note is in the driver's data directory: a next driver
on another one does not see it, and interrupts them. A cancelled tournament has no next drive: a
cancel that finds no live driver holding it withdraws its attempts still running itself, honouring
the notes (:func:`withdraw_driverless`), a killed driver's too (the platform ended them: no try is
owed), and clears what that drive would have.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from trainarena.attempts import withdraw_own_attempts, withdraw_tournament_attempts
from trainarena.early_runs import EarlyRuns
from trainarena.execution.output_tree import remove_tree
from trainarena.runs import attempt_dir, tournament_dir
from trainarena.store import Run, RunAttempt
from trainarena.store.leases import DriverIdentity, LeaseLost

log = logging.getLogger(__name__)

NOTE_PREFIX = "withdrawal-"  # withdrawal-<random>.json, in the tournament's work folder


@dataclass(frozen=True)
class WithdrawalNote:
    host: str
    pid: int
    reason: str
    at: datetime  # when the withdrawal was due: only attempts started before then are the note's

    def covers(self, attempt: RunAttempt) -> bool:
        return ((attempt.driver_host, attempt.driver_pid) == (self.host, self.pid)
                and attempt.started_at is not None and attempt.started_at <= self.at)  # fmt: skip


# The drives under way in this process, while they hold their lease (:func:`under_way`): their
# tournament's work folder and their driver.
_UNDER_WAY: list[tuple[Path, DriverIdentity]] = []


@contextmanager
def under_way(work_dir: Path, tournament_id: int, me: DriverIdentity) -> Iterator[None]:
    """While the drive of ``me`` holds the lease of ``tournament_id``: a stop of this process that
    leaves at once leaves its note (:func:`leave_notes_at_once`)."""
    drive = (tournament_dir(work_dir, tournament_id), me)
    _UNDER_WAY.append(drive)
    try:
        yield
    finally:
        _UNDER_WAY.remove(drive)


def leave_notes_at_once(how: str) -> None:
    """This process leaves at once, stopped by ``how`` (a second stop signal, or a clean-up that ran too
    long): each drive still under way leaves the note of its attempts' withdrawal (a file write and no
    database call, from a signal handler: the store may be what held the clean-up up), so the next
    drive, or a cancel, withdraws them rather than interrupting them (a try each)."""
    for folder, me in tuple(_UNDER_WAY):
        leave_note(folder, me, f"withdrawn: {stopped_by(me, how)}")


def stopped_by(me: DriverIdentity, how: str) -> str:
    """Why the attempts of driver ``me``, stopped by ``how`` (a signal's name), are withdrawn."""
    return f"its driver ({me.host} pid {me.pid}) was stopped by {how}"


def withdraw_stopped(writing: Callable[[], AbstractContextManager[Session]], work_dir: Path, tournament_id: int,
                     me: DriverIdentity, why: str) -> None:
    """The drive of ``me`` was told to stop, or its tournament cancelled (its runs killed already): its
    running attempts are withdrawn, ``why``, in a ``writing`` step (the drive's, fenced by its lease),
    or, when the store does not take it, by the next drive's recovery, from the note left for it."""
    reason = f"withdrawn: {why}"
    try:
        with writing() as session:
            withdrawn = withdraw_own_attempts(session, tournament_id, me, reason)
    except (SQLAlchemyError, LeaseLost):
        leave_note(tournament_dir(work_dir, tournament_id), me, reason)
        return
    remove_outputs(work_dir, tournament_id, withdrawn)


def remove_outputs(work_dir: Path, tournament_id: int, attempts: list[tuple[int, int]]) -> None:
    """Attempts (run id, number) that ended with no report, withdrawn or interrupted: nothing of them is
    scored or kept; their logs stay."""
    for run_id, number in attempts:
        remove_tree(attempt_dir(work_dir, tournament_id, run_id, number) / "output")


def withdraw_driverless(session: Session, tournament_id: int, notes: WithdrawalNotes, why: str) -> list[tuple[int, int]]:
    """A cancelled tournament's attempts still running that no live driver holds (the cancel holds its
    lease, in its transaction): withdrawn, each with the reason of the note covering it, else ``why``
    and the driver that had stopped. Returns them, (run id, attempt number)."""

    def reason(attempt: RunAttempt) -> str:
        return notes.reason_for(attempt) or (
            f"withdrawn: {why}; its driver ({attempt.driver_host} pid {attempt.driver_pid}) had stopped")

    return withdraw_tournament_attempts(session, tournament_id, reason)


FirstTries = dict[Path, tuple[str, int, str]]  # an attempt's folder -> its run's match id, task index, competitor


def first_tries(session: Session, work_dir: Path, tournament_id: int, attempts: list[tuple[int, int]]) -> FirstTries:
    """The folders of ``attempts`` (run id, number) that were their run's first, with where each run
    plays: a killed driver's claim may have adopted an early run for it (``EarlyRuns.keep_adopted``)."""
    places: FirstTries = {}
    for run_id, number in attempts:
        if number == 1:
            run = session.get_one(Run, run_id)
            places[attempt_dir(work_dir, tournament_id, run_id, 1)] = (run.task.match.match_id, run.task.index, run.competitor.name)
    return places


def clear_left_behind(work_dir: Path, tournament_id: int, ended: list[tuple[int, int]], tries: FirstTries) -> None:
    """Once the attempts that drivers no longer alive left running are ``ended`` (interrupted or
    withdrawn) and committed: their outputs are removed (their logs stay, an adopted early run's moved
    to its run's folder first) and so are the early runs' folders, whichever drive trains next."""
    early = EarlyRuns(work_dir)
    early.keep_adopted(tournament_id, tries)
    remove_outputs(work_dir, tournament_id, ended)
    early.clear_left_behind(tournament_id)


def clear_driverless(work_dir: Path, tournament_id: int, notes: WithdrawalNotes, withdrawn: list[tuple[int, int]],
                     tries: FirstTries) -> None:
    """Once :func:`withdraw_driverless` is committed, what the next drive would have cleared (a cancelled
    tournament has none): the notes it honoured, then :func:`clear_left_behind`."""
    notes.remove()
    clear_left_behind(work_dir, tournament_id, withdrawn, tries)


def leave_note(folder: Path, me: DriverIdentity, reason: str) -> None:
    """Leave the note of this driver's withdrawal, ``reason``, in the tournament's work ``folder``. One
    that cannot be written (a full disk) is logged, and the attempts are interrupted at the next drive."""
    note = {"host": me.host, "pid": me.pid, "reason": reason, "at": datetime.now(UTC).isoformat()}
    name = f"{NOTE_PREFIX}{secrets.token_hex(8)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.partial"  # a note is read whole or not at all
        partial.write_text(json.dumps(note))
        os.replace(partial, folder / f"{name}.json")
    except OSError as error:
        log.warning("could not leave the note of the withdrawal of %s pid %s's attempts in %s (%s): the next drive "
                    "records them as interrupted", me.host, me.pid, folder, error)  # fmt: skip


@dataclass(frozen=True)
class WithdrawalNotes:
    """The notes left in a tournament's work folder, read at a drive's start, before its recovery."""

    paths: tuple[Path, ...]
    notes: tuple[WithdrawalNote, ...]

    @classmethod
    def read(cls, folder: Path) -> WithdrawalNotes:
        paths, notes = sorted(folder.glob(f"{NOTE_PREFIX}*.json")), []
        for path in paths:
            try:
                data = json.loads(path.read_text())
                notes.append(WithdrawalNote(str(data["host"]), int(data["pid"]), str(data["reason"]),
                                            datetime.fromisoformat(data["at"])))  # fmt: skip
            except (OSError, ValueError, KeyError, TypeError) as error:  # removed with the others: it says nothing usable
                log.warning("ignoring the withdrawal note %s, which cannot be read (%s)", path, error)
        return cls(tuple(paths), tuple(notes))

    def reason_for(self, attempt: RunAttempt) -> str | None:
        """The withdrawal reason of a running ``attempt`` a note covers; None: it was interrupted."""
        return next((note.reason for note in self.notes if note.covers(attempt)), None)

    def remove(self) -> None:
        """Once the recovery that read them is committed."""
        for path in self.paths:
            path.unlink(missing_ok=True)
