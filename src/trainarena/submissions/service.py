"""The thin layer between registration and the store: check the name is free, register, apply the copy
rules against the stored competitors (submissions.copies), record the new one with what the copy check
found. The session is injected; nothing is committed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from trainarena.contract import MANIFEST_NAME, TaskType
from trainarena.engine.ss58 import SS58Error, check_ss58
from trainarena.settings import Settings
from trainarena.store import (
    Competitor,
    add_competitor,
    get_competitor,
    list_competitors,
    retire_competitor,
)
from trainarena.submissions.copies import CopyReport, check_copies, report_warnings
from trainarena.submissions.errors import RegistrationError
from trainarena.submissions.manifest import Manifest, parse_manifest
from trainarena.submissions.registration import Registration, checkout_path, register
from trainarena.submissions.worktree import changes_left_out


@dataclass(frozen=True)
class RegisteredResult:
    competitor: Competitor
    registration: Registration
    report: CopyReport
    # What `competitor add` prints to stderr and POST /v1/competitors answers as ``warnings``, one line
    # each: the copy check's, and the uncommitted changes of a local working tree its commit leaves out.
    warnings: list[str]


def competitor_kind(manifest: Manifest) -> str | None:
    """The store's competitor kind: which tournaments (text, image) the declared task types allow."""
    if manifest.task_types is None:
        return None
    image = TaskType.IMAGE in manifest.task_types
    text = any(t is not TaskType.IMAGE for t in manifest.task_types)
    return "both" if image and text else "image" if image else "text"


def register_competitor(
    session: Session, settings: Settings, *, name: str, repo: str, commit: str, hotkey: str | None = None,
    hotkey_field: str = "hotkey", quota_key: int | None = None, owner_key_id: int | None = None,
    replaces: str | None = None, key_id: int | None = None,
) -> RegisteredResult:
    """Register and record a competitor; RegistrationError if the name is taken or a check fails (the
    optional SS58 ``hotkey``, where its weight goes on a Bittensor subnet, is checked before any fetch;
    its refusal names it as the caller's ``hotkey_field``: the API's body field, the CLI's flag). The
    repository's mirror is charged to ``quota_key`` (submissions.mirror_quota; None: not limited).
    ``owner_key_id``: the competitor key registering it (None: the CLI or an operator's key). ``replaces``:
    a competitor the same owner registered (an operator: any), retired by ``key_id`` in this transaction,
    before the fetch, so that a refusal of either leaves both as they were (StoreError for it)."""
    if get_competitor(session, name) is not None:
        raise RegistrationError(f"a competitor named {name!r} is already registered; choose another name")
    if hotkey is not None:
        try:
            check_ss58(hotkey, network_format=settings.weights.ss58_format)
        except SS58Error as error:
            raise RegistrationError(f"{hotkey_field}: {error}") from None
    if replaces is not None:
        retire_competitor(session, name=replaces, owner=owner_key_id, by_key_id=key_id)
    registration = register(settings, name=name, repo=repo, commit=commit, quota_key=quota_key)
    report = check_copies(settings, registration, list_competitors(session))
    competitor = add_competitor(
        session,
        name=registration.name,
        repo_url=registration.repo_url,
        commit=registration.commit,
        tree_hash=registration.tree_hash,
        source_digest=registration.source_digest,
        entrypoint=registration.entrypoint,
        kind=competitor_kind(registration.manifest),
        hotkey=hotkey,
        similar_to=None if report.closest is None else report.closest.name,
        similarity=None if report.closest is None else report.closest.similarity,
        copy_flag=report.flag,
        owner_key_id=owner_key_id,
    )
    warnings = report_warnings(name, report, settings.registration)
    # Here, not in a caller: an operator's key registers a path on the server through the API as the CLI does.
    if left_out := changes_left_out(registration.repo_url, registration.commit):
        warnings.append(f"{name} is the commit {registration.commit[:12]} without the uncommitted changes of {repo}: "
                        f"{', '.join(left_out)}; to enter them, commit them and register the new commit under a new "
                        f"name (e.g. {name}-v2)")  # fmt: skip
    return RegisteredResult(competitor=competitor, registration=registration, report=report, warnings=warnings)


def declared_task_types(settings: Settings, competitor: Competitor) -> list[str] | None:
    """Declared task types, read back from the exported manifest (the store keeps only the kind); None
    for all types, or when the checkout is not there."""
    manifest_file = checkout_path(settings, competitor.commit) / MANIFEST_NAME
    if not manifest_file.is_file():
        return None
    manifest = parse_manifest(manifest_file.read_text(encoding="utf-8"))
    return None if manifest.task_types is None else [t.value for t in manifest.task_types]


def competitor_record(settings: Settings, competitor: Competitor) -> dict[str, Any]:
    """One competitor as `competitor show --json` prints it and the API answers it."""
    return {
        "name": competitor.name,
        "repo_url": competitor.repo_url,
        "commit": competitor.commit,
        "tree_hash": competitor.tree_hash,
        "source_digest": competitor.source_digest,
        "entrypoint": competitor.entrypoint,
        "kind": competitor.kind,
        "hotkey": competitor.hotkey,
        "task_types": declared_task_types(settings, competitor),
        "registered_at": competitor.registered_at.isoformat(),
        "similar_to": competitor.similar_to,
        "similarity": None if competitor.similarity is None else round(competitor.similarity, 3),
        "copy_flag": competitor.copy_flag,
        "retired_at": None if competitor.retired_at is None else competitor.retired_at.isoformat(),
        "retired_by": _retired_by(competitor),
    }


def _retired_by(competitor: Competitor) -> str | None:
    """Who retired it, as a role rather than a key's name (every key reads it): ``owner`` (the key that
    registered it) or ``operator`` (an operator's key or the command line); None while it is active."""
    if competitor.retired_at is None:
        return None
    by_owner = competitor.owner_key_id is not None and competitor.retired_by_key_id == competitor.owner_key_id
    return "owner" if by_owner else "operator"
