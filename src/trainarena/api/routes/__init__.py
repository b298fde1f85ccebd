"""The API's routers, one module per resource, all under ``/v1``."""

from trainarena.api.routes import files, jobs, me, models

ROUTERS = (me.router, files.router, jobs.router, models.router)

__all__ = ["ROUTERS"]
