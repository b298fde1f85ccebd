"""``/v1/competitors``: register a training script (repo@commit) as `trainarena competitor add` does,
list and show the registered ones, retire one. Competitor and operator keys: every such key reads every
competitor, but a competitor key retires only those it registered (another's is a 403, as GET shows it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from trainarena.api.auth import Competitor, quota_owner, visible_owner
from trainarena.api.context import app_settings, app_store
from trainarena.api.errors import BODY_RESPONSES, ROLE_RESPONSES, ApiError, ErrorResponse, not_found, quota_response
from trainarena.api.json_body import RequestBody
from trainarena.api.paging import NAME_MAX_LENGTH, Page, PageWindow
from trainarena.api.shown import shown_to
from trainarena.reporting.server_paths import SERVER_SOURCE
from trainarena.store import NotOwnCompetitor, StoreError, get_competitor, list_competitors, retire_competitor
from trainarena.submissions import RegistrationError
from trainarena.submissions.git import is_remote_repo, normalize_repo_url
from trainarena.submissions.mirror_quota import MIRROR_SETTING, MirrorQuotaExceeded
from trainarena.submissions.service import competitor_record, register_competitor

router = APIRouter(prefix="/v1", tags=["competitors"], responses=ROLE_RESPONSES)

CompetitorName = Annotated[str, Path(description="The competitor's name, as registered.")]


class CompetitorOut(BaseModel):
    name: str = Field(description="Unique competitor name.")
    repo_url: str = Field(description="The repository it was registered from; one on the server (an operator's path or file:// URL) "
                          f"an operator's key alone reads (any other: '{SERVER_SOURCE}').")
    commit: str = Field(description="The full commit SHA registered.")
    tree_hash: str = Field(description="git's tree hash of that commit: equal trees are copies.")
    source_digest: str = Field(description="sha256 of the source modulo comments and layout.")
    entrypoint: str = Field(description="The script the sandbox runs (from trainarena.toml).")
    kind: str | None = Field(description="Which tournaments it may enter: text, image, both, or null for any.")
    hotkey: str | None = Field(description="The Bittensor hotkey (SS58) its weight goes to, if any.")
    task_types: list[str] | None = Field(description="Task types its manifest declares; null: all.")
    registered_at: datetime = Field(description="When it was registered (UTC).")
    similar_to: str | None = Field(
        None, description="The registered competitor whose code was closest at registration (null: none was registered)."
    )
    similarity: float | None = Field(
        None, description="That closest similarity, 0 to 1: the share of the smaller tree's winnowed token "
        "fingerprints found in the other (docs/rules.md, \"Copies\")."
    )
    copy_flag: str | None = Field(
        None, description="Why it is flagged for the operator: tree_hash, source_digest (exact copies) or "
        "near_duplicate; null when it is not."
    )
    retired_at: datetime | None = Field(
        None, description="When it was retired (DELETE /v1/competitors/{name}, `competitor retire`, or `replaces`): it "
        "enters no tournament created afterwards. Null while it is active."
    )
    retired_by: str | None = Field(
        None, description="Who retired it: owner (the key that registered it) or operator; null while it is active."
    )


class CopyOut(BaseModel):
    kind: str = Field(description="tree_hash (identical files) or source_digest (same code modulo comments).")
    other_name: str = Field(description="The competitor registered earlier with the same code.")
    message: str = Field(description="The warning `competitor add` prints.")


class RegisteredOut(CompetitorOut):
    copies: list[CopyOut] = Field(
        description="Earlier competitors with the same code; empty unless the operator lets exact copies in, flagged "
        "(registration.exact_copies), since they are refused by default."
    )
    warnings: list[str] = Field(description="The warnings `competitor add` prints: copies, the flag, competitors not compared, and "
                                "the uncommitted changes a working tree on the server (a path an operator named) holds "
                                "that its registered HEAD commit leaves out.")


class RegisterIn(RequestBody):
    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH, description="Unique competitor name: letters, digits, '.', '_', '-'.")
    repo: str = Field(description="https or ssh URL or git@host:path; operators may also give a file:// URL or a path on the server.")
    commit: str = Field(description="Full 40-character commit SHA (not a branch or tag).")
    hotkey: str | None = Field(None, description="Bittensor hotkey (SS58 address) the competitor's weight goes to.")
    replaces: str | None = Field(None, max_length=NAME_MAX_LENGTH, description="A competitor this key registered (an operator's: any) "
                                 "that the new one replaces: it is retired with the registration, or neither happens.")


@router.post("/competitors", status_code=201, response_model=RegisteredOut, summary="Register a repository at a commit",
             responses={**BODY_RESPONSES, 409: quota_response(MIRROR_SETTING)})
def register(body: RegisterIn, caller: Competitor, request: Request) -> RegisteredOut:
    """Fetch the repository, check the commit and its trainarena.toml, and record the competitor: the
    checks and messages of `trainarena competitor add`, the copy check included (an exact copy of a
    registered competitor is refused by default; the closest competitor and the similarity are always
    reported). Refusals are 422 with the reason. Only operators may name a repository on the server
    itself (a path or file:// URL): a competitor must not make the server fetch, and run, whatever
    repository it can find on its disk."""
    if not caller.is_operator and not is_remote_repo(body.repo):
        raise ApiError(422, "registration_refused", "a competitor key registers a repository on another host (https://, "
                       "ssh:// or user@host:path); paths and file:// URLs on the server take an operator's key",
                       name=body.name, repo=body.repo)  # fmt: skip
    settings = app_settings(request)
    allowed = {host.lower() for host in settings.api.competitor_repo_hosts}
    if allowed and not caller.is_operator:
        try:
            host = urlsplit(normalize_repo_url(body.repo)).hostname
        except RegistrationError as error:
            raise ApiError(422, "registration_refused", str(error), name=body.name) from None
        if host not in allowed:
            raise ApiError(422, "registration_refused", f"a competitor key registers repositories from "
                           f"{', '.join(sorted(allowed))} only (api.competitor_repo_hosts), not {host}", name=body.name)
    try:
        with app_store(request).transaction() as session:
            result = register_competitor(session, settings, name=body.name, repo=body.repo, commit=body.commit,
                                         hotkey=body.hotkey, quota_key=quota_owner(caller), owner_key_id=visible_owner(caller),
                                         replaces=body.replaces, key_id=caller.key_id)  # fmt: skip
            record = competitor_record(settings, result.competitor)
    except MirrorQuotaExceeded as error:
        raise ApiError(409, "quota_exceeded", str(error), name=body.name, **error.details) from None
    except (RegistrationError, StoreError) as error:  # git's own words may name the server's cache of the repository
        raise ApiError(422, "registration_refused", shown_to(caller, request, str(error)), name=body.name) from None
    copies = [CopyOut(kind=c.kind, other_name=c.other_name, message=c.message) for c in result.report.exact]
    return RegisteredOut(**shown_to(caller, request, {**record, "warnings": result.warnings}), copies=copies)


@router.get("/competitors", response_model=Page[CompetitorOut], summary="List registered competitors, oldest first")
def list_all(caller: Competitor, request: Request, window: PageWindow) -> Page[CompetitorOut]:
    settings = app_settings(request)
    with app_store(request).session() as session:
        rows, more = window.page(list_competitors(session))
        data = [CompetitorOut(**shown_to(caller, request, competitor_record(settings, row))) for row in rows]
    return Page[CompetitorOut](data=data, has_more=more)


@router.get("/competitors/{name}", response_model=CompetitorOut, summary="One competitor's registration")
def show(name: CompetitorName, caller: Competitor, request: Request) -> CompetitorOut:
    with app_store(request).session() as session:
        competitor = get_competitor(session, name)
        if competitor is None:
            raise not_found("competitor", name)
        return CompetitorOut(**shown_to(caller, request, competitor_record(app_settings(request), competitor)))


@router.delete("/competitors/{name}", response_model=CompetitorOut, summary="Retire a competitor (the key that registered it, or an operator)",
               responses={403: {"model": ErrorResponse, "description": "This key's role may not do this, or another key registered the competitor"}})  # fmt: skip
def retire(name: CompetitorName, caller: Competitor, request: Request) -> CompetitorOut:
    """Retire the competitor: no tournament created afterwards enters it. The tournaments it entered
    play on with it, and its runs and signed records stay; so does a title it holds, until a challenger
    beats it. Retiring it again changes nothing and answers the same."""
    with app_store(request).transaction() as session:
        try:
            competitor, _ = retire_competitor(session, name=name, owner=visible_owner(caller), by_key_id=caller.key_id)
        except NotOwnCompetitor as error:
            raise ApiError(403, "forbidden", str(error), competitor=name) from None
        except StoreError:
            raise not_found("competitor", name) from None
        return CompetitorOut(**shown_to(caller, request, competitor_record(app_settings(request), competitor)))
