"""What a key reads of the server itself: an operator's key everything; any other key (a competitor's,
a customer's) runs, jobs, tournaments and competitors without the server's paths, the folders runs were
made from, or the host and pid of a tournament's driver (``reporting.server_paths``)."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request

from trainarena.api.auth import Principal
from trainarena.api.context import app_settings
from trainarena.reporting.server_paths import ServerPaths, public_json

Shown = TypeVar("Shown", dict[str, Any], str)


def shown_to(caller: Principal, request: Request, data: Shown) -> Shown:
    """``data`` (a JSON view, or a log's text) whole for an operator's key; as :func:`public_json` makes
    it for any other."""
    return data if caller.is_operator else public_json(data, ServerPaths.of(app_settings(request)))
