"""``/v1/files``: customers' datasets, uploaded (streamed to disk under the size limit and the key's
quota, ``jobs.quotas``, checked as ``task check`` would), listed, read and deleted. A customer sees
only its own files (another's is a 404); an operator sees every file."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from trainarena.api.auth import Customer, Principal, quota_owner, visible_owner
from trainarena.api.context import app_settings, app_store
from trainarena.api.errors import ERROR_RESPONSES, ROLE_RESPONSES, ApiError, quota_response
from trainarena.api.job_errors import answering_jobs_errors
from trainarena.api.multipart import read_form
from trainarena.api.paging import CursorWindow
from trainarena.jobs.errors import InvalidInput
from trainarena.jobs.files import delete_file, get_file, list_files, store_upload
from trainarena.jobs.quotas import UPLOAD_SETTING, UploadsUnderWay, check_upload_bytes, quota_transaction, stored_upload_bytes
from trainarena.jobs.uploads import UploadSink, check_file, file_format
from trainarena.store import Store
from trainarena.store.models import UploadedFile

router = APIRouter(prefix="/v1", tags=["files"])
# Room for the multipart framing and the small fields around the file, when judging Content-Length.
MULTIPART_ALLOWANCE = 1 << 16

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "The dataset: .jsonl/.json/.csv/.parquet (text) or .zip of images + captions.jsonl (image)."},
                "kind": {"type": "string", "enum": ["text", "image"], "description": "Optional; inferred from the file's suffix."},
                "task_type": {"type": "string", "description": "Optional: also check the file as this task type..."},
                "field_mapping": {"type": "string", "description": "...with this field mapping (a JSON object)."},
            },
        }}},
    }
}  # fmt: skip


UPLOAD_RESPONSES = {**ROLE_RESPONSES, 409: quota_response(UPLOAD_SETTING),
                    413: {**ERROR_RESPONSES[422], "description": "Over api.upload_max_bytes"},
                    415: {**ERROR_RESPONSES[422], "description": "Not a multipart/form-data body"}}  # fmt: skip


class FileOut(BaseModel):
    id: str = Field(description="file-... ; pass it to POST /v1/jobs.")
    object: str = Field("file", description="Always file.")
    filename: str = Field(description="The name it was uploaded with.")
    kind: str = Field(description="text or image.")
    format: str = Field(description="jsonl, json, csv, parquet or zip.")
    bytes: int = Field(description="Size as uploaded.")
    rows: int = Field(description="Records (text) or captioned images (image).")
    columns: list[str] = Field(description="Column names (text).")
    sha256: str = Field(description="SHA-256 of the uploaded bytes.")
    created_at: datetime
    deleted_at: datetime | None = Field(description="When its bytes were deleted; jobs made from it keep their record.")

    @classmethod
    def of(cls, row: UploadedFile) -> FileOut:
        return cls(id=row.id, filename=row.filename, kind=row.kind, format=row.format, bytes=row.size_bytes, rows=row.rows,
                   columns=[str(c) for c in row.columns], sha256=row.sha256, created_at=row.created_at, deleted_at=row.deleted_at)  # fmt: skip


class FileList(BaseModel):
    object: str = "list"
    data: list[FileOut]
    has_more: bool = Field(description="Older files follow; pass the last id as `after`.")


@router.post("/files", status_code=201, response_model=FileOut, responses=UPLOAD_RESPONSES,
             summary="Upload a dataset (multipart: file, optional kind)", openapi_extra=UPLOAD_BODY)  # fmt: skip
async def upload_file(request: Request, principal: Customer) -> FileOut:
    settings = app_settings(request)
    limit = settings.api.upload_max_bytes
    declared = _declared_file_bytes(request)
    if declared is not None and declared > limit:
        raise ApiError(413, "too_large", f"the upload is larger than {limit:,} bytes (api.upload_max_bytes)", limit_bytes=limit)
    sinks: list[UploadSink] = []
    limited = quota_owner(principal)
    stored = 0 if limited is None else await run_in_threadpool(_stored_bytes, app_store(request), limited)
    under_way: UploadsUnderWay = request.app.state.uploads_under_way

    try:
        with answering_jobs_errors(), under_way.receiving(limited, stored) as count:
            if declared is not None:
                under_way.refuse_declared(limited, stored, declared, "its Content-Length, less the form's framing")

            def open_file(filename: str, size: int | None) -> Callable[[bytes], None]:
                if size is not None:
                    under_way.refuse_declared(limited, stored, size, "its file part's Content-Length")
                sinks.append(UploadSink(settings.uploads_dir, limit, filename, count))
                return sinks[-1].write

            form = await read_form(request.headers.get("content-type", ""), request.stream(), "file", open_file)
            if form.filename is None or not sinks:
                raise InvalidInput("no file in the upload: send it as the form field `file`", field="file")
            sha256 = sinks[0].finish()
            return await run_in_threadpool(_check_and_store, request, principal, form.filename, form.fields, sinks[0], sha256)
    finally:
        for sink in sinks:  # a refused or failed upload leaves nothing on disk (a kept one was moved away)
            sink.discard()


def _declared_file_bytes(request: Request) -> int | None:
    """The least the file may take of a body whose Content-Length is declared: all of it but the room
    for the form's framing and small fields. None without one."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        return None
    return max(int(declared) - MULTIPART_ALLOWANCE, 0)


def _stored_bytes(store: Store, key_id: int) -> int:
    with store.session() as session:
        return stored_upload_bytes(session, key_id)


def _check_and_store(request: Request, principal: Principal, filename: str, fields: dict[str, str], sink: UploadSink,
                     sha256: str) -> FileOut:  # fmt: skip
    settings = app_settings(request)
    kind, fmt = file_format(filename, fields.get("kind") or None)
    mapping = _mapping(fields.get("field_mapping"))
    checked = check_file(sink.path, filename, kind, fmt, settings, fields.get("task_type") or None, mapping)
    limited = quota_owner(principal)
    # Counted again under the key's lock: another process may have stored the key's files while this one streamed.
    with quota_transaction(app_store(request), limited) as session:
        check_upload_bytes(session, settings, limited, sink.size)
        row = store_upload(session, settings, owner_key_id=principal.key_id, staging=sink.path, filename=filename,
                           checked=checked, sha256=sha256, size=sink.size)  # fmt: skip
        return FileOut.of(row)


def _mapping(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"field_mapping is not JSON ({error.msg})", field="field_mapping") from None
    except RecursionError:  # as a JSON body nested too deeply is answered (api.errors)
        raise InvalidInput("field_mapping is nested too deeply (arrays or objects inside one another)", field="field_mapping") from None
    if not isinstance(value, dict):
        raise InvalidInput("field_mapping must be a JSON object", field="field_mapping")
    return value


@router.get("/files", response_model=FileList, responses=ROLE_RESPONSES, summary="Your files (operators: everyone's)")
def files(request: Request, principal: Customer, window: CursorWindow) -> FileList:
    with app_store(request).session() as session, answering_jobs_errors():
        page = list_files(session, visible_owner(principal), after=window.after, limit=window.limit, offset=window.offset)
        return FileList(data=[FileOut.of(row) for row in page.data], has_more=page.has_more)


@router.get("/files/{file_id}", response_model=FileOut, responses=ROLE_RESPONSES, summary="One file")
def file(request: Request, principal: Customer, file_id: str) -> FileOut:
    with app_store(request).session() as session, answering_jobs_errors():
        return FileOut.of(get_file(session, file_id, visible_owner(principal)))


@router.delete("/files/{file_id}", response_model=FileOut, responses=ROLE_RESPONSES, summary="Delete a file's bytes")
def remove_file(request: Request, principal: Customer, file_id: str) -> FileOut:
    with app_store(request).transaction() as session, answering_jobs_errors():
        return FileOut.of(delete_file(session, file_id, visible_owner(principal), settings=app_settings(request)))

