"""``/v1/tournaments``: the tournaments (`tournament list`), one in full with its bracket, standings,
boss round and weights (`tournament show`), its leaderboard; what each task pool can still draw
(``/v1/pools/drawable``: what a script must support to enter, without a task's name or data); for
operators, creating one on a task pool (`tournament create`) and starting to drive it in the background
(`tournament run`)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from trainarena.api.auth import Competitor, Operator
from trainarena.api.cache import tournament_version
from trainarena.api.context import app_settings, app_store
from trainarena.api.errors import BODY_RESPONSES, ROLE_RESPONSES, ApiError, ErrorResponse, not_found
from trainarena.api.json_body import RequestBody
from trainarena.api.paging import NAME_MAX_LENGTH, STORE_INT_MAX, Page, PageWindow
from trainarena.api.routes.runs import DriverOut
from trainarena.api.shown import shown_to
from trainarena.engine.model import TournamentKind
from trainarena.operations.cancelling import REASON_MAX, CancelRefused, cancel_tournament
from trainarena.operations.drivers import BackgroundDrivers, DriveRefused, DrivingUnavailable
from trainarena.operations.history import tournament_detail
from trainarena.operations.tournaments import TournamentRefused, create_pool_tournament, drawable_json
from trainarena.store import StoreError, get_tournament, list_pools, list_tournaments, summarize_tournaments

router = APIRouter(prefix="/v1", tags=["tournaments"], responses=ROLE_RESPONSES)

TournamentId = Annotated[int, Path(ge=1, le=STORE_INT_MAX, description="The tournament's id.")]
DRIVER_DESCRIPTION = ("A running tournament: who drives it (not alive: none does, and its runs marked running are "
                      "not training); null for every other tournament.")


class TournamentSummaryOut(BaseModel):
    id: int
    name: str
    kind: str = Field(description="text or image.")
    status: str = Field(description="created, running or finished.")
    seed: int = Field(description="The draw of tasks and the bracket follow from it.")
    entrants: int
    round_index: int | None = Field(description="The latest round created; null before the first.")
    stage: str | None = Field(description="That round's stage: group, knockout or boss.")
    runs_done: int
    runs_total: int
    champion_before: str | None = Field(description="The champion who defended.")
    champion_after: str | None = Field(description="The champion once finished.")
    reason: str | None = Field(description="How it ended.")
    created_at: datetime
    finished_at: datetime | None
    driver: DriverOut | None = Field(description=DRIVER_DESCRIPTION)


class StandingOut(BaseModel):
    rank: int | None = Field(description="Final rank; null for a competitor that never scored.")
    competitor: str
    reached: str = Field(description="The furthest stage played, e.g. 'knockout r2'.")
    runs_ok: int
    runs: int
    scores: dict[str, float] = Field(description="Task name -> score of its successful runs.")
    failures: dict[str, str] = Field(description="Task name -> why its run failed.")
    weight: float | None = Field(description="Its share of the tournament's weights.")


class LeaderboardOut(BaseModel):
    tournament: str
    kind: str
    status: str
    champion_before: str | None
    champion: str | None
    crowned: bool = Field(description="Whether the champion was crowned by this tournament.")
    reason: str = Field(description="How it ended; empty while it runs.")
    defender_reigned: bool = Field(description="Whether the defender (champion_before) was the reigning champion of its kind; "
                                   "false for a default defender, never crowned (the demo's), which holds no title.")
    leaderboard: list[StandingOut] = Field(description="Standings, ranked first, unranked in entry order.")
    undistributed: float | None = Field(description="The share of weight nobody earned.")


class RunLineOut(BaseModel):
    run_id: int
    round_index: int = Field(description="0-based round.")
    stage: str
    match_id: str
    task: str
    competitor: str
    status: str
    score: float | None
    failure: str | None
    wall_seconds: float | None
    direction: str | None = Field(description="lower or higher: which scores of its task type are better.")


class BossTaskOut(BaseModel):
    task: int = Field(description="1-based boss task, numbered across every boss round played.")
    challenger_score: float | None
    champion_score: float | None
    lead: float | None
    required_lead: float | None = Field(description="Majority rule: the lead the task needed (null under the paired rule).")
    relative_lead: float | None = Field(description="Paired rule: the lead over the larger |score| (+1/-1 for a failure; null when both failed or under the majority rule).")
    taken: bool
    reason: str


class BossOut(BaseModel):
    challenger: str
    champion: str
    taken: int = Field(description="Boss tasks the challenger took.")
    needed: int = Field(description="Tasks a strict majority is (what the majority rule asks).")
    crowned: bool
    rule: str = Field(description="The boss rule that decided: paired or majority (docs/rules.md, 'Boss round').")
    reason: str = Field(description="Why it came out this way, in plain words.")
    tasks: list[BossTaskOut]


class ByesOut(BaseModel):
    round_index: int = Field(description="0-based round.")
    stage: str
    competitors: list[str] = Field(description="Who advanced without playing that round.")


class TournamentDetailOut(LeaderboardOut):
    """A tournament in full, as `trainarena tournament show --json` prints it."""

    id: int
    runs: list[RunLineOut] = Field(description="The bracket: every run, by round and match.")
    byes: list[ByesOut] = Field(description="The bracket's byes: each round's competitors that advanced without playing.")
    pool: str | None = Field(description="The task pool it draws from (null for a tournament not made from one).")
    tasks: list[str] | None = Field(description="The stored tasks drawn, in play order.")
    boss: BossOut | None = Field(description="The boss round against the defending champion, once played.")
    weights: dict[str, float] = Field(description="Competitor -> weight, once finished.")
    driver: DriverOut | None = Field(description=DRIVER_DESCRIPTION)


class CreateIn(RequestBody):
    kind: TournamentKind
    pool: str = Field(min_length=1, max_length=NAME_MAX_LENGTH, description="The task pool to draw from (GET /v1/pools).")
    entry_closes: datetime | None = Field(None, strict=False, description="Competitors registered later do not enter (default now; UTC when no zone).")
    seed: int | None = Field(None, ge=0, le=STORE_INT_MAX, description="Tournament seed (default random).")
    name: str | None = Field(None, min_length=1, max_length=NAME_MAX_LENGTH, description="Tournament name (default KIND-POOL-N): "
                             "letters, digits, '.', '_', '-', starting with a letter or digit.")  # fmt: skip


class LeftOut(BaseModel):
    competitor: str
    reason: str


class UnusableTask(BaseModel):
    task: str
    reason: str


class CreatedOut(BaseModel):
    id: int
    name: str
    kind: str
    pool: str
    seed: int
    entrants: list[str]
    defender: str | None = Field(description="The reigning champion, who defends in the boss round.")
    tasks: list[str] = Field(description="The stored tasks drawn, in play order.")
    left_out: list[LeftOut] = Field(description="Registered competitors who did not enter, and why.")
    unusable_tasks: list[UnusableTask] = Field(description="Pool tasks not drawn, and why.")
    entry_closes_at: datetime


class StartedOut(BaseModel):
    id: int
    name: str
    driving: bool = Field(description="True: this process now drives it in the background.")


@router.get("/tournaments", response_model=Page[TournamentSummaryOut], summary="List tournaments, oldest first")
def list_all(caller: Competitor, request: Request, window: PageWindow) -> Page[TournamentSummaryOut]:
    with app_store(request).session() as session:
        # One more than the page holds says whether more follow.
        tournaments = list_tournaments(session, offset=window.offset, limit=window.limit + 1)
        tournaments, more = tournaments[:window.limit], len(tournaments) > window.limit
        summaries = summarize_tournaments(session, tournaments)
        data = [TournamentSummaryOut(**shown_to(caller, request, summary.to_json())) for summary in summaries]
    return Page[TournamentSummaryOut](data=data, has_more=more)


def _detail(request: Request, tournament_id: int):
    """The tournament's detail; a finished one's from the app's cache (api/cache.py)."""
    with app_store(request).session() as session:
        compute = partial(tournament_detail, session, tournament_id, app_settings(request).rules)
        try:
            version = tournament_version(session, tournament_id)
            if version is None:
                return compute()
            return request.app.state.cache.get(("tournament", tournament_id), version, compute)
        except StoreError:
            raise not_found("tournament", tournament_id) from None


@router.get("/tournaments/{tournament_id}", response_model=TournamentDetailOut, summary="A tournament in full")
def show(tournament_id: TournamentId, caller: Competitor, request: Request) -> TournamentDetailOut:
    """Its bracket (every run's score by round and match), standings, outcome, pool and tasks, boss round and weights."""
    return TournamentDetailOut(**shown_to(caller, request, _detail(request, tournament_id).to_json()))


@router.get("/tournaments/{tournament_id}/leaderboard", response_model=LeaderboardOut, summary="A tournament's standings")
def leaderboard(tournament_id: TournamentId, caller: Competitor, request: Request) -> LeaderboardOut:
    return LeaderboardOut(**shown_to(caller, request, _detail(request, tournament_id).board.to_json()))


class DrawableSetupOut(BaseModel):
    type: str = Field(description="The task type.")
    base_model: str = Field(description="The base model its runs train (a path on the server by its file name alone, "
                            "but for an operator's key).")  # fmt: skip
    budget_seconds: float = Field(description="The training budget.")
    tasks: int = Field(description="How many of the pool's drawable tasks are of this type, base model and budget.")


class DrawablePoolOut(BaseModel):
    """What a pool can still draw: its tasks no ended tournament revealed and that can run. No task's name,
    dataset or split key."""

    name: str
    kind: str = Field(description="text or image.")
    tasks: int = Field(description="How many tasks it can still draw.")
    task_types: list[str] = Field(description="The types it can draw: an entrant's trainarena.toml must support every one.")
    setups: list[DrawableSetupOut] = Field(description="Its drawable tasks by type, base model and budget.")


@router.get("/pools/drawable", response_model=list[DrawablePoolOut], summary="What each task pool can still draw")
def drawable(caller: Competitor, request: Request) -> list[DrawablePoolOut]:
    """Each pool's drawable task types, base models and budgets (docs/rules.md, "Entry is judged on the
    drawable tasks"): the types a script must support to enter a tournament on it."""
    settings = app_settings(request)
    with app_store(request).session() as session:
        return [DrawablePoolOut(**shown_to(caller, request, drawable_json(session, pool, settings))) for pool in list_pools(session)]


@router.post("/tournaments", status_code=201, response_model=CreatedOut, summary="Create a tournament on a task pool (operators)",
             responses=BODY_RESPONSES)
def create(body: CreateIn, _operator: Operator, request: Request) -> CreatedOut:
    """Who enters, who defends and which stored tasks it draws, as `trainarena tournament create`;
    refusals (pool too small, of another kind, nobody can enter) are 422 with the numbers."""
    closes = body.entry_closes
    if closes is not None and closes.tzinfo is None:
        closes = closes.replace(tzinfo=UTC)
    try:
        with app_store(request).transaction() as session:
            created = create_pool_tournament(session, app_settings(request), kind=body.kind, pool=body.pool,
                                             entry_closes=closes, seed=body.seed, name=body.name)  # fmt: skip
    except TournamentRefused as error:
        raise ApiError(422, "tournament_refused", str(error), kind=body.kind, pool=body.pool) from None
    return CreatedOut(**created.to_json())


def _drivers(request: Request) -> BackgroundDrivers:
    drivers = next((s for s in request.app.state.services if isinstance(s, BackgroundDrivers)), None)
    if drivers is None:
        raise ApiError(503, "unavailable", "this API process drives no tournaments; start it with `trainarena api` or "
                       "`trainarena serve`, or drive it with `trainarena tournament run`")  # fmt: skip
    return drivers


class CancelIn(RequestBody):
    reason: str = Field("", max_length=REASON_MAX, description="Why, recorded as its outcome.")


class CancelledOut(BaseModel):
    id: int
    name: str
    status: str = Field(description="cancelled")
    reason: str = Field(description="The outcome recorded: 'cancelled: REASON'.")
    released: bool = Field(description="Its drawn tasks and entrants were released (it had not started); a started "
                           "one keeps its records whole.")
    withdrawn: int = Field(description="Attempts a driver no longer alive had left running, withdrawn by this cancel "
                           "(none while a live driver holds it: that driver withdraws its own).")
    already_cancelled_at: datetime | None = Field(description="Cancelled already (this time, by an earlier cancel): this "
                                                  "cancel only withdrew the attempts its driver, dead since, had left running, "
                                                  "and removed the files it left.")
    notes_removed: int = Field(description="Withdrawal notes a stopped driver had left in the tournament's work folder, "
                               "removed by this cancel (none while a live driver holds it).")
    early_runs_removed: int = Field(description="Early runs' folders a driver no longer alive had left, removed by this "
                                    "cancel (none while a live driver holds it).")


@router.post("/tournaments/{tournament_id}/cancel", response_model=CancelledOut, summary="Cancel a tournament not finished (operators)",
             responses={409: {"model": ErrorResponse, "description": "Finished, or cancelled already with nothing left to withdraw or remove"}, **BODY_RESPONSES})
def cancel(tournament_id: TournamentId, body: CancelIn, _operator: Operator, request: Request) -> CancelledOut:
    """`trainarena tournament cancel`: it is never driven again (a driver stops at its next step). Cancelled
    already, it withdraws the attempts a driver dead since left running and removes the files it left
    (200, ``already_cancelled_at`` set)."""
    try:
        cancelled = cancel_tournament(app_store(request), app_settings(request), tournament_id, body.reason)
    except CancelRefused as error:
        raise ApiError(409, "conflict", str(error), tournament=str(tournament_id)) from None
    except StoreError:
        raise not_found("tournament", tournament_id) from None
    return CancelledOut(**cancelled.to_json())


@router.post("/tournaments/{tournament_id}/start", status_code=202, response_model=StartedOut,
             summary="Start driving a pool tournament in the background (operators)",
             responses={409: {"model": ErrorResponse, "description": "Finished, or driven already"},
                        503: {"model": ErrorResponse, "description": "This process cannot play runs"}})  # fmt: skip
def start(tournament_id: TournamentId, _operator: Operator, request: Request) -> StartedOut:
    """Play it to its end in this process, under its lease (`trainarena tournament run` in the
    background): answers at once; GET /v1/tournaments/{id} shows how far it got. 409 while any
    process drives it."""
    store = app_store(request)
    try:
        _drivers(request).begin(store, tournament_id)
    except StoreError:
        raise not_found("tournament", tournament_id) from None
    except DriveRefused as error:
        raise ApiError(409, "conflict", str(error), tournament=str(tournament_id)) from None
    except DrivingUnavailable as error:
        raise ApiError(503, "unavailable", str(error)) from None
    with store.session() as session:
        return StartedOut(id=tournament_id, name=get_tournament(session, tournament_id).name, driving=True)
