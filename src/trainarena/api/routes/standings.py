"""Who is winning: ``/v1/champions`` (every crowning and the reigning champion per kind, and a champion's
code as a tar.gz: registry.champion_code), ``/v1/weights``
(the latest published vector and the history; operators publish), ``/v1/task-leaderboards/{task}``
(every entrant's best score on one task). Competitor and operator keys."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from trainarena.api.auth import Competitor, Operator
from trainarena.api.cache import champions_version
from trainarena.api.context import app_settings, app_store
from trainarena.api.errors import BODY_RESPONSES, ROLE_RESPONSES, ApiError, ErrorResponse, not_found
from trainarena.api.json_body import RequestBody
from trainarena.api.paging import STORE_INT_MAX
from trainarena.api.shown import shown_to
from trainarena.engine.model import TOURNAMENT_KINDS, TournamentKind
from trainarena.operations.history import Reign, champion_reigns
from trainarena.records.recorder import publish_recorded
from trainarena.registry import (
    ChampionSource,
    CodeDiffers,
    CodeNotStored,
    NotAChampion,
    NotRedistributable,
    champion_code,
    champion_sources,
)
from trainarena.reporting.task_board import UnknownTaskError, task_board
from trainarena.reporting.weights import csv_text, u16_export, u16_warnings, vector_record, weights_overview
from trainarena.store import FutureTimeError, StoreError, get_vector, latest_vector

router = APIRouter(prefix="/v1", tags=["standings"], responses=ROLE_RESPONSES)



class ReignOut(BaseModel):
    kind: str
    champion: str
    since: datetime = Field(description="When it was crowned.")
    tournament_id: int | None = Field(description="The tournament that crowned it (null: set by hand).")
    tournament: str | None
    margin: str = Field(description="How the crowning was won: the paired rule's reason (mean relative lead and its bounds), or the boss tasks taken and the mean lead under the majority rule.")


class ChampionCodeOut(BaseModel):
    """The reigning champion's open-sourced code: what to fetch and how to check it."""

    pinned: str | None = Field(None, description="repo@commit, the exact registered tree.")
    tree_hash: str | None = Field(None, description="The git tree id of that commit.")
    source_digest: str | None = Field(None, description="trainarena's digest of the code (comments and layout left out).")
    license: str | None = Field(None, description="The license read from the tree (a Hub license id); null when none was found.")
    license_file: str | None = Field(None, description="Where it was read from (LICENSE, pyproject.toml...).")
    download: str | None = Field(None, description="Where its code downloads as a tar.gz (GET); null when its license does not let "
                                 "anyone redistribute it, or it is not at hand.")
    error: str | None = Field(None, description="Why the code is not at hand (no longer registered, cannot be fetched).")


class ChampionsOut(BaseModel):
    reigning: dict[str, ReignOut | None] = Field(description="Kind -> its reigning champion (the latest crowning), or null.")
    code: dict[str, ChampionCodeOut] = Field(description="Kind -> its reigning champion's code (`trainarena champions export-code` writes it).")
    history: list[ReignOut] = Field(description="Every crowning, oldest first.")


class TournamentRef(BaseModel):
    id: int
    name: str


class WeightOut(BaseModel):
    competitor: str
    hotkey: str | None
    weight: float


class VectorSummaryOut(BaseModel):
    id: int
    published_at: datetime
    ratio: float = Field(description="The tournaments' share of the vector (hybrid mode ramps it).")
    week: int | None = Field(description="The hybrid week; null when hybrid mode is off.")
    fallback: float = Field(description="The share going to the fallback hotkey.")
    undistributed: float = Field(description="The share nobody earned.")
    tournaments: dict[str, TournamentRef | None] = Field(description="Kind -> the tournament the vector comes from.")


class VectorOut(VectorSummaryOut):
    weights: list[WeightOut] = Field(description="Every weight, heaviest first.")


class VectorHistoryOut(VectorSummaryOut):
    paid: int = Field(description="Competitors with a weight above zero.")


class WeightsOut(BaseModel):
    latest: VectorOut | None = Field(description="The latest published vector; null before any.")
    history: list[VectorHistoryOut] = Field(description="Every vector published, oldest first.")


class PublishIn(RequestBody):
    at: datetime | None = Field(None, strict=False, description="Publish as of this time (UTC when no zone); default now. "
                                "A time later than now (beyond weights.publish_clock_skew_seconds) is refused with 422.")


class PublishedOut(VectorOut):
    new: bool = Field(description="False when nothing changed since the last vector (it is returned again).")


class BoardLineOut(BaseModel):
    rank: int | None = Field(description="null: never scored on this task.")
    entrant: str = Field(description="A competitor, a working tree (its path on the server for an operator's key; for any other, "
                         "its folder's name and ' (tree)'), or a reference.")
    origin: str = Field(description="tournament, adhoc, house or base_model (of the best run).")
    best_score: float | None
    best_run_id: int
    runs: int
    runs_scored: int


class TaskBoardOut(BaseModel):
    task: str
    digest: str = Field(description="The task definition the board is for.")
    direction: str | None = Field(description="lower or higher: which scores are better.")
    other_digests: list[str] = Field(description="Other definitions under the same name (ask for one by digest prefix).")
    lines: list[BoardLineOut]


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    U16 = "u16"


@router.get("/weights/export", summary="Export a published weight vector: json, csv or a validator's u16 vector",
            responses={200: {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
                             "description": "json: the vector's record; csv: competitor, hotkey, weight; u16: the "
                             "integer vector by hotkey, with warnings for competitors left out"}})  # fmt: skip
def export_weights(
    _caller: Competitor,
    request: Request,
    format: Annotated[ExportFormat, Query(description="json, csv or u16.")] = ExportFormat.JSON,  # noqa: A002 - the query's name
    vector: Annotated[int | None, Query(ge=1, le=STORE_INT_MAX, description="This vector's id; default the latest.")] = None,
) -> Response:
    """`trainarena weights export` over HTTP (u16 without a uid map: hotkeys only)."""
    with app_store(request).session() as session:
        try:
            found = latest_vector(session) if vector is None else get_vector(session, vector)
        except StoreError:  # no such vector
            found = None
        if found is None:
            raise not_found("weight vector", "latest" if vector is None else vector)
        if format is ExportFormat.CSV:
            return PlainTextResponse(csv_text(found), media_type="text/csv")
        if format is ExportFormat.JSON:
            return JSONResponse(vector_record(found))
        exported = u16_export(found, app_settings(request).weights)
        return JSONResponse({**exported.record, "warnings": u16_warnings(exported.vector)})


@router.get("/champions", response_model=ChampionsOut, summary="The reigning champion per kind and every crowning")
def champions(
    caller: Competitor, request: Request, kind: Annotated[TournamentKind | None, Query(description="Only this kind.")] = None
) -> ChampionsOut:
    settings = app_settings(request)

    def compute() -> tuple[list[Reign], dict[str, ChampionCodeOut]]:
        every = champion_reigns(session, settings.rules)
        reigning = {k: next((r.champion for r in reversed(every) if r.kind == k), None) for k in TOURNAMENT_KINDS}
        sources = champion_sources(settings, session, [name for name in reigning.values() if name])
        code = {k: _code(sources[name]) for k, name in reigning.items() if name}
        return every, code

    with app_store(request).session() as session:
        every, code = request.app.state.cache.get("champions", champions_version(session), compute)
    reigns = [ReignOut(**reign.to_json()) for reign in every if kind is None or reign.kind == kind]
    kinds = TOURNAMENT_KINDS if kind is None else (kind,)
    reigning = {k: next((r for r in reversed(reigns) if r.kind == k), None) for k in kinds}
    out = ChampionsOut(reigning=reigning, code={k: c for k, c in code.items() if k in kinds}, history=reigns)
    return ChampionsOut(**shown_to(caller, request, out.model_dump()))


def _code(source: ChampionSource | str) -> ChampionCodeOut:
    if isinstance(source, str):
        return ChampionCodeOut(error=source)
    facts = source.to_json()
    download = None if source.license.redistribution_refusal() else f"/v1/champions/{source.competitor}/code"
    return ChampionCodeOut(**{field: facts[field] for field in ChampionCodeOut.model_fields if field not in ("download", "error")},
                           download=download)  # fmt: skip


@router.get("/champions/{name}/code", response_class=StreamingResponse,
            summary="A champion's code: the stored tree of its commit as a tar.gz, checked against its registration",
            responses={200: {"content": {"application/gzip": {}}, "description": "The tree under `NAME-COMMIT/`; headers "
                             "X-Trainarena-Tree-Hash and X-Trainarena-Source-Digest say what the unpacked folder hashes to"},
                       409: {"model": ErrorResponse, "description": "Not served: the stored tree is gone or differs from its "
                             "registration, or its license does not let anyone redistribute it"}})  # fmt: skip
def champion_code_download(
    name: Annotated[str, Path(description="A champion's name: one crowned at some time, of any kind (the reigning one or an earlier one).")],
    _caller: Competitor,
    request: Request,
) -> StreamingResponse:
    """Checked before the first byte (registry.champion_code); the same as `trainarena champions export-code`
    writes, for whoever reads the champions."""
    with app_store(request).session() as session:
        try:
            code = champion_code(app_settings(request), session, name)
        except NotAChampion as error:
            raise ApiError(404, "not_found", str(error), champion=name) from None
        except CodeNotStored as error:
            raise ApiError(409, "code_not_stored", str(error), champion=name) from None
        except CodeDiffers as error:
            raise ApiError(409, "code_differs", str(error), champion=name) from None
        except NotRedistributable as error:
            raise ApiError(409, "not_redistributable", str(error), champion=name) from None
    return StreamingResponse(code.chunks(), media_type="application/gzip", headers=code.headers())


@router.get("/weights", response_model=WeightsOut, summary="The latest weight vector and the history")
def weights(_caller: Competitor, request: Request) -> WeightsOut:
    with app_store(request).session() as session:
        return WeightsOut(**weights_overview(session))


@router.post("/weights/publish", response_model=PublishedOut, summary="Publish weights from the latest finished tournaments (operators)",
             responses={**BODY_RESPONSES, 409: {"model": ErrorResponse, "description": "Nothing to publish as of that time"}})  # fmt: skip
def publish(body: PublishIn, _operator: Operator, request: Request) -> PublishedOut:
    """`trainarena weights publish`: a new vector when the latest finished text or image tournament
    changed, else the current one again (``new`` false)."""
    at = body.at or datetime.now(UTC)
    try:
        with app_store(request).transaction() as session:
            vector, new = publish_recorded(session, app_settings(request), at if at.tzinfo else at.replace(tzinfo=UTC))
            record = vector_record(vector)
    except FutureTimeError as error:
        raise ApiError(422, "invalid_request", str(error), field="at") from None
    except StoreError as error:
        raise ApiError(409, "conflict", str(error)) from None
    return PublishedOut(**record, new=new)


@router.get("/task-leaderboards/{task}", response_model=TaskBoardOut, summary="Every entrant's best score on one task")
def task_leaderboard(
    task: Annotated[str, Path(description="A task's name, or a prefix (6+ characters) of its digest.")],
    caller: Competitor,
    request: Request,
) -> TaskBoardOut:
    """Runs in tournaments, ad hoc and references on the task's newest definition, ranked in its direction."""
    with app_store(request).session() as session:
        try:
            return TaskBoardOut(**shown_to(caller, request, task_board(session, task).to_json()))
        except UnknownTaskError:
            raise not_found("task", task) from None
