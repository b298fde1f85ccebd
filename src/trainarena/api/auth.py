"""Who is calling: the bearer API key, its role, and its rate limit.

Every route but ``/v1/health`` depends on :func:`authenticated` (any live key) or :func:`require`
(some roles). A route that serves one customer's resources checks ownership itself and answers 404 for
another's, through :func:`visible_owner`. Rate limits are a token bucket per key, kept in the process
(each API process limits on its own).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from trainarena.api.context import app_settings, app_store
from trainarena.api.errors import ApiError
from trainarena.settings import ApiRules
from trainarena.store.api_keys import find_key
from trainarena.store.models import ApiKey, ApiRole, utcnow

# How stale a key's last_used_at may get: writing it on every request would make every read a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)

bearer = HTTPBearer(auto_error=False, description="An API key from `trainarena keys create`, as `Authorization: Bearer ta_...`.")


@dataclass(frozen=True)
class Principal:
    """The caller: its key's id (owner of its files, jobs and models), name and role."""

    key_id: int
    name: str
    role: str

    @property
    def is_operator(self) -> bool:
        return self.role == ApiRole.OPERATOR


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``per_minute`` a minute."""

    def __init__(self, rules: ApiRules, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rules.rate_limit_per_minute / 60.0
        self._burst = float(rules.rate_limit_burst)
        self._clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, key_id: int) -> float:
        """Spend one request of ``key_id``; 0.0 when allowed, else the seconds until one is."""
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(key_id, (self._burst, now))
            tokens = min(self._burst, tokens + (now - then) * self._rate)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, now)
                return (1.0 - tokens) / self._rate
            self._buckets[key_id] = (tokens - 1.0, now)
            return 0.0


# Where body_guard leaves the principal it authenticated before the body was read; the dependency
# takes it from there, so the request is looked up and counted against the rate limit once.
PRINCIPAL_SCOPE_KEY = "trainarena.principal"


def authenticated(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    known = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if isinstance(known, Principal):
        return known
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiError(401, "unauthenticated", "send an API key as `Authorization: Bearer ta_...` "
                       "(an operator creates one with `trainarena keys create`)", headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    store = app_store(request)
    with store.session() as session:
        key = find_key(session, credentials.credentials)
        if key is None:
            raise ApiError(401, "unauthenticated", "this API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
        principal = Principal(key.id, key.name, key.role)
        stale = key.last_used_at is None or utcnow() - key.last_used_at > LAST_USED_RESOLUTION
    wait = request.app.state.rate_limiter.take(principal.key_id)
    if wait > 0:
        # A token bucket refuses when the key spent its burst faster than the bucket refills: it need not
        # have made `limit` requests in a minute (a burst of 140 at once was told it made over 600).
        rules = app_settings(request).api
        limit, burst, retry = rules.rate_limit_per_minute, rules.rate_limit_burst, math.ceil(wait)
        raise ApiError(429, "rate_limited", f"this key used up its burst of {burst} requests (api.rate_limit_burst), which "
                       f"refills at {limit} a minute (api.rate_limit_per_minute); retry in {retry} s",
                       headers={"Retry-After": str(retry)}, limit_per_minute=limit, burst=burst)  # fmt: skip
    if stale:
        _mark_used(request, principal.key_id)
    return principal


def _mark_used(request: Request, key_id: int) -> None:
    with app_store(request).transaction() as session:
        session.get_one(ApiKey, key_id).last_used_at = utcnow()


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency that lets only ``roles`` through (operators always); others get 403 with the
    roles that may. (403, not 404: the route exists for everyone, only the role is wrong.)"""
    allowed = {ApiRole.OPERATOR, *roles}

    def dependency(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if principal.role not in allowed:
            raise ApiError(403, "forbidden", f"a {principal.role} key may not do this; it takes a key of role "
                           f"{' or '.join(sorted(allowed))}", role=principal.role, allowed=sorted(allowed))  # fmt: skip
        return principal

    return dependency


# Route parameters: any live key; an operator's key; a competitor's or an operator's key; a customer's
# or an operator's key (files and jobs are customers', and operators see everyone's).
Caller = Annotated[Principal, Depends(authenticated)]
Operator = Annotated[Principal, Depends(require())]
Competitor = Annotated[Principal, Depends(require(ApiRole.COMPETITOR))]
Customer = Annotated[Principal, Depends(require(ApiRole.CUSTOMER))]


def visible_owner(principal: Principal) -> int | None:
    """The owner a caller's listings are narrowed to: its own key, or None (everyone's) for operators."""
    return None if principal.is_operator else principal.key_id


def quota_owner(principal: Principal) -> int | None:
    """The key whose quotas a request counts against (``jobs.quotas``): its own, or None for an
    operator's, which quotas do not limit (operators run the platform and hold its disk)."""
    return None if principal.is_operator else principal.key_id
