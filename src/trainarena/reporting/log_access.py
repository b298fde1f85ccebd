"""Who reads what a tournament run's script wrote (settings ``api.tournament_run_logs``): its logs, their
tails in the run's detail and the stderr tail recorded with its failure. A script sees its task's
training rows and may print them, so a log is the operator's data; the platform's summary of a failure
(exit code, time-out, a refused artifact) is the platform's text and stays readable. A competitor key
reads its own competitors' runs at once (it needs their output to debug its script), but under
``operators``: there the data is private, and what its script printed of it would leave with it."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class LogsRule:
    """The rule a caller reads runs' logs under: the setting's value, and the API key reading (None:
    no key, as on the dashboard), which reads its own competitors' runs but under ``operators``."""

    setting: str
    reader_key_id: int | None = None


ALL_LOGS = LogsRule(LOGS_PUBLIC)


def logs_rule(setting: str, *, operator: bool, key_id: int | None = None) -> LogsRule:
    """The rule a caller reads runs' logs under: an operator reads them all, anyone else as ``setting``
    says (and, but under ``operators``, the runs of competitors its key ``key_id`` registered)."""
    return ALL_LOGS if operator else LogsRule(setting, key_id)


def logs_withheld(session: Session, run: Run, rule: LogsRule) -> str | None:
    """Why ``run``'s script output is withheld under ``rule`` (:func:`logs_rule`), or None when it may be
    read. The rule covers runs on a tournament's task and audits that re-run one (the same data)."""
    if rule.setting == LOGS_PUBLIC:
        return None
    played = session.get(Run, run.audit_of_id) if run.origin == RunOrigin.AUDIT and run.audit_of_id is not None else run
    match = None if played is None else played.task.match
    # Under `operators` not even its own key: what its script printed of the private data would leave with it.
    if match is None or (rule.setting != LOGS_OPERATORS and _reads_own(played, rule.reader_key_id)):
        return None
    tournament = match.round.tournament
    if rule.setting == LOGS_AFTER_FINISH and tournament.status in TournamentStatus.ENDED:
        return None
    until = "until the tournament ends" if rule.setting == LOGS_AFTER_FINISH else "from all but operators"
    return (f"the script's output of this run of tournament {tournament.name} is withheld {until} (settings "
            f"api.tournament_run_logs={rule.setting}): a script may print its task's training rows")


def _reads_own(run: Run, key_id: int | None) -> bool:
    """Whether ``run`` is of a competitor the key ``key_id`` registered (``Competitor.owner_key_id``)."""
    return key_id is not None and run.competitor is not None and run.competitor.owner_key_id == key_id


def platform_reason(text: str | None) -> str | None:
    """A failure reason without the script's stderr tail recorded with it: the platform's summary alone."""
    return text if text is None else split_reason(text)[0]
