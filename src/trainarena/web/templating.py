"""The dashboard's Jinja2 templates (autoescaped) and the filters that format numbers, times and links.

The server's own paths (under the data dir, the platform's install) are an operator's business: a page
rendered for anyone else prints every value with them hidden (``reporting.server_paths``), and the
templates show the folders runs were made from and the drivers' hosts when ``operator`` is true alone."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import fastapi
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from trainarena.contract import STORE_INT_MAX
from trainarena.reporting.server_paths import ServerPaths, shown_entrant, shown_file, shown_source
from trainarena.settings import Settings
from trainarena.store import Store
from trainarena.tasks import score_direction
from trainarena.web.visitors import operator_signed_in
from trainarena.wording import ScoreColumn, counted

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# Hosts whose web pages show a commit at ``<repository>/commit/<sha>``.
# The id in a page's path (/runs/N, /tournaments/N): one past what the store's 32-bit columns hold is no
# page (the dashboard's 404, as /runs/abc), as the API bounds its ids; SQLite refused it with an
# OverflowError, a plain-text 500.
PageId = Annotated[int, fastapi.Path(ge=0, le=STORE_INT_MAX)]
COMMIT_PAGE_HOSTS = ("github.com", "gitlab.com", "codeberg.org")


def score(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def when(moment: datetime | None) -> str:
    return "–" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def web_url(url: str | None) -> str | None:
    """The repository URL when a browser can open it (http or https), else None."""
    return url if url and urlsplit(url).scheme in ("http", "https") else None


def commit_url(url: str | None, commit: str | None) -> str | None:
    """A web page of the commit, on hosts known to have one at ``/commit/<sha>``."""
    base = web_url(url)
    if base is None or not commit or urlsplit(base).hostname not in COMMIT_PAGE_HOSTS:
        return None
    return f"{base.removesuffix('/').removesuffix('.git')}/commit/{commit}"


# The server's paths a page being rendered hides (None: an operator's page, which shows them).
_hidden_paths: ContextVar[ServerPaths | None] = ContextVar("hidden_paths", default=None)


def _printed(value: Any) -> Any:
    """What a template prints for ``value`` (Jinja's finalize): a text with the server's paths hidden on
    a page that hides them. Markup (a macro's output) is left alone: its own values were printed so."""
    paths = _hidden_paths.get()
    if paths is None or not isinstance(value, str) or isinstance(value, Markup):
        return value
    return paths.hide(value)


templates.env.finalize = _printed
templates.env.filters.update(score=score, when=when, seconds=seconds, counted=counted, direction=score_direction)
# A score column's heading and cells say which way is better (wording.ScoreColumn), as the CLI's tables do.
templates.env.globals.update(web_url=web_url, commit_url=commit_url, score_column=ScoreColumn, shown_source=shown_source,
                             shown_entrant=shown_entrant, shown_file=shown_file)  # fmt: skip


def settings_of(request: Request) -> Settings:
    """The settings of the app the dashboard is mounted in (the API keeps them on ``app.state``; the
    dashboard reads them there itself, so it never imports the API that mounts it)."""
    return request.app.state.settings


def store_of(request: Request) -> Store:
    return request.app.state.store


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """``name`` rendered (now, as the response is made) with ``context``, as the signed-in key may read it:
    ``operator`` says whether it is an operator's, and any other's page hides the server's paths."""
    settings = settings_of(request)
    hidden = _paths_hidden_from(request)
    hiding = _hidden_paths.set(hidden)
    operator = hidden is None
    try:
        return templates.TemplateResponse(request, name, {"poll_seconds": settings.dashboard.poll_seconds, "operator": operator, **context},
                                          status_code=status_code)  # fmt: skip
    finally:
        _hidden_paths.reset(hiding)


def render_live(request: Request, name: str, context: dict[str, Any], *, running: bool) -> HTMLResponse:
    """A page or fragment that live.js follows: ``X-Live`` says whether more is to come (keep polling)."""
    response = render(request, name, {**context, "running": running})
    response.headers["X-Live"] = "running" if running else "idle"
    return response


def _paths_hidden_from(request: Request) -> ServerPaths | None:
    """The server's paths that the signed-in key may not read: all of them but for an operator's key."""
    return None if operator_signed_in(request) else ServerPaths.of(settings_of(request))


def as_readable(request: Request, text: str) -> str:
    """``text`` (a whole log, served as plain text) as the signed-in key may read it."""
    hidden = _paths_hidden_from(request)
    return text if hidden is None else hidden.hide(text)


def not_found_page(request: Request, message: str) -> HTMLResponse:
    return render(request, "not_found.html", {"message": message}, status_code=404)
