"""API keys: created with a role, shown once, kept as their SHA-256, looked up by hash, revoked."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.contract import name_problem
from trainarena.settings import RegistrationRules
from trainarena.store.competitors import StoreError
from trainarena.store.models import ApiKey, ApiRole, utcnow

__all__ = ["NewKey", "create_key", "find_key", "hash_key", "list_keys", "revoke_key"]

KEY_PREFIX = "ta_"  # tells a trainarena key apart in a config file or a leaked log
PREFIX_SHOWN = 10  # characters of a key kept in clear to tell keys apart in `keys list`


@dataclass(frozen=True)
class NewKey:
    row: ApiKey
    secret: str  # the whole key: shown once, never stored


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, name: str, role: str, *, name_max_length: int | None = None) -> NewKey:
    """A new key named ``name`` (checked as competitor names are: settings registration.name_max_length)."""
    longest = RegistrationRules.model_fields["name_max_length"].default if name_max_length is None else name_max_length
    problem = name_problem("API key", name, longest)
    if problem is not None:
        raise StoreError(problem)
    if role not in ApiRole.ALL:
        raise StoreError(f"role {role!r} is not one of {', '.join(ApiRole.ALL)}")
    existing = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if existing is not None:
        # A name names one key for good, revoked or not: its jobs, files and records keep naming it.
        state = "a revoked key keeps its name" if existing.revoked_at is not None else "it exists already"
        raise StoreError(f"an API key named {name!r} was created before ({state}); pick another name, e.g. {name}-2")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, role=role, key_hash=hash_key(secret), key_prefix=secret[:PREFIX_SHOWN])
    session.add(row)
    session.flush()
    return NewKey(row, secret)


def find_key(session: Session, secret: str) -> ApiKey | None:
    """The live key this secret is, or None (unknown or revoked)."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    return None if row is None or row.revoked_at is not None else row


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, name: str) -> tuple[ApiKey, bool]:
    """Revoke the key named ``name``: (its row, whether this call revoked it). Revoking a revoked key
    is idempotent: it keeps the time it was first revoked at, and the second value says so (False)."""
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise StoreError(f"no API key named {name!r} (trainarena keys list shows them)")
    if row.revoked_at is not None:
        return row, False
    row.revoked_at = utcnow()
    return row, True
