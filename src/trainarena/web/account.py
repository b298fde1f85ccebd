"""Customers' pages: sign in with an API key (kept in an HttpOnly, same-site cookie), then the key's
training jobs with their events and its registered models, read from the store's tables. An operator's
key sees everyone's; a customer's only its own (another's job is "not found", as in the API).

Against cross-site request forgery of the sign-in and sign-out forms (login CSRF: another site's page
posting a form that signs the visitor in as the attacker's key, so what they do next lands in the
attacker's account): each form carries a random token that must equal the one in a cookie of its own
(double submit; the cookie is HttpOnly and SameSite=strict, so a cross-site post carries none), and a
post whose ``Origin`` names another host is refused. Not covered: a site that can set cookies for this
host (a sibling subdomain under the same registrable domain could plant a token cookie of its own)."""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from trainarena.jobs import NotFound, get_job, job_compared_with_base, job_same_as_base, job_script, list_jobs, waiting_reason
from trainarena.registry import ModelDeleted, ModelFilesMissing, download_headers, model_archive, visible_model, visible_models
from trainarena.store.api_keys import find_key
from trainarena.store.models import ApiRole, Job, JobStatus
from trainarena.web.templating import not_found_page, render, render_live, settings_of, store_of
from trainarena.web.visitors import KEY_COOKIE, Visitor, signed_in

router = APIRouter(include_in_schema=False)

# The double-submit token of the sign-in and sign-out forms: in this cookie and in their field ``form_token``.
FORM_COOKIE = "trainarena_form"
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
FORGED_SIGNIN = "This sign-in form expired or came from another site: sign in again from this page."
NO_KEY = "Enter an API key to sign in."
FORGED_SIGNOUT = "This sign-out form expired or came from another site: you are still signed in; sign out from your account page."
# A competitor's key may not list jobs in the API (403): signed in here, it was told to create one with POST /v1/jobs.
COMPETITOR_KEY = ("A competitor's key has no jobs or models: sign in with a customer's or an operator's key. "
                  "A competitor's runs and standings are public on its page, /competitors/NAME.")


def recent_jobs(request: Request, count: int) -> tuple[Visitor, list[Job]] | None:
    """(the signed-in key, the ``count`` newest jobs it sees: an operator's, every customer's) for the home
    page; None when nobody is signed in. The rows are read in a session that closes here: only their own
    columns are used."""
    visitor = signed_in(request)
    if visitor is None:
        return None
    with store_of(request).session() as session:
        return visitor, list_jobs(session, visitor.owner, limit=count).data


def _secure(request: Request) -> bool:
    """Whether the dashboard's cookies are marked Secure (``dashboard.secure_cookie``; None: over https)."""
    secure = settings_of(request).dashboard.secure_cookie
    return request.url.scheme == "https" if secure is None else secure


def _with_form(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """A page with a posting form: its token in the form and in the form cookie (the cookie's own token
    when it holds one, so pages open in two tabs both still post)."""
    token = request.cookies.get(FORM_COOKIE, "")
    if not TOKEN_SHAPE.fullmatch(token):
        token = secrets.token_urlsafe(32)
    response = render(request, name, {**context, "form_token": token}, status_code=status_code)
    response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request))
    return response


def _forged(request: Request, token: str) -> bool:
    """Whether a form post did not come from this site's own form: its token is not the form cookie's
    (compared in constant time), or its ``Origin`` names another host. ``Origin: null`` names none (a
    browser sends it for this site's own form under ``Referrer-Policy: no-referrer``): the token decides."""
    origin = request.headers.get("origin")
    if origin not in (None, "null") and urlsplit(origin).hostname != request.url.hostname:
        return True
    cookie = request.cookies.get(FORM_COOKIE, "")
    return not (cookie and secrets.compare_digest(token.encode(), cookie.encode()))


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request) -> HTMLResponse:
    return _with_form(request, "signin.html", {"error": None})


@router.post("/signin", response_model=None)
def signin(request: Request, key: Annotated[str, Form()] = "", form_token: Annotated[str, Form()] = "") -> Response:
    # Both fields default to empty: a post without them (no form, a JSON body) gets the form's own
    # answer; a required field failed validation, which the dashboard answers "no page at /signin".
    if _forged(request, form_token):
        return _with_form(request, "signin.html", {"error": FORGED_SIGNIN}, status_code=403)
    if not key.strip():
        return _with_form(request, "signin.html", {"error": NO_KEY}, status_code=400)
    with store_of(request).session() as session:
        found = find_key(session, key.strip())
        role = None if found is None else found.role
    if role is None:
        return _with_form(request, "signin.html", {"error": "This API key is unknown or revoked."}, status_code=401)
    if role == ApiRole.COMPETITOR:
        return _with_form(request, "signin.html", {"error": COMPETITOR_KEY}, status_code=403)
    response = RedirectResponse("/account", status_code=303)
    response.set_cookie(KEY_COOKIE, key.strip(), httponly=True, samesite="strict", secure=_secure(request))
    return response


@router.get("/signout", response_model=None)
def signout_page() -> Response:
    """A browser that opens /signout (a typed or bookmarked address) lands on the account page, whose
    form signs out: signing out stays a post with the form's token, so no link from another site does it
    (without a key, the account page sends it on to sign in)."""
    return RedirectResponse("/account", status_code=303)


@router.post("/signout", response_model=None)
def signout(request: Request, form_token: Annotated[str, Form()] = "") -> Response:
    if _forged(request, form_token):
        return _with_form(request, "signin.html", {"error": FORGED_SIGNOUT}, status_code=403)
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
                   "models": visible_models(session, visitor.owner).data}  # fmt: skip
        return _with_form(request, "account.html", context)


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
        headers = download_headers(session, row)
        session.expunge(row)
    try:
        chunks = model_archive(row)
    except ModelFilesMissing as error:  # its folder is not the registered one, or it was deleted: said on a page, not as JSON
        return render(request, "not_found.html", {"message": str(error)}, status_code=410 if isinstance(error, ModelDeleted) else 409)
    return StreamingResponse(chunks, media_type="application/x-tar", headers=headers)


def _job_page(request: Request, job_id: str, template: str) -> Response:
    visitor = signed_in(request)
    if visitor is None:
        return RedirectResponse("/signin", status_code=303)
    with store_of(request).session() as session:
        try:
            job = get_job(session, job_id, visitor.owner)
        except NotFound:
            return not_found_page(request, f"There is no job {job_id}.")
        shown = {"job": job, "script": job_script(job), "waiting": waiting_reason(job, settings_of(request).jobs.stale_seconds), "same_as_base": job_same_as_base(job),
                 "compared": job_compared_with_base(job)}
        return render_live(request, template, shown, running=job.status not in JobStatus.FINISHED)


@router.get("/account/jobs/{job_id}", response_model=None)
def job_page(request: Request, job_id: str) -> Response:
    return _job_page(request, job_id, "job.html")


@router.get("/account/jobs/{job_id}/live", response_model=None)
def job_fragment(request: Request, job_id: str) -> Response:
    """The job's status and events, polled by live.js until the job has ended."""
    return _job_page(request, job_id, "_job_live.html")
