"""The jobs package's errors as the API's: 422 invalid (naming the field), 404, 409 (a conflict, or
``quota_exceeded``), 413."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from trainarena.api.errors import ApiError
from trainarena.jobs.errors import Conflict, InvalidInput, JobsError, NotFound, QuotaExceeded, TooLarge

_STATUS = ((InvalidInput, 422, "invalid_request"), (NotFound, 404, "not_found"), (Conflict, 409, "conflict"),
           (TooLarge, 413, "too_large"), (QuotaExceeded, 409, "quota_exceeded"))  # fmt: skip


def as_api_error(error: JobsError) -> ApiError:
    status, code = next(((s, c) for kind, s, c in _STATUS if isinstance(error, kind)), (422, "invalid_request"))
    return ApiError(status, code, error.message, **error.details)


@contextmanager
def answering_jobs_errors() -> Iterator[None]:
    try:
        yield
    except JobsError as error:
        raise as_api_error(error) from None
