"""The home page (champions, the tournament running now, the next scheduled ones, recent tournaments)
and the tournament page (bracket, boss round, scores per task, failures, weights), each with the
fragment its live-update script polls while a tournament runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from trainarena.engine.model import TOURNAMENT_KINDS
from trainarena.operations.history import Reign, champion_reigns, finished_of
from trainarena.operations.schedule import Create, enabled, kind_facts, next_action, next_due, pool_of
from trainarena.records.recorder import revealed_task_names
from trainarena.registry import champion_sources
from trainarena.reporting.bracket import Bracket, read_bracket
from trainarena.reporting.leaderboard import Leaderboard, RunLine, build_leaderboard
from trainarena.reporting.reasons import short_reason
from trainarena.settings import Settings
from trainarena.store import (
    StoreError,
    Tournament,
    TournamentStatus,
    TournamentSummary,
    get_draw,
    get_pool,
    list_tournaments,
    summarize_tournament,
    summarize_tournaments,
)
from trainarena.web.account import recent_jobs
from trainarena.web.charts import boss_margin_svg
from trainarena.web.templating import PageId, not_found_page, render, render_live, settings_of, store_of

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class NextTournament:
    kind: str
    pool: str
    due_at: datetime
    overdue: bool  # due already, not created yet: serve creates it when it next looks


def _reigning(session: Session, settings: Settings) -> dict[str, Reign | None]:
    reigns = champion_reigns(session, settings.rules)
    return {kind: next((r for r in reversed(reigns) if r.kind == kind), None) for kind in TOURNAMENT_KINDS}


@dataclass(frozen=True)
class Schedule:
    """The home page's "Next scheduled": each enabled kind's next tournament, and the (kind, pool) of
    those whose pool does not exist yet (serve cannot create one there: nothing is due) or is spent
    (every task it holds was revealed by an ended tournament, so serve's creation is refused whoever
    enters: it was listed as due)."""

    upcoming: list[NextTournament]
    missing_pools: list[tuple[str, str]]
    spent_pools: list[tuple[str, str]]


def _next_scheduled(session: Session, settings: Settings, now: datetime) -> Schedule:
    """Each enabled kind's next tournament, as the schedule decides from the store (operations/schedule.py)."""
    rules = settings.schedule
    upcoming, missing, spent = [], [], []
    revealed = revealed_task_names(session)
    for fact in kind_facts(session, rules, {}):
        if not enabled(fact.kind, rules):
            continue
        pool = get_pool(session, pool_of(fact.kind, rules))
        if pool is None or all(task.name in revealed for task in pool.tasks):
            # Only the reveal is checked here: serve's other checks (entrants, changed inputs) fetch
            # repositories and hash datasets, too slow for a page; its log says why it refused.
            (missing if pool is None else spent).append((fact.kind, pool_of(fact.kind, rules)))
            continue
        action = next_action([fact], rules, now)
        if isinstance(action, Create):
            upcoming.append(NextTournament(fact.kind, action.pool, action.due_at, overdue=True))
        else:  # sleeping until its next due time, or driving one now (the next is due after it)
            upcoming.append(NextTournament(fact.kind, pool_of(fact.kind, rules), next_due(fact.kind, rules, now), overdue=False))
    return Schedule(sorted(upcoming, key=lambda n: n.due_at), missing, spent)


def _running(session: Session) -> dict[str, list[TournamentSummary]]:
    """The "running now" section's tournaments: those running, and those created but not started, listed
    apart (a tournament only created plays nothing: it was listed as running)."""
    unfinished = summarize_tournaments(session, [t for t in list_tournaments(session) if t.status not in TournamentStatus.ENDED])
    return {"running_now": [t for t in unfinished if t.status == TournamentStatus.RUNNING],
            "not_started": [t for t in unfinished if t.status == TournamentStatus.CREATED]}


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    settings = settings_of(request)
    with store_of(request).session() as session:
        tournaments = list_tournaments(session)
        recent = summarize_tournaments(session, tournaments[-settings.dashboard.recent_tournaments:][::-1])
        reigns = _reigning(session, settings)
        code = champion_sources(settings, session, [reign.champion for reign in reigns.values() if reign], fetch=False)
        context = {"reigns": reigns, "code": code, **_running(session), "recent": recent, "total": len(tournaments),
                   "schedule": _next_scheduled(session, settings, datetime.now(UTC)),
                   "customer": recent_jobs(request, settings.dashboard.recent_jobs)}  # fmt: skip
    return render(request, "home.html", context)


@router.get("/tournaments", response_class=HTMLResponse)
def tournaments_page(request: Request) -> HTMLResponse:
    """Every tournament, newest first."""
    with store_of(request).session() as session:
        summaries = summarize_tournaments(session, list_tournaments(session)[::-1])
    return render(request, "tournaments.html", {"tournaments": summaries})


@router.get("/live/running", response_class=HTMLResponse)
def running_fragment(request: Request) -> HTMLResponse:
    """The home page's "running now" section. The home page keeps polling it (X-Live: running) even
    while nothing runs, so a tournament that starts shows up there."""
    with store_of(request).session() as session:
        running = _running(session)
    return render_live(request, "_running.html", running, running=True)


def _tasks(runs: list[RunLine]) -> list[dict[str, Any]]:
    """The scores table of each task, in play order."""
    tables: dict[tuple[int, str, str], dict[str, Any]] = {}
    for line in runs:
        key = (line.round_index, line.match_id, line.task)
        table = tables.setdefault(key, {"round": line.round_index + 1, "stage": line.stage, "match_id": line.match_id,
                                        "task": line.task, "lines": []})  # fmt: skip
        table["lines"].append(line)
    return list(tables.values())


def _failures(runs: list[RunLine]) -> list[tuple[RunLine, str]]:
    return [(line, short_reason(line.failure) or line.status) for line in runs if line.failed]


def tournament_board(session: Session, settings: Settings, tournament_id: int) -> tuple[Tournament, Bracket, Leaderboard]:
    """The tournament (record loaded), its bracket and its leaderboard, as the engine replays it."""
    tournament, replayed, bracket = read_bracket(session, tournament_id, settings.rules)
    return tournament, bracket, build_leaderboard(session, tournament, finished_of(tournament, replayed))


def _tournament_context(session: Session, settings: Settings, tournament_id: int) -> dict[str, Any]:
    tournament, bracket, board = tournament_board(session, settings, tournament_id)
    draw = get_draw(session, tournament_id)
    return {
        "tournament": tournament, "summary": summarize_tournament(session, tournament), "board": board, "bracket": bracket,
        "pool": None if draw is None else draw.pool.name, "tasks": _tasks(board.runs), "failures": _failures(board.runs),
        "boss_chart": None if bracket.boss is None else boss_margin_svg(bracket.boss),
    }  # fmt: skip


def _tournament_page(request: Request, tournament_id: int, template: str) -> HTMLResponse:
    with store_of(request).session() as session:
        try:
            context = _tournament_context(session, settings_of(request), tournament_id)
        except StoreError:
            return not_found_page(request, f"There is no tournament {tournament_id}.")
        return render_live(request, template, context, running=context["tournament"].status not in TournamentStatus.ENDED)


@router.get("/tournaments/{tournament_id}", response_class=HTMLResponse)
def tournament_page(request: Request, tournament_id: PageId) -> HTMLResponse:
    return _tournament_page(request, tournament_id, "tournament.html")


@router.get("/tournaments/{tournament_id}/live", response_class=HTMLResponse)
def tournament_fragment(request: Request, tournament_id: PageId) -> HTMLResponse:
    """Everything on the tournament page that changes while it runs, polled by live.js."""
    return _tournament_page(request, tournament_id, "_tournament_live.html")
