"""What goes wrong with a customer's file or job, as plain exceptions the API turns into its error
shape (422 invalid, 404 not found, 409 conflict or over a quota, 413 too large) and the CLI prints."""

from __future__ import annotations

from typing import Any


class JobsError(Exception):
    """Base: ``message`` for people, ``details`` for programs (the field, the row, the limit)."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(JobsError):
    """A field of the request, or the uploaded data, is not acceptable; ``details['field']`` names it."""


class NotFound(JobsError):
    """No such file or job, or one the caller may not see (the same answer for both)."""

    def __init__(self, what: str, identifier: str) -> None:
        super().__init__(f"no {what} {identifier}", **{what: identifier})


class Conflict(JobsError):
    """The request does not fit the resource's state (cancelling a finished job)."""


class TooLarge(JobsError):
    """An upload over ``ApiRules.upload_max_bytes``."""


class QuotaExceeded(JobsError):
    """A customer key's request would pass one of its quotas (``jobs.quotas``); ``details`` name the
    setting, the key's usage and the limit."""
