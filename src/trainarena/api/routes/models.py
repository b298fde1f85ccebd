"""``/v1/models``: the model registry. A customer sees its own models and the public ones (champions');
an operator every model; another customer's model is a 404. Downloads are a tar stream of the model's
folder, built as it is sent. Publishing to the Hugging Face Hub is an operator's call. A customer
deletes its own models' files (an operator anyone's), but for those never deleted (``registry.deletion``);
a deleted model's record stays, and its download answers 410."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from trainarena.api.auth import Caller, Customer, Operator, Principal, visible_owner
from trainarena.api.context import app_settings, app_store
from trainarena.api.errors import ERROR_RESPONSES, ROLE_RESPONSES, ApiError, ErrorResponse, not_found
from trainarena.api.paging import CursorWindow
from trainarena.api.shown import shown_to
from trainarena.registry import (
    ModelDeleted,
    ModelFilesMissing,
    ModelKept,
    PublishingError,
    PublishingOff,
    delete_model,
    download_headers,
    model_archive,
    model_files,
    model_record,
    publish_model,
    visible_model,
    visible_models,
)
from trainarena.store.models import RegisteredModel
from trainarena.store.owned_lists import UnknownCursor

router = APIRouter(prefix="/v1/models", tags=["models"])


class ModelFileOut(BaseModel):
    path: str = Field(description="Path inside the model folder.")
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="sha256 hex of the file.")
    artifact_path: str | None = Field(None, description="The file of the run's artifact it is a byte-for-byte copy of (the weights): its sha256 is the one "
                                      "the signed run record names for `artifact/<artifact_path>`; null for a file the registry wrote or took from the base model.")  # fmt: skip


class BaseComparisonOut(BaseModel):
    """A job's score, and its model's, against the untrained base model's on the same validation rows."""

    base_score: float | None = Field(description="The untrained base model's score on the same validation rows by the same "
                                     "evaluator; null when there is none (base_comparison says why).")
    improvement: float | None = Field(description="How far score is better than base_score in the metric's direction (lower "
                                      "loss or higher reward alike); negative: worse than the base model. Null without both.")
    base_comparison: str | None = Field(description="The sentence the model card says: better or worse than the untrained "
                                        "base model by how much, or why it was not compared (no validation rows, an image job, the "
                                        "base evaluation failed); null while a job with validation rows has no model, and for "
                                        "a champion's model.")


# What a customer reads as ``deleted_by`` of its model an operator's key deleted: not that key's name.
OPERATOR_DELETED = "an operator"


class ModelOut(BaseComparisonOut):
    id: str = Field(description="The model's id, model-<hex>.")
    object: str = Field("model", description="Always model.")
    created_at: datetime = Field(description="When it was registered.")
    source: str = Field(description="job (a customer's job trained it) or champion (a champion's tournament run; public).")
    job_id: str | None = Field(description="The job that trained it, for a job's model.")
    run_id: int | None = Field(description="The run that trained it.")
    task_type: str = Field(description="instruct, chat, dpo, grpo or image.")
    base_model: str = Field(description="The model it was trained from.")
    library: str | None = Field(description="What loads it: peft, transformers or diffusers.")
    dataset_digest: str = Field(description="sha256 of the training dataset.")
    script: str | None = Field(description="The training script: a competitor's repo@commit, or 'house script' (the platform's own, "
                               "as jobs name it); null only for a competitor's model registered before cards recorded it.")
    license: str | None = Field(description="The license named in its card (a Hub license id).")
    score: float | None = Field(description="Its score, where data was held out to measure one.")
    same_as_base: str | None = Field(description="Set when its training script found no improvement over the base model and saved "
                                     "the base model's weights unchanged: the sentence saying so, with the script's reason "
                                     "(the card says the same); else null.")
    same_as_base_refuted: str | None = Field(description="Set when its training script said it saved the base model's weights "
                                             "unchanged but they differ from the base model's (the claim is then not "
                                             "repeated in same_as_base; the card says the same); else null.")
    measurement: dict[str, Any] | None = Field(description="How the score was measured: metric, direction, hidden_rows, validation_share.")
    digest: str = Field(description="The folder's digest, computed as the signed run record's artifact digest is (sha256 over the sorted "
                        "relative paths, sizes and contents: `trainarena models verify` recomputes it), but over the model folder.")
    artifact_digest: str | None = Field(description="The artifact digest of the run that trained it (the output folder its weights were copied from), "
                                        "as its signed run record names it (`artifact_sha256`); for a model registered before the registry kept it, "
                                        "read from its run in the store; null only when that run has none.")
    published_url: str | None = Field(description="Its Hugging Face Hub repository, once published.")
    bytes: int = Field(description="The bytes of its files as registered: what a job's model counts against its key's "
                       "api.model_quota_bytes until it is deleted.")
    deleted_at: datetime | None = Field(description="When its files were deleted (DELETE /v1/models/{id}); its record stays, "
                                        "and its download answers 410. Null while it is stored.")
    deleted_by: str | None = Field(description="The name of the key that deleted it (to a customer, 'an operator' for an "
                                   "operator's key); null while it is stored, and for a model an operator deleted on the "
                                   "server (`trainarena models delete`).")


class ModelDetail(ModelOut):
    files: list[ModelFileOut] = Field(description="Every file of the folder with its size and sha256.")


class ModelList(BaseModel):
    object: str = Field("list", description="Always list.")
    data: list[ModelOut]
    has_more: bool = Field(False, description="Models follow this page; pass the last id as `after` (or raise `offset`).")


def _visible(session: Session, model_id: str, principal: Principal) -> RegisteredModel:
    row = visible_model(session, model_id, visible_owner(principal))
    if row is None:
        raise not_found("model", model_id)
    return row


@router.get("", response_model=ModelList, responses=ERROR_RESPONSES, summary="The models this key may see")
def list_models(request: Request, principal: Caller, window: CursorWindow) -> ModelList:
    with app_store(request).session() as session:
        try:
            page = visible_models(session, visible_owner(principal), after=window.after, limit=window.limit, offset=window.offset)
        except UnknownCursor as error:
            raise ApiError(422, "invalid_request", str(error), field="after") from None
        records = [model_record(session, row) for row in page.data]
    return ModelList(data=[ModelOut(**_shown(principal, request, row)) for row in records], has_more=page.has_more)


@router.get("/{model_id}", response_model=ModelDetail, responses=ERROR_RESPONSES, summary="A model and its files")
def get_model(request: Request, model_id: str, principal: Caller) -> ModelDetail:
    with app_store(request).session() as session:
        row = _visible(session, model_id, principal)
        record, files = model_record(session, row), [ModelFileOut(**vars(f)) for f in model_files(row)]
    return ModelDetail(**_shown(principal, request, record), files=files)


def _shown(principal: Principal, request: Request, record: dict[str, Any]) -> dict[str, Any]:
    """A model's record as the key reads it (``shown_to``); a job's model keeps its base model whole, one of
    jobs.base_models, which the customer named itself (as its job reads it: ``JobOut.of``)."""
    shown = shown_to(principal, request, record)
    if not principal.is_operator and record["deleted_by"] is not None and record["deleted_by_key_id"] != principal.key_id:
        shown["deleted_by"] = OPERATOR_DELETED  # a customer reads its own key's name, not an operator key's
    return shown if record["job_id"] is None else {**shown, "base_model": record["base_model"]}


TAR_RESPONSE = {"content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}},
                "description": "A tar archive of the model folder, under a folder named after the model"}


@router.get("/{model_id}/download", response_class=StreamingResponse, summary="Download a model as a tar stream",
            responses={**ERROR_RESPONSES, 200: TAR_RESPONSE,
                       409: {"model": ErrorResponse, "description": "The model's folder is missing or differs from its registration"},
                       410: {"model": ErrorResponse, "description": "model_deleted: the model was deleted, with its files"}})  # fmt: skip
def download_model(request: Request, model_id: str, principal: Caller) -> StreamingResponse:
    with app_store(request).session() as session:
        row = _visible(session, model_id, principal)
        headers = download_headers(session, row)
        session.expunge(row)
    return tar_download(row, headers)


def tar_download(row: RegisteredModel, headers: dict[str, str]) -> StreamingResponse:
    """The model's folder as a tar stream built while it is sent, with ``headers`` (``download_headers``);
    409 ``model_files_missing`` when the folder is not the registered one, checked before the stream
    begins (its 200 is sent with the first bytes); 410 ``model_deleted`` for a deleted model."""
    try:
        return StreamingResponse(model_archive(row), media_type="application/x-tar", headers=headers)
    except ModelDeleted as error:
        raise ApiError(410, "model_deleted", str(error), model=row.id) from None
    except ModelFilesMissing as error:
        raise ApiError(409, "model_files_missing", str(error), model=row.id) from None


@router.post("/{model_id}/publish", response_model=ModelOut, summary="Publish a model to the Hugging Face Hub (operators)",
             responses={**ROLE_RESPONSES,
                        409: {"model": ErrorResponse, "description": "Publishing is off, or the model's folder is gone"}})  # fmt: skip
def publish(request: Request, model_id: str, principal: Operator) -> ModelOut:
    store = app_store(request)
    with store.session() as session:
        if visible_model(session, model_id, None) is None:
            raise not_found("model", model_id)
    try:
        publish_model(app_settings(request).registry, store, model_id)
    except PublishingError as error:
        code = "publishing_off" if isinstance(error, PublishingOff) else "conflict"
        raise ApiError(409, code, str(error), model=model_id) from None
    with store.session() as session:
        return ModelOut(**model_record(session, session.get_one(RegisteredModel, model_id)))


@router.delete("/{model_id}", response_model=ModelOut, summary="Delete a model's files (its owner, or an operator)",
               responses={**ROLE_RESPONSES,
                          409: {"model": ErrorResponse, "description": "not_deletable: a champion's model, or one published to the Hub"}})  # fmt: skip
def delete(request: Request, model_id: str, principal: Customer) -> ModelOut:
    """Remove the model's files and mark it deleted; its record stays. Deleting it again answers the same."""
    store = app_store(request)
    try:
        if not delete_model(store, model_id, visible_owner(principal), principal.key_id):
            raise not_found("model", model_id)
    except ModelKept as error:
        raise ApiError(409, "not_deletable", str(error), model=model_id) from None
    with store.session() as session:
        return ModelOut(**_shown(principal, request, model_record(session, session.get_one(RegisteredModel, model_id))))
