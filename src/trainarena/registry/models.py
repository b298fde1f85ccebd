"""Putting a trained model into the registry: its folder under ``settings.registry_dir`` and its row."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from sqlalchemy.orm import Session

from trainarena.settings import Settings
from trainarena.store.models import RegisteredModel
from trainarena.tasks.digests import path_digest


class ModelSource:
    JOB = "job"  # a customer's job trained it; the customer's own
    CHAMPION = "champion"  # a crowned champion's tournament run; public


def new_model_id() -> str:
    return "model-" + secrets.token_hex(8)


def register_model(
    settings: Settings,
    session: Session,
    *,
    artifact_dir: Path,
    source: str,
    task_type: str,
    base_model: str,
    dataset_digest: str,
    score: float | None,
    owner_key_id: int | None,
    job_id: str | None = None,
    run_id: int | None = None,
    competitor_id: int | None = None,
) -> RegisteredModel:
    """Copy ``artifact_dir`` into the registry and record it (the caller's transaction commits)."""
    model_id = new_model_id()
    folder = settings.registry_dir / model_id
    staging = settings.registry_dir / f".staging-{model_id}"
    staging.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(artifact_dir, staging)
    staging.rename(folder)
    row = RegisteredModel(
        id=model_id, owner_key_id=owner_key_id, source=source, job_id=job_id, run_id=run_id,
        competitor_id=competitor_id, task_type=task_type, base_model=base_model, dataset_digest=dataset_digest,
        score=score, path=str(folder), digest=path_digest(folder),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row
