"""The web dashboard: server-rendered pages at ``/`` beside the API, over the same reading functions as
the CLI (``reporting/``, ``store/``, ``operations/``). Every asset (CSS, the small live-update script,
the charts as inline SVG) is served by the service itself: the dashboard works offline.

``install_dashboard(app)`` adds its pages and ``/static`` to the API's app (``api.create_app`` does).
"""

from trainarena.web.app import install_dashboard

__all__ = ["install_dashboard"]
