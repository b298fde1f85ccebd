"""The API's routers, one module per resource, all under ``/v1``."""

from trainarena.api.routes import me, models

ROUTERS = (me.router, models.router)

__all__ = ["ROUTERS"]
