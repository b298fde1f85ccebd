"""The competitor, run and task pages, a run's whole log on demand (plain text), and a champion's code
as a tar.gz (as ``GET /v1/champions/{name}/code`` serves it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse

from trainarena.registry import CodeRefused, NotAChampion, champion_code, champion_sources
from trainarena.reporting.competitor_history import score_history
from trainarena.reporting.log_access import LogsRule, logs_rule, logs_withheld
from trainarena.reporting.run_detail import RECORDED_TAIL, UnknownRunError, read_run_detail, visible_run
from trainarena.reporting.run_files import log_names, read_log
from trainarena.reporting.run_list import list_runs
from trainarena.reporting.task_board import UnknownTaskError, played_task, played_task_names
from trainarena.store import champion_history, competitor_tournaments, get_competitor, get_stored_task, get_tournament_by_name
from trainarena.web.charts import score_distribution_svg, score_history_svg
from trainarena.web.pages import tournament_board
from trainarena.web.templating import PageId, as_readable, not_found_page, render, settings_of, store_of
from trainarena.web.visitors import operator_signed_in

router = APIRouter(include_in_schema=False)


@router.get("/competitors/{name}", response_class=HTMLResponse)
def competitor_page(request: Request, name: str) -> HTMLResponse:
    with store_of(request).session() as session:
        competitor = get_competitor(session, name)
        if competitor is None:
            return not_found_page(request, f"No competitor is named {name!r}.")
        names = competitor_tournaments(session, competitor)
        tournaments = [t for t in (get_tournament_by_name(session, n) for n in names) if t is not None]
        # Where it stands in each (rank, stage reached, weight), as the tournament page's standings say it.
        boards = (tournament_board(session, settings_of(request), t.id)[2] for t in tournaments)
        standings = [next((s for s in board.standings if s.competitor == name), None) for board in boards]
        history = score_history(session, competitor)
        source = champion_sources(settings_of(request), session, [name], fetch=False)[name]
        crowned = any(row.competitor_id == competitor.id for row in champion_history(session))
        context = {"competitor": competitor, "tournaments": list(zip(tournaments, standings, strict=True)), "runs": list_runs(session, competitor=name),
                   "chart": score_history_svg(name, history), "history": history, "source": source, "crowned": crowned}  # fmt: skip
        return render(request, "competitor.html", context)


@router.get("/competitors/{name}/code", response_model=None)
def champion_code_download(request: Request, name: str) -> Response:
    """A champion's code, to every visitor: the dashboard shows the champions and their code's repo@commit
    to all (the API to the keys that read the champions)."""
    with store_of(request).session() as session:
        try:
            code = champion_code(settings_of(request), session, name)
        except NotAChampion as error:
            return not_found_page(request, str(error))
        except CodeRefused as error:  # said on a page, not as JSON
            return render(request, "not_found.html", {"message": str(error)}, status_code=409)
    return StreamingResponse(code.chunks(), media_type="application/gzip", headers=code.headers())


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: PageId) -> HTMLResponse:
    rules = settings_of(request).dashboard
    with store_of(request).session() as session:
        try:
            detail = read_run_detail(session, run_id, tail_lines=rules.log_tail_lines, logs=_logs_rule(request))
        except UnknownRunError:
            return not_found_page(request, f"There is no run {run_id}.")
    files, file_count = request.app.state.artifact_listings.listing(
        detail.artifact_digest, detail.artifact_path, limit=rules.artifact_files_shown, hash_max_bytes=rules.artifact_hash_max_bytes)
    # Where the stderr tail was read from: a path on the server for an operator only; others learn
    # just whether it was recorded with the failure reason (its log gone or empty).
    tail_from = detail.stderr_tail_from
    if tail_from is not None and tail_from != RECORDED_TAIL:
        tail_from = f"from {tail_from}" if operator_signed_in(request) else None
    context = {"run": detail, "logs": log_names(detail.log_path), "files": files, "file_count": file_count, "tail_from": tail_from}
    return render(request, "run.html", context)


@router.get("/runs/{run_id}/logs/{name}", response_model=None)
def run_log(request: Request, run_id: PageId, name: str) -> Response:
    """One of the run's log files, whole (or its end, past the size limit), as plain text; none of a
    tournament run whose logs settings api.tournament_run_logs withholds from the visitor."""
    with store_of(request).session() as session:
        try:
            run = visible_run(session, run_id)
        except UnknownRunError:
            run = None
        withheld = None if run is None else logs_withheld(session, run, _logs_rule(request))
        log_path = None if run is None else run.log_path
    if withheld is not None:
        return PlainTextResponse(f"Run {run_id}'s logs are not shown: {withheld}.\n", status_code=403)
    text = read_log(log_path, name, settings_of(request).dashboard.log_max_bytes)
    if text is None:
        return not_found_page(request, f"Run {run_id} has no log named {name!r}.")
    body, cut = text
    notice = f"[only the last {len(body.encode())} bytes of {name} are shown]\n" if cut else ""
    return PlainTextResponse(notice + as_readable(request, body))  # nosniff, as every response: api.security_headers


def _logs_rule(request: Request) -> LogsRule:
    """The rule the visitor reads tournament runs' logs under: a signed-in operator reads them all."""
    return logs_rule(settings_of(request).api.tournament_run_logs, operator=operator_signed_in(request))


@router.get("/tasks", response_class=HTMLResponse)
@router.get("/tasks/", response_class=HTMLResponse)  # before the task page's route, which an empty name matches too
def tasks_page(request: Request) -> HTMLResponse:
    """Every task runs were made on, each linking its page (/tasks redirected to a 404: no task is named '')."""
    with store_of(request).session() as session:
        return render(request, "tasks.html", {"names": played_task_names(session)})


@router.get("/tasks/{name:path}", response_class=HTMLResponse)
def task_page(request: Request, name: str) -> HTMLResponse:
    with store_of(request).session() as session:
        try:
            played = played_task(session, name)
        except UnknownTaskError:
            return not_found_page(request, f"No run was ever made on a task named {name!r}.")
        board = played.board
        context = {"board": board, "definition": played.definition,
                   "stored": get_stored_task(session, board.task), "chart": score_distribution_svg(board)}  # fmt: skip
        return render(request, "task.html", context)
