"""What a run's status reads as, for every reader of it: the listings and reports (``reporting``) and the
audit (``records.audit``), so that one run never reads pending in one command and cancelled in another."""

from __future__ import annotations

from enum import StrEnum

from trainarena.contract import RunStatus
from trainarena.store.models import Run, TournamentStatus

# What a tournament run reads as that its tournament's cancellation left unfinished, in place of its
# stored status (pending; running until its attempt is withdrawn): it will never be played.
CANCELLED = "cancelled"
# What a run's status reads as (:func:`shown_outcome`): a stored one, or cancelled. The status filter of
# ``runs list`` and ``GET /v1/runs`` takes these, so that a status shown selects the runs showing it.
ShownStatus = StrEnum("ShownStatus", [(status.name, status.value) for status in RunStatus] + [("CANCELLED", CANCELLED)])


def shown_outcome(run: Run) -> tuple[str, str | None]:
    """(status, failure reason) as ``run`` reads in lists, in full and in its audit: its own, but a
    tournament run not finished whose tournament was cancelled reads :data:`CANCELLED`, its tournament's
    outcome its reason."""
    # Derived, not stored (a ``cancelled`` RunStatus was weighed and left out; the column is a plain
    # string, so a migration was not the obstacle):
    # - RunStatus is what an executor reports a run ended as (``runs.RunReport.status``); none ends cancelled.
    # - Finished or not, it breaks a reader: finished, ``store.records._outcome`` makes it a failure and
    #   ``is_round_complete`` a cut round complete, so the bracket and standings of a cancelled tournament
    #   would be decided by its cancellation; not finished, it is a third unfinished status for every
    #   PENDING/RUNNING test (claims, recovery, withdrawal, ``_unplayed_or_in_play``) to learn.
    # - The cancel cannot write it for a run still running under a live driver: that driver's withdrawal
    #   (``attempts.withdraw_own_attempts``) selects its runs as RUNNING, later, in its own step. So the
    #   status would have several writers, and this derivation would stay for those runs meanwhile and for
    #   old databases: two sources of truth where one, read here and by ``reporting.run_list.list_runs``, suffices.
    match = run.task.match
    if match is None or run.run_status.finished or match.round.tournament.status != TournamentStatus.CANCELLED:
        return run.status, run.failure_reason
    return CANCELLED, f"its tournament was {match.round.tournament.outcome_reason}"
