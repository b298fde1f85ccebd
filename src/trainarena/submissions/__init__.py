"""Competitor registration: ``repo@commit`` -> checked, cached, content-addressed submission.

The public names are below; ``git``, ``digest`` and ``registration`` are the private modules behind
them. :func:`register` and :func:`find_copies` never touch the store; ``submissions.service`` is the
thin layer that does. The copy rules are in ``submissions.copies`` (over the pure near-duplicate
measure, ``submissions.similarity``), which the service applies at registration.
"""

from trainarena.submissions.digest import source_digest
from trainarena.submissions.errors import RegistrationError
from trainarena.submissions.git import check_commit_sha, normalize_repo_url
from trainarena.submissions.manifest import Manifest, parse_manifest
from trainarena.submissions.registration import (
    CopyMatch,
    Registration,
    checkout_path,
    find_copies,
    register,
)
from trainarena.submissions.worktree import WorktreeSnapshot, snapshot_worktree

__all__ = [
    "CopyMatch",
    "Manifest",
    "Registration",
    "RegistrationError",
    "WorktreeSnapshot",
    "check_commit_sha",
    "checkout_path",
    "find_copies",
    "normalize_repo_url",
    "parse_manifest",
    "register",
    "snapshot_worktree",
    "source_digest",
]
