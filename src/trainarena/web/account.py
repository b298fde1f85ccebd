"""Customers' pages: sign in with an API key (kept in an HttpOnly, same-site cookie), then the key's
training jobs with their events and its registered models, read from the store's tables. An operator's
key sees everyone's; a customer's only its own (another's job is "not found", as in the API)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trainarena.api.routes.models import tar_download
from trainarena.jobs import NotFound, get_job, list_jobs
from trainarena.registry import visible_model, visible_models
from trainarena.store.api_keys import find_key
from trainarena.store.models import ApiRole, Job, JobStatus
from trainarena.web.templating import not_found_page, render, render_live, settings_of, store_of

router = APIRouter(include_in_schema=False)

KEY_COOKIE = "trainarena_key"


@dataclass(frozen=True)
class Visitor:
    """The signed-in key: its name, and whose jobs and models it sees (``owner`` None: everyone's, an operator)."""

    name: str
    owner: int | None


def signed_in(request: Request) -> Visitor | None:
    """The cookie's live key, or None."""
    secret = request.cookies.get(KEY_COOKIE)
    if not secret:
        return None
    with store_of(request).session() as session:
        key = find_key(session, secret)
        return None if key is None else Visitor(key.name, None if key.role == ApiRole.OPERATOR else key.id)


def recent_jobs(request: Request, count: int) -> tuple[str, list[Job]] | None:
    """(the signed-in key's name, its ``count`` newest jobs) for the home page; None when nobody is signed in.
    The rows are read in a session that closes here: only their own columns are used."""
    visitor = signed_in(request)
    if visitor is None:
        return None
    with store_of(request).session() as session:
        return visitor.name, list_jobs(session, visitor.owner, limit=count).data


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request) -> HTMLResponse:
    return render(request, "signin.html", {"error": None})


@router.post("/signin", response_model=None)
def signin(request: Request, key: Annotated[str, Form()]) -> Response:
    with store_of(request).session() as session:
        known = find_key(session, key.strip()) is not None
    if not known:
        return render(request, "signin.html", {"error": "This API key is unknown or revoked."}, status_code=401)
    response = RedirectResponse("/account", status_code=303)
    secure = settings_of(request).dashboard.secure_cookie
    response.set_cookie(KEY_COOKIE, key.strip(), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https" if secure is None else secure)
    return response


@router.post("/signout", response_model=None)
def signout() -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(KEY_COOKIE)
    return response


@router.get("/account", response_model=None)
def account(request: Request) -> Response:
    visitor = signed_in(request)
    if visitor is None:
        return RedirectResponse("/signin", status_code=303)
    with store_of(request).session() as session:
        context = {"name": visitor.name, "jobs": list_jobs(session, visitor.owner, limit=None).data,
                   "models": visible_models(session, visitor.owner)}  # fmt: skip
        return render(request, "account.html", context)


@router.get("/account/models/{model_id}/download", response_model=None)
def model_download(request: Request, model_id: str) -> Response:
    """The model as a tar stream, for the signed-in key (a browser link cannot send a bearer key)."""
    visitor = signed_in(request)
    if visitor is None:
        return RedirectResponse("/signin", status_code=303)
    with store_of(request).session() as session:
        row = visible_model(session, model_id, visitor.owner)
        if row is None:
            return not_found_page(request, f"There is no model {model_id}.")
        session.expunge(row)
    return tar_download(row)


def _job_page(request: Request, job_id: str, template: str) -> Response:
    visitor = signed_in(request)
    if visitor is None:
        return RedirectResponse("/signin", status_code=303)
    with store_of(request).session() as session:
        try:
            job = get_job(session, job_id, visitor.owner)
        except NotFound:
            return not_found_page(request, f"There is no job {job_id}.")
        return render_live(request, template, {"job": job}, running=job.status not in JobStatus.FINISHED)


@router.get("/account/jobs/{job_id}", response_model=None)
def job_page(request: Request, job_id: str) -> Response:
    return _job_page(request, job_id, "job.html")


@router.get("/account/jobs/{job_id}/live", response_model=None)
def job_fragment(request: Request, job_id: str) -> Response:
    """The job's status and events, polled by live.js until the job has ended."""
    return _job_page(request, job_id, "_job_live.html")
