"""Who is signed in to the dashboard: the key in the key cookie (a customer's or an operator's; a
competitor's key does not sign in). The account pages show its jobs and models; every page shows the
server's paths, the folders runs were made from and the drivers' hosts to an operator's key alone
(``templating.render``)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from trainarena.store.api_keys import find_key
from trainarena.store.models import ApiRole

KEY_COOKIE = "trainarena_key"


@dataclass(frozen=True)
class Visitor:
    """The signed-in key: its name, and whose jobs and models it sees (``owner`` None: everyone's, an operator)."""

    name: str
    owner: int | None

    @property
    def is_operator(self) -> bool:
        return self.owner is None


def signed_in(request: Request) -> Visitor | None:
    """The cookie's live key, or None; read once per request (a page asks for its own reasons, and
    ``templating.render`` again to know whether to hide the server's paths)."""
    if not hasattr(request.state, "visitor"):
        request.state.visitor = _read_visitor(request)
    return request.state.visitor


def _read_visitor(request: Request) -> Visitor | None:
    """The cookie's key looked up. (The store is the app's: ``templating.store_of``, which imports this.)"""
    secret = request.cookies.get(KEY_COOKIE)
    if not secret:
        return None
    with request.app.state.store.session() as session:
        key = find_key(session, secret)
        if key is None or key.role == ApiRole.COMPETITOR:
            return None
        return Visitor(key.name, None if key.role == ApiRole.OPERATOR else key.id)


def operator_signed_in(request: Request) -> bool:
    """Whether an operator's key is signed in: the platform's paths on the server are shown to it alone."""
    visitor = signed_in(request)
    return visitor is not None and visitor.is_operator
