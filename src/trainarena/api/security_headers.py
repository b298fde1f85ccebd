"""Browser hardening headers on every response the service sends: the API's JSON and event streams,
the dashboard's pages, its error pages and its static assets. No page of the service may be framed
(``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: clickjacking a signed-in operator's
page), no response is sniffed into another type, and no URL (they name jobs, files and tournaments)
leaves in a ``Referer`` to another site.

``Referrer-Policy: same-origin`` rather than ``no-referrer``: under ``no-referrer`` a browser sends
``Origin: null`` with the dashboard's own form posts, and the sign-out check (``web.account``) can then
only trust its form token; ``same-origin`` sends the real origin to this site and nothing to others.

The Content-Security-Policy is chosen per response:

- anything but HTML (the API's JSON, event streams, assets): nothing may load (``default-src 'none'``);
- the dashboard's pages: their own script and style sheet only (``script-src 'self'``: no page has
  inline script, and the charts' pygal scripts are stripped, ``web.charts``); ``style-src`` also
  allows ``'unsafe-inline'`` because each chart is inline SVG carrying its own ``<style>`` element
  (rules scoped to a random chart id) and a ``style`` attribute;
- the offline API docs (``/docs``, ``/redoc``): Swagger UI starts from an inline script and both
  inject styles at run time and draw images from ``data:`` URLs, so those two pages alone allow
  inline script; they show only the OpenAPI schema, never a user's data.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOTHING_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; "
               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")  # fmt: skip
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
               "form-action 'self'; frame-ancestors 'none'")  # fmt: skip
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
COMMON_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def content_security_policy(path: str, content_type: str) -> str:
    """The policy of a response to ``path`` of ``content_type``."""
    if not content_type.startswith("text/html"):
        return NOTHING_POLICY
    return DOCS_POLICY if path in DOCS_PATHS else PAGE_POLICY


class SecurityHeaders:
    """ASGI middleware: the headers above on the start of every HTTP response (a route that set one
    keeps its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                policy = content_security_policy(scope["path"], headers.get("content-type", ""))
                for name, value in {**COMMON_HEADERS, "Content-Security-Policy": policy}.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
