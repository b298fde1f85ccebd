"""The API's routers, one module per resource, all under ``/v1``."""

from trainarena.api.routes import competitors, me, runs, standings, tasks, tournaments

ROUTERS = (me.router, competitors.router, runs.router, tournaments.router, standings.router, tasks.router)

__all__ = ["ROUTERS"]
