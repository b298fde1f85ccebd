"""``/v1/health`` (no key needed: load balancers and `curl` checks) and ``/v1/me`` (who this key is)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from trainarena import __version__
from trainarena.api.auth import Caller
from trainarena.api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["service"])


class Health(BaseModel):
    status: str = Field(description="Always ok when the service answers.")
    version: str = Field(description="The trainarena version serving.")


class Me(BaseModel):
    name: str = Field(description="The key's name, as given to `trainarena keys create`.")
    role: str = Field(description="operator, competitor or customer.")


@router.get("/health", response_model=Health, summary="Is the service up")
def health() -> Health:
    return Health(status="ok", version=__version__)


@router.get("/me", response_model=Me, responses=ERROR_RESPONSES, summary="The calling key's name and role")
def me(principal: Caller) -> Me:
    return Me(name=principal.name, role=principal.role)
