"""A tournament's results as plain data, read from the store: the bracket (every match with each
competitor's score per task, and each round's byes) and the leaderboard (final standing, how far each got, every score or
failure reason). The CLI renders it as tables or JSON; nothing here prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from trainarena.contract import RunStatus
from trainarena.engine.model import Finished
from trainarena.reporting.run_detail import score_of, task_direction, task_name
from trainarena.store import Tournament, defender_reigned, stored_weights
from trainarena.store.shown_status import CANCELLED, shown_outcome

_STAGE_ORDER = {"group": 0, "knockout": 1, "boss": 2}
# The statuses of a run played to its end that did not succeed.
FAILED_STATUSES = frozenset(status.value for status in RunStatus if status.finished and status != RunStatus.SUCCEEDED)


@dataclass(frozen=True)
class RunLine:
    run_id: int  # what `trainarena runs show` takes
    round_index: int
    stage: str
    match_id: str
    task: str
    competitor: str
    status: str  # as store.shown_status.shown_outcome reads it: a cancelled tournament's unfinished run reads cancelled
    score: float | None
    failure: str | None
    wall_seconds: float | None
    direction: str | None  # lower or higher: which scores of its task type are better

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES


@dataclass(frozen=True)
class Byes:
    """The competitors a round let through without playing (fewest byes so far, then the seeded draw)."""

    round_index: int
    stage: str
    competitors: list[str]


@dataclass(frozen=True)
class Standing:
    rank: int | None  # None: never produced a valid score, so unranked
    competitor: str
    reached: str  # the furthest stage played, e.g. "knockout r2", or passed on a bye ("knockout r1 (bye)")
    runs_ok: int
    runs: int
    scores: dict[str, float]  # task name -> score
    failures: dict[str, str]  # task name -> why it failed
    weight: float | None


@dataclass(frozen=True)
class Leaderboard:
    tournament: str
    kind: str
    status: str
    champion_before: str | None
    champion: str | None
    crowned: bool
    reason: str
    standings: list[Standing] = field(default_factory=list)
    runs: list[RunLine] = field(default_factory=list)
    undistributed: float | None = None
    byes: list[Byes] = field(default_factory=list)
    # The defender was the kind's reigning champion; false for a default defender, never crowned (the
    # demo's), which holds no title to keep (docs/rules.md, "A default defender").
    defender_reigned: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["leaderboard"] = data.pop("standings")
        return data


def _run_lines(tournament: Tournament) -> list[RunLine]:
    """Every run of ``tournament`` in play order (round, match, task, run), from the record
    ``store.load_tournament`` loaded: the runs are not read a second time."""
    lines = []
    for round_ in tournament.rounds:
        for match in round_.matches:
            for task in match.tasks:
                for run in task.runs:
                    status, failure = shown_outcome(run)
                    lines.append(RunLine(run_id=run.id, round_index=round_.index, stage=round_.stage,
                                         match_id=match.match_id, task=task_name(task), competitor=run.competitor.name,
                                         status=status, score=score_of(run)[0], direction=task_direction(task), failure=failure,
                                         wall_seconds=run.wall_seconds))  # fmt: skip
    return lines


def reached(name: str, own: list[RunLine], byes: list[Byes]) -> str:
    """How far ``name`` got: the furthest round it played (``own``: its runs), or passed on a bye;
    "-" for neither."""
    places = [(line.round_index, _STAGE_ORDER[line.stage], line.stage, "") for line in own]
    places += [(bye.round_index, _STAGE_ORDER[bye.stage], bye.stage, " (bye)") for bye in byes if name in bye.competitors]
    if not places:
        return "-"
    round_index, _order, stage, how = max(places)
    return f"{stage} r{round_index + 1}{how}"


def default_defender_reason(reason: str, defender: str | None, reigned: bool) -> str:
    """The engine's reason in the words of a default defender: the engine says a defender "retains the
    title", which a defender never crowned does not hold (it is no champion in the champion history)."""
    if defender is None or reigned:
        return reason
    holds = f"{defender}, the default defender (never crowned), stays this tournament's champion: nobody is crowned"
    return (reason.replace(f"{defender} retains the title", holds)
            .replace("the champion entered and won the bracket: retained", f"{holds} (it entered and won the bracket)"))


def build_leaderboard(session: Session, tournament: Tournament, finished: Finished | None) -> Leaderboard:
    """Standings follow the engine's final ranking; competitors it left unranked (never a valid score)
    follow in entry order. ``tournament``: as ``store.load_tournament`` loads it (its runs with their
    competitors and outcomes)."""
    lines = _run_lines(tournament)
    lines_of: dict[str, list[RunLine]] = {}
    for line in lines:
        lines_of.setdefault(line.competitor, []).append(line)
    byes = [Byes(round_.index, round_.stage, list(round_.byes)) for round_ in tournament.rounds if round_.byes]
    weights = stored_weights(session, tournament.id)
    entrants = [e.competitor.name for e in tournament.entrants]
    champion_before = None if tournament.champion_before is None else tournament.champion_before.name
    reigned = defender_reigned(session, tournament)
    names = entrants + ([champion_before] if champion_before and champion_before not in entrants else [])
    ranked = list(finished.standings) if finished else []
    order = ranked + [name for name in names if name not in ranked]
    standings = []
    for name in order:
        own = lines_of.get(name, [])
        standings.append(
            Standing(
                rank=ranked.index(name) + 1 if name in ranked else None,
                competitor=name,
                reached=reached(name, own, byes),
                runs_ok=sum(1 for line in own if line.status == "succeeded"),
                runs=len(own),
                scores={line.task: line.score for line in own if line.score is not None and line.status == "succeeded"},
                failures={line.task: line.failure or line.status for line in own if line.status not in ("succeeded", "pending", CANCELLED)},
                weight=weights.get(name),
            )
        )
    return Leaderboard(
        tournament=tournament.name,
        kind=tournament.kind,
        status=tournament.status,
        champion_before=champion_before,
        champion=None if finished is None else finished.champion,
        crowned=bool(finished and finished.crowned),
        # A cancelled tournament's outcome is the operator's reason (operations.cancelling).
        reason=(tournament.outcome_reason or "") if tournament.status == "cancelled"
        else "" if finished is None else default_defender_reason(finished.reason, champion_before, reigned),
        standings=standings,
        runs=lines,
        undistributed=tournament.weight_remainder,
        byes=byes,
        defender_reigned=reigned,
    )
