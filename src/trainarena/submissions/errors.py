"""The one error type of registration: a ``ValueError`` whose message names the problem and the fix."""

from __future__ import annotations


class RegistrationError(ValueError):
    """A repository, commit, manifest or name that cannot be registered; the message says why."""
