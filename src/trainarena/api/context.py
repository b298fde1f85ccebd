"""What every route reads from the app: the settings and the store it was built with."""

from __future__ import annotations

from fastapi import Request

from trainarena.settings import Settings
from trainarena.store import Store


def app_settings(request: Request) -> Settings:
    return request.app.state.settings


def app_store(request: Request) -> Store:
    return request.app.state.store
