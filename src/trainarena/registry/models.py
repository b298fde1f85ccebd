"""Putting a trained model into the registry (its folder under ``settings.registry_dir`` and its row),
and reading the registry back: who may see which model, and the files of a model's folder."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from trainarena.contract import same_as_base_reason
from trainarena.registry.card import (
    SAME_AS_BASE_REFUTED,
    BaseComparison,
    CardFacts,
    Measurement,
    ScriptSource,
    compared_with_base,
    same_as_base_note,
)
from trainarena.registry.layout import artifact_library, build_model_folder
from trainarena.registry.licenses import detect_license
from trainarena.settings import Settings
from trainarena.store.models import Competitor, Job, RegisteredModel, Run
from trainarena.store.owned_lists import Page, owned_page
from trainarena.submissions import checkout_path
from trainarena.tasks.base_weights import weights_equal_base
from trainarena.tasks.builtin_assets import MODEL, TEXT, BuiltinAssetError, builtin_path, find_builtin, is_builtin
from trainarena.tasks.digests import folder_and_file_digests
from trainarena.wording import HOUSE_SCRIPT


class ModelSource:
    JOB = "job"  # a customer's job trained it; the customer's own
    CHAMPION = "champion"  # a crowned champion's tournament run; public


# A model folder is built under this prefix and renamed to its id once whole.
STAGING_PREFIX = ".staging-"


def new_model_id() -> str:
    return "model-" + secrets.token_hex(8)


def base_model_folder(settings: Settings, base_model: str) -> Path | None:
    """A local folder holding the base model (to copy its tokenizer from): a local path, a built-in
    ``trainarena:`` asset, or a Hub id already in the local Hugging Face cache (never downloaded here)."""
    local = Path(base_model).expanduser()
    if local.is_dir():
        return local
    if is_builtin(base_model):
        try:
            return builtin_path(find_builtin(base_model, role=MODEL, kind=TEXT), settings.assets_dir)
        except BuiltinAssetError:
            return None
    from huggingface_hub import snapshot_download  # only for Hub ids

    try:
        return Path(snapshot_download(base_model, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (or not a Hub id): the card names the base model instead
        return None


def script_source(session: Session, competitor_id: int | None) -> ScriptSource | None:
    competitor = None if competitor_id is None else session.get(Competitor, competitor_id)
    return None if competitor is None else ScriptSource(competitor.name, competitor.repo_url, competitor.commit)


def run_measurement(session: Session, run_id: int | None, job_id: str | None) -> Measurement | None:
    """How a run's score was measured: the task's scoring metric, the evaluation's direction, the rows of
    the hidden split, and a job's validation share."""
    run = None if run_id is None else session.get(Run, run_id)
    if run is None or run.evaluation is None:
        return None
    prepared = run.task.prepared or {}
    scoring = prepared.get("dataset_spec", {}).get("scoring", {})
    job = None if job_id is None else session.get(Job, job_id)
    return Measurement(
        metric=str(scoring.get("metric") or scoring.get("method") or "score"), direction=run.evaluation.direction,
        hidden_rows=prepared.get("hidden_rows"), validation_share=None if job is None else job.validation_share,
    )  # fmt: skip


@dataclass(frozen=True)
class SameAsBaseVerdict:
    """A script's claim that it saved the base model's weights unchanged (``contract.OUTCOME_FILE``) and
    what its weights say of it (``tasks.base_weights``). Worked out by :func:`same_as_base_verdict`
    before the registration's transaction opens: the check reads a full model's every tensor, and the
    transaction holds the store's write lock until it commits."""

    claim: str | None  # the script's reason; None: it claimed nothing
    equal: bool | None  # whether the weights are the base model's; None: no claim, or the check cannot tell

    @property
    def shown(self) -> str | None:
        """The claim, once the weights bore it out; a claim the check cannot tell about is left out."""
        return self.claim if self.equal else None

    @property
    def refuted(self) -> bool:
        return self.equal is False


def same_as_base_verdict(settings: Settings, artifact_dir: Path, task_type: str, base_model: str,
                         base_model_dir: Path | None = None) -> SameAsBaseVerdict:  # fmt: skip
    """The artifact's claim, checked against its weights when it makes one (``base_model_dir``, else
    :func:`base_model_folder`, is the full model's base): the script is a competitor's code."""
    claim = same_as_base_reason(artifact_dir)
    if claim is None:
        return SameAsBaseVerdict(None, None)
    return SameAsBaseVerdict(claim, weights_equal_base(artifact_dir, task_type, _base_finder(settings, base_model, base_model_dir)))


def _base_finder(settings: Settings, base_model: str, base_model_dir: Path | None) -> Callable[[], Path | None]:
    """What finds the base model's folder when asked: it is looked up only where needed."""
    return lambda: base_model_dir or base_model_folder(settings, base_model)


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
    same_as_base: SameAsBaseVerdict,
    job_id: str | None = None,
    run_id: int | None = None,
    competitor_id: int | None = None,
    measurement: Measurement | None = None,
    base_model_dir: Path | None = None,
) -> RegisteredModel:
    """Build the model's Hugging Face-layout folder from ``artifact_dir`` and record it (the caller's
    transaction commits). The script (``competitor_id``; None: the house script), how the score was
    measured (``measurement``, else read from the run ``run_id``) and the license (the script
    repository's, else ``settings.registry.default_license``) go into the model card. The folder is
    built in a staging folder and renamed into place, so a registry folder is always whole; its digest
    is recorded. When the caller's transaction ends without committing the row, the folder is removed.
    A script's claim that it saved the base model's weights unchanged goes into the card only when the
    weights are the base model's (``same_as_base``, from :func:`same_as_base_verdict`, which the caller
    works out before its transaction); when they differ the card says the claim was not borne out, and
    a claim the check cannot tell about is left out."""
    model_id = new_model_id()
    script = script_source(session, competitor_id)
    tree = None if script is None else checkout_path(settings, script.commit)
    license_info = detect_license(tree) if tree is not None and tree.is_dir() else None
    run = None if run_id is None else session.get(Run, run_id)
    names = {p.relative_to(artifact_dir).as_posix() for p in artifact_dir.rglob("*") if p.is_file()}

    facts = CardFacts(
        model_id=model_id, source=source, task_type=task_type, library=artifact_library(names, task_type),
        base_model=base_model, dataset_digest=dataset_digest,
        license=license_info.license if license_info and license_info.license else settings.registry.default_license,
        license_found=bool(license_info and license_info.found),
        trained_at=(run.finished_at if run is not None and run.finished_at else datetime.now(UTC)), score=score,
        measurement=measurement or run_measurement(session, run_id, job_id), script=script, run_id=run_id, job_id=job_id,
        same_as_base=same_as_base.shown, same_as_base_refuted=same_as_base.refuted,
    )  # fmt: skip
    folder = settings.registry_dir / model_id
    staging = settings.registry_dir / f"{STAGING_PREFIX}{model_id}"
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        copied = build_model_folder(artifact_dir, staging, facts, _base_finder(settings, base_model, base_model_dir))
        # Hashed before it is placed: the folder waits for its row's commit as briefly as can be.
        digest, hashed = folder_and_file_digests(staging)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    os.utime(folder)  # its age, for the sweep of folders without a row, counts from now
    _remove_unless_committed(session, folder)
    row = RegisteredModel(
        id=model_id, owner_key_id=owner_key_id, source=source, job_id=job_id, run_id=run_id,
        competitor_id=competitor_id, task_type=task_type, base_model=base_model, dataset_digest=dataset_digest,
        score=score, path=str(folder), digest=digest, size_bytes=sum(f.size for f in hashed),
        # Each file's size and sha256, hashed once here: reading a model must not hash gigabytes each time.
        # The run's artifact digest, as its signed run record names it: what the weights were copied from.
        card={**facts.to_json(), "artifact_digest": None if run is None else run.artifact_digest,
              "files": [asdict(ModelFile(f.name, f.size, f.sha256, copied.get(f.name))) for f in hashed]},  # fmt: skip
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


# --- A folder only with its row ---------------------------------------------------------------------
# register_model places the folder before the caller's transaction commits its row: when that
# transaction ends without a commit (rolled back, or the session closed), the folder is removed then.
# A process killed in between leaves a folder without a row: sweep_registry removes it later (and the
# folder a killed deletion left of a model marked deleted).

_PENDING = "trainarena.registry.uncommitted_folders"


def _remove_unless_committed(session: Session, folder: Path) -> None:
    session.info.setdefault(_PENDING, []).append(folder)
    if not event.contains(session, "after_transaction_end", _drop_uncommitted):
        event.listen(session, "after_commit", _keep_committed)
        event.listen(session, "after_transaction_end", _drop_uncommitted)


def _keep_committed(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint's commit is not the rows' commit
        session.info.pop(_PENDING, None)


def _drop_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended; a commit took its folders off first
        for folder in session.info.pop(_PENDING, []):
            shutil.rmtree(folder, ignore_errors=True)


def sweep_registry(session: Session, settings: Settings) -> list[Path]:
    """Remove what killed registrations left under ``settings.registry_dir``: model folders without a
    row and staging folders, once older than ``registry.orphan_grace`` (a registration under way is
    younger); and what a killed deletion left: the folder of a model marked deleted (``registry.deletion``).
    The folders removed."""
    root = settings.registry_dir
    if not root.is_dir():
        return []
    cutoff = datetime.now(UTC).timestamp() - settings.registry.orphan_grace.total_seconds()
    candidates = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()
                  and (p.name.startswith(("model-", STAGING_PREFIX))) and p.stat().st_mtime < cutoff]  # fmt: skip
    alive = set(session.scalars(select(RegisteredModel.id).where(RegisteredModel.id.in_([p.name for p in candidates]),
                                                                 RegisteredModel.deleted_at.is_(None))))  # fmt: skip
    removed = [p for p in candidates if p.name not in alive]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


# --- Reading -------------------------------------------------------------------------------------


def visible_models(session: Session, owner_key_id: int | None, *, after: str | None = None, limit: int | None = None,
                   offset: int = 0) -> Page:  # fmt: skip
    """The models a caller may see, newest first: ``owner_key_id``'s own and the public ones (champions');
    every model when ``owner_key_id`` is None (an operator). Paged as files and jobs are; an unknown ``after``
    is an UnknownCursor."""
    return owned_page(session, RegisteredModel, owner_key_id, after=after, limit=limit, offset=offset, public=True)


def model_record(session: Session, row: RegisteredModel) -> dict[str, Any]:
    """A model's row and its card's facts as plain data (the CLI prints it, the API answers with it);
    its ``artifact_digest`` as :func:`stored_artifact_digest` reads it."""
    card = row.card or {}
    script = card.get("script")
    # No competitor: the house script trained it (the row says so even without a card); else the card's repo@commit.
    pinned = f"{script['repo_url']}@{script['commit']}" if script else None
    return {
        "id": row.id, "created_at": row.created_at, "source": row.source, "owner_key_id": row.owner_key_id,
        "job_id": row.job_id, "run_id": row.run_id, "task_type": row.task_type, "base_model": row.base_model,
        "library": card.get("library"), "license": card.get("license"), "license_found": card.get("license_found"),
        "script": HOUSE_SCRIPT if row.competitor_id is None else pinned,
        "dataset_digest": row.dataset_digest, "score": row.score, "measurement": card.get("measurement"),
        "path": row.path, "digest": row.digest, "artifact_digest": stored_artifact_digest(session, row),
        **base_comparison_fields(model_compared_with_base(row)),
        "published_url": row.published_url, "same_as_base": model_same_as_base(row),
        "same_as_base_refuted": model_same_as_base_refuted(row), "bytes": row.size_bytes, "deleted_at": row.deleted_at,
        "deleted_by": None if row.deleted_by_key is None else row.deleted_by_key.name, "deleted_by_key_id": row.deleted_by_key_id,
    }  # fmt: skip


def stored_artifact_digest(session: Session, row: RegisteredModel) -> str | None:
    """The artifact digest of the run that trained ``row``: its card's, else (a model registered before
    the card kept it) its run's in the store, read without writing it; None when neither has one."""
    digest = (row.card or {}).get("artifact_digest")
    if digest is None and row.run_id is not None:
        run = session.get(Run, row.run_id)
        digest = None if run is None else run.artifact_digest
    return digest


def model_compared_with_base(row: RegisteredModel) -> BaseComparison | None:
    """The model's score against the untrained base model's on the same rows, as its card measured it."""
    measurement = (row.card or {}).get("measurement")
    return compared_with_base(row.score, None if measurement is None else Measurement(**measurement))


def base_comparison_fields(compared: BaseComparison | None) -> dict[str, Any]:
    """``base_score``, ``improvement`` and ``base_comparison`` (the sentence) as a job's and a model's
    record carry them; all null when nothing was compared."""
    return {"base_score": None if compared is None else compared.base_score,
            "improvement": None if compared is None else compared.improvement,
            "base_comparison": None if compared is None else compared.note}  # fmt: skip


def model_same_as_base(row: RegisteredModel) -> str | None:
    """:func:`same_as_base_note` of a model whose script saved the base model's weights unchanged; else None."""
    why = (row.card or {}).get("same_as_base")
    return None if why is None else same_as_base_note(why)


def model_same_as_base_refuted(row: RegisteredModel) -> str | None:
    """:data:`SAME_AS_BASE_REFUTED` for a model whose script claimed to save the base model's weights
    unchanged when they differ from them (the claim is not repeated); else None."""
    return SAME_AS_BASE_REFUTED if (row.card or {}).get("same_as_base_refuted") else None


def visible_model(session: Session, model_id: str, owner_key_id: int | None) -> RegisteredModel | None:
    """The model ``model_id`` if the caller may see it (see :func:`visible_models`), else None."""
    row = session.get(RegisteredModel, model_id)
    if row is None or owner_key_id is None or row.owner_key_id in (None, owner_key_id):
        return row
    return None


@dataclass(frozen=True)
class ModelFile:
    path: str  # relative to the model folder, POSIX
    size: int
    sha256: str
    # The artifact file it is a byte-for-byte copy of (its signed run record names that file's sha256);
    # None for a file the registry wrote or took from the base model, and for models registered before.
    artifact_path: str | None = None


def model_files(row: RegisteredModel) -> list[ModelFile]:
    """Every file of a registered model's folder, sorted, with its size and sha256 as registered."""
    return [ModelFile(**file) for file in (row.card or {}).get("files", [])]
