"""The HTTP API: a FastAPI app over the same functions as the CLI (docs/api.md).

``create_app(settings)`` builds it; ``trainarena api`` and ``trainarena serve`` serve it with uvicorn.
Routes live in ``api/routes/`` (one module per resource), authentication, roles and rate limits in
``auth.py``, the one error shape in ``errors.py``. Nothing below this package knows about HTTP.
"""

from trainarena.api.app import create_app

__all__ = ["create_app"]
