"""``/v1/records``: the signed records (docs/records.md): the operator's public key, the signed tree
heads of the transparency log, its entries with their inclusion proofs, and consistency proofs
between two heads; each checkable with ``trainarena.records.merkle`` and the public key alone.

Any key may read them: records exist so that anyone holding the public key can check results, and
tournament results are public already (the dashboard). A key is still needed, as on every route but
the health check, so that proofs (each hashes over the whole log's leaves, read from the store) are
rate limited per key. A customer's job is private, so an entry recorded for a job is shown only to that
job's owner and to operators: to anyone else it does not exist (404, and absent from listings).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from trainarena.api.auth import Caller, visible_owner
from trainarena.api.context import app_settings, app_store
from trainarena.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse, not_found
from trainarena.api.paging import STORE_INT_MAX, PageWindow
from trainarena.records.reading import (
    EntryFilter,
    UnknownEntryError,
    UnknownHeadError,
    Visibility,
    consistency,
    entry_json,
    find_entries,
    get_entry,
    head_json,
    proofs_against,
    tree_head,
)
from trainarena.records.signing import OperatorKeyError, load_key
from trainarena.records.statements import Kind
from trainarena.store.log_tables import TreeHead

router = APIRouter(prefix="/v1/records", tags=["records"], responses=ERROR_RESPONSES)

KEY_ID_HEADER = "X-Trainarena-Key-Id"
SIZE_HELP = "A signed tree head's size (the number of entries it covers)."


class KeyFormat(StrEnum):
    PEM = "pem"
    JSON = "json"


class PublicKeyOut(BaseModel):
    keyid: str = Field(description="The key's id: SHA-256 of its canonical description (securesystemslib); "
                                   "every signature in the records names it, and a tree head's log_id is it.")
    algorithm: str = Field("ed25519", description="Always ed25519.")
    pem: str = Field(description="The public key as a SubjectPublicKeyInfo PEM.")


class TreeHeadOut(BaseModel):
    tree_size: int = Field(description="Entries in the tree this head signs.")
    root_hash: str = Field(description="Hex RFC 6962 root of those entries' leaves.")
    log_id: str | None = Field(description="The signing key's id, as signed in the payload.")
    timestamp: str | None = Field(description="When it was signed (UTC, ISO 8601), as signed in the payload.")
    envelope: dict[str, Any] = Field(description="DSSE envelope of {log_id, tree_size, root_hash, timestamp} "
                                                 "(payload type application/vnd.trainarena.tree-head+json).")


class EntryOut(BaseModel):
    index: int = Field(description="The entry's 0-based leaf index in the log.")
    key: str = Field(description="What it records, e.g. run:12:attempt:1, tournament:3:decision.")
    kind: str = Field(description="run, evaluation, commitment, round, decision, reveal or weights.")
    tournament_id: int | None
    run_id: int | None
    job_id: str | None
    appended_at: datetime
    envelope: dict[str, Any] = Field(description="The DSSE envelope of the statement (payload type application/vnd.in-toto+json).")
    statement: dict[str, Any] = Field(description="The envelope's payload decoded, an in-toto Statement v1 "
                                                  "(check the envelope's signature before trusting it).")
    leaf_hash: str = Field(description="Hex SHA-256(0x00 || canonical JSON of the envelope).")
    tree_size: int = Field(description="The signed tree head the inclusion proof is against (the latest).")
    inclusion_proof: list[str] = Field(description="Hex hashes of the RFC 6962 audit path, leaf first.")


class EntryPage(BaseModel):
    data: list[EntryOut] = Field(description="This page's entries, in log order.")
    has_more: bool = Field(description="Whether entries follow this page (ask again with offset + limit).")
    tree_head: TreeHeadOut | None = Field(description="The signed head every inclusion proof of the page is against "
                                          "(null while the log is empty).")


class ConsistencyOut(BaseModel):
    first: TreeHeadOut = Field(description="The older signed head.")
    second: TreeHeadOut = Field(description="The newer signed head.")
    proof: list[str] = Field(description="Hex hashes of the RFC 6962 consistency proof from first to second.")


KEY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}},
                      "application/json": {"schema": {"$ref": "#/components/schemas/PublicKeyOut"}}},
          "description": f"The PEM (the key id in the `{KEY_ID_HEADER}` header), or with ?format=json its id and PEM"},
    **{status: {"description": response["description"],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
       for status, response in ERROR_RESPONSES.items()},
    503: {"model": ErrorResponse, "description": "The signing key cannot be read"},
}  # fmt: skip


@router.get("/public-key", response_model=None, responses=KEY_RESPONSES, summary="The operator's public signing key")
def public_key(
    _caller: Caller,
    request: Request,
    format: Annotated[KeyFormat, Query(description="pem (text/plain) or json ({keyid, algorithm, pem}).")] = KeyFormat.PEM,  # noqa: A002 - the query's name
) -> PlainTextResponse | PublicKeyOut:
    """What verifiers check every record with (`trainarena keys public` prints the same)."""
    path = app_settings(request).operator_key_path
    if not path.exists():
        raise ApiError(404, "not_found", "the operator has no signing key yet (`trainarena keys init` creates it; "
                       "so does the first record)")  # fmt: skip
    try:
        key = load_key(path)
    except OperatorKeyError:
        raise ApiError(503, "unavailable", "the operator's signing key cannot be read; the operator should check "
                       "settings records.key_file") from None  # fmt: skip
    if format is KeyFormat.JSON:
        return PublicKeyOut(keyid=key.keyid, pem=key.public_pem())
    return PlainTextResponse(key.public_pem(), headers={KEY_ID_HEADER: key.keyid})


def _head(session: Session, size: int | None = None) -> TreeHead:
    try:
        return tree_head(session, size)
    except UnknownHeadError as error:
        raise ApiError(404, "not_found", str(error), **({} if size is None else {"size": size})) from None


@router.get("/tree-head", response_model=TreeHeadOut, summary="The latest signed tree head (or one of a given size)")
def signed_tree_head(_caller: Caller, request: Request,
                     size: Annotated[int | None, Query(ge=1, le=STORE_INT_MAX, description=SIZE_HELP)] = None) -> TreeHeadOut:
    """The log's latest signed head (`?size=N`: the one signed when it held N entries): compare it with
    what others were served to catch a log that shows different histories to different readers."""
    with app_store(request).session() as session:
        return TreeHeadOut(**head_json(_head(session, size)))


@router.get("/entries", response_model=EntryPage, summary="Log entries with their inclusion proofs")
def entries(
    caller: Caller,
    request: Request,
    window: PageWindow,
    tournament_id: Annotated[int | None, Query(ge=1, le=STORE_INT_MAX, description="Only this tournament's entries.")] = None,
    run_id: Annotated[int | None, Query(ge=1, le=STORE_INT_MAX, description="Only this run's entries (its run and "
                                        "evaluation statements).")] = None,
    job_id: Annotated[str | None, Query(max_length=40, description="Only this job's entries (yours, or any for operators).")] = None,
    kind: Annotated[Kind | None, Query(description="Only entries of this kind.")] = None,
) -> EntryPage:
    """Entries in log order, each with its envelope and its inclusion proof against the latest signed
    head (returned beside them). A customer's job entries are listed only for that customer and operators."""
    where = EntryFilter(tournament_id, run_id, job_id, None if kind is None else kind.value)
    with app_store(request).session() as session:
        try:
            head = tree_head(session)
        except UnknownHeadError:
            return EntryPage(data=[], has_more=False, tree_head=None)
        rows, more = find_entries(session, head, Visibility(visible_owner(caller)), where,
                                  offset=window.offset, limit=window.limit)  # fmt: skip
        proofs = proofs_against(session, head, [row.index for row in rows]) if rows else {}
        data = [EntryOut(**entry_json(row, head, proofs[row.index])) for row in rows]
        return EntryPage(data=data, has_more=more, tree_head=TreeHeadOut(**head_json(head)))


@router.get("/entries/{index}", response_model=EntryOut, summary="One log entry with its inclusion proof")
def entry(
    caller: Caller,
    request: Request,
    index: Annotated[int, Path(ge=0, le=STORE_INT_MAX, description="The entry's 0-based index in the log.")],
) -> EntryOut:
    """One entry, its envelope and its inclusion proof against the latest signed head."""
    with app_store(request).session() as session:
        head = _head(session)
        try:
            row = get_entry(session, head, index, Visibility(visible_owner(caller)))
        except UnknownEntryError:
            raise not_found("log entry", index) from None
        return EntryOut(**entry_json(row, head, proofs_against(session, head, [index])[index]))


@router.get("/consistency", response_model=ConsistencyOut, summary="A consistency proof between two signed tree heads")
def consistency_proof(
    _caller: Caller,
    request: Request,
    first: Annotated[int, Query(ge=1, le=STORE_INT_MAX, description=f"The older head. {SIZE_HELP}")],
    second: Annotated[int | None, Query(ge=1, le=STORE_INT_MAX, description=f"The newer head (default the latest). {SIZE_HELP}")] = None,
) -> ConsistencyOut:
    """The two signed heads and the RFC 6962 proof that the log of `first` entries is a prefix of the
    log of `second` entries (default: the latest head): nothing was removed or rewritten in between."""
    with app_store(request).session() as session:
        try:
            old, new, proof = consistency(session, first, second)
        except UnknownHeadError as error:
            raise ApiError(404, "not_found", str(error), first=first, second=second) from None
        except ValueError as error:
            raise ApiError(422, "invalid_request", str(error), first=first, second=second) from None
        return ConsistencyOut(first=TreeHeadOut(**head_json(old)), second=TreeHeadOut(**head_json(new)),
                              proof=[step.hex() for step in proof])
