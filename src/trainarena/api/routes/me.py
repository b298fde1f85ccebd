"""``/v1/health`` (no key needed: load balancers and `curl` checks) and ``/v1/me`` (who this key is,
and for a customer's key what it uses of its quotas)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from trainarena import __version__
from trainarena.api.auth import Caller
from trainarena.api.context import app_settings, app_store
from trainarena.api.errors import ERROR_RESPONSES
from trainarena.jobs.quotas import competitor_usage, key_usage
from trainarena.store.models import ApiRole

router = APIRouter(prefix="/v1", tags=["service"])


class Health(BaseModel):
    status: str = Field(description="Always ok when the service answers.")
    version: str = Field(description="The trainarena version serving.")


class QuotaOut(BaseModel):
    setting: str = Field(description="The setting that sets the limit: api.upload_quota_bytes, api.model_quota_bytes, "
                         "jobs.active_quota (customers) or registration.mirror_quota_bytes (competitors).")
    used: int = Field(description="What the key uses now: bytes of its files not deleted, bytes of its models not deleted, "
                      "its jobs queued or running, or bytes of its registrations' repository mirrors.")
    limit: int | None = Field(description="The most it may use; null: no limit (the setting is 0).")


class Me(BaseModel):
    name: str = Field(description="The key's name, as given to `trainarena keys create`.")
    role: str = Field(description="operator, competitor or customer.")
    quotas: list[QuotaOut] | None = Field(description="For a customer's or a competitor's key, what it uses of each of "
                                          "its quotas; null for operator keys (not limited).")


@router.get("/health", response_model=Health, summary="Is the service up")
def health() -> Health:
    return Health(status="ok", version=__version__)


@router.get("/me", response_model=Me, responses=ERROR_RESPONSES, summary="The calling key's name, role and quota usage")
def me(request: Request, principal: Caller) -> Me:
    if principal.role == ApiRole.COMPETITOR:
        usage = competitor_usage(app_settings(request), principal.key_id)
    elif principal.role != ApiRole.CUSTOMER:
        return Me(name=principal.name, role=principal.role, quotas=None)
    else:
        with app_store(request).session() as session:
            usage = key_usage(session, app_settings(request), principal.key_id)
    return Me(name=principal.name, role=principal.role, quotas=[QuotaOut(**vars(quota)) for quota in usage])
