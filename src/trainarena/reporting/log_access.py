"""Who reads what a tournament run's script wrote (settings ``api.tournament_run_logs``): its logs, their
tails in the run's detail and the stderr tail recorded with its failure. A script sees its task's
training rows and may print them, so a log is the operator's data; the platform's summary of a failure
(exit code, time-out, a refused artifact) is the platform's text and stays readable."""

from __future__ import annotations

from sqlalchemy.orm import Session

from trainarena.reporting.reasons import split_reason
from trainarena.store import Run
from trainarena.store.models import RunOrigin, TournamentStatus

# The values of api.tournament_run_logs (settings/service.py).
LOGS_PUBLIC = "public"
LOGS_AFTER_FINISH = "after_finish"
LOGS_OPERATORS = "operators"


class LogsWithheldError(LookupError):
    """A run whose logs the caller may not read, with why (the setting and, after_finish, until when)."""


def logs_rule(setting: str, *, operator: bool) -> str:
    """The rule a caller reads runs' logs under: an operator reads them all, anyone else as ``setting`` says."""
    return LOGS_PUBLIC if operator else setting


def logs_withheld(session: Session, run: Run, rule: str) -> str | None:
    """Why ``run``'s script output is withheld under ``rule`` (:func:`logs_rule`), or None when it may be
    read. The rule covers runs on a tournament's task and audits that re-run one (the same data)."""
    if rule == LOGS_PUBLIC:
        return None
    played = session.get(Run, run.audit_of_id) if run.origin == RunOrigin.AUDIT and run.audit_of_id is not None else run
    match = None if played is None else played.task.match
    if match is None:
        return None
    tournament = match.round.tournament
    if rule == LOGS_AFTER_FINISH and tournament.status in TournamentStatus.ENDED:
        return None
    until = "until the tournament ends" if rule == LOGS_AFTER_FINISH else "from all but operators"
    return (f"the script's output of this run of tournament {tournament.name} is withheld {until} (settings "
            f"api.tournament_run_logs={rule}): a script may print its task's training rows")


def platform_reason(text: str | None) -> str | None:
    """A failure reason without the script's stderr tail recorded with it: the platform's summary alone."""
    return text if text is None else split_reason(text)[0]
