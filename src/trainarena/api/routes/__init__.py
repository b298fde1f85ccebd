"""The API's routers, one module per resource, all under ``/v1``."""

from trainarena.api.routes import me

ROUTERS = (me.router,)

__all__ = ["ROUTERS"]
