"""Mounting the dashboard into an app: its routers (pages left out of the OpenAPI schema, which
documents the versioned API only) and its static assets."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from trainarena.web import account, detail_pages, pages

STATIC_DIR = Path(__file__).parent / "static"


def install_dashboard(app: FastAPI) -> None:
    for router in (pages.router, detail_pages.router, account.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
