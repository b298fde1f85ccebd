"""The API's routers, one module per resource, all under ``/v1``."""

from trainarena.api.routes import competitors, files, jobs, me, models, records, runs, standings, tasks, tournaments

ROUTERS = (me.router, competitors.router, runs.router, tournaments.router, standings.router, tasks.router,
           files.router, jobs.router, models.router, records.router)  # fmt: skip

__all__ = ["ROUTERS"]
