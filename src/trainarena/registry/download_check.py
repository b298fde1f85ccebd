"""Checking a model folder someone downloaded or exported (``trainarena models verify``) against the
registry and the signed run record of the run that trained it.

The model's ``digest`` is computed as the records' artifact digest is (``tasks.digests.path_digest``:
sha256 over the sorted relative paths, sizes and contents), but over the model folder, which is not
the run's output folder the record hashed: the registry publishes only the scored weights (copied byte
for byte), a rewritten adapter config, the base model's tokenizer and a card (``registry.layout``). So
the link to the signed record is made file by file: each file the registry copied from the artifact
(``artifact_path``) has the sha256 the run statement names for that artifact file, and the statement's
``artifact_sha256`` is the model's ``artifact_digest``. A folder digest that differs says the folder is
not the registered one; the files that differ say where. The folder's digest and each file's sha256
come from one read of every file.

A model registered before the registry named the files it copied has no ``artifact_path`` (nor
``artifact_digest``): its files are then linked to the record by content, read-only, each to the
artifact file whose signed sha256 is the one registered for it; the registry on the operator's machine
gives the run's artifact digest from the store (``models.stored_artifact_digest``).

Beside the files, ``registry.record_claims`` checks what the signed records claim of the model (its
dataset, its score, their place in the log); its results travel in :class:`DownloadCheck` ``claims``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from securesystemslib.signer import SSlibKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.records.reading import entry_json, proofs_against, tree_head
from trainarena.records.signing import (
    SignatureError,
    envelope_keyid,
    envelope_payload,
    open_envelope,
    public_key_from_pem,
    public_pem_for,
)
from trainarena.records.statements import ARTIFACT_SUBJECT, PAYLOAD_TYPE, Kind, artifact_files, kind_of
from trainarena.registry.verify_input import (
    MalformedInput,
    checked_evaluation_statement,
    checked_run_statement,
    member,
    typed,
)
from trainarena.store.log_tables import LogEntry
from trainarena.tasks.digests import folder_and_file_digests
from trainarena.wording import with_article


@dataclass(frozen=True)
class SignedRecord:
    """A statement (a run's, or its evaluation's), and how far it is trusted: ``signed_by`` the key id
    its signature was checked against, None when it was read without a key. With it, what the entry
    says of its place in the log (None when given a bare envelope): ``index``, and its
    ``inclusion_proof`` in the tree of ``tree_size`` entries (unchecked hex hashes)."""

    statement: dict[str, Any]
    signed_by: str | None
    envelope: dict[str, Any] = field(default_factory=dict)
    index: int | None = None
    tree_size: int | None = None
    inclusion_proof: list[Any] | None = None


PASSED, FAILED, NOT_CHECKED = "passed", "failed", "not checked"


@dataclass(frozen=True)
class ClaimCheck:
    """One claim of the signed records checked beside the files (``registry.record_claims``): its
    ``name``, whether it ``passed``, ``failed`` or was ``not checked`` (an input it needs was not
    given), and ``detail`` saying what was compared, why it failed or what to give."""

    name: str
    status: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class DownloadCheck:
    folder_digest: str  # recomputed from the folder
    registered_digest: str
    linked: tuple[str, ...]  # files whose sha256 the signed run record names
    problems: tuple[str, ...]
    record: SignedRecord | None
    linked_by_content: bool = False  # the model named no copied file (registered before it did so)
    claims: tuple[ClaimCheck, ...] = ()  # the signed claims beside the files (``registry.record_claims``)

    @property
    def ok(self) -> bool:
        return not self.problems and all(claim.status != FAILED for claim in self.claims)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "folder_digest": self.folder_digest, "registered_digest": self.registered_digest,
                "linked_to_record": list(self.linked), "linked_by_content": self.linked_by_content,
                "problems": list(self.problems), "record_checked": self.record is not None,
                "signed_by": None if self.record is None else self.record.signed_by,
                "checks": [claim.to_json() for claim in self.claims]}  # fmt: skip


def check_download(folder: Path, model: Mapping[str, Any], record: SignedRecord | None) -> DownloadCheck:
    """``folder`` against ``model`` (a model's record with its ``files``, as ``GET /v1/models/{id}`` and
    ``models show --json`` give it, checked by ``verify_input.checked_model``) and, when given, the run
    statement of the run that trained it. OSError when the folder cannot be read."""
    digest, files = folder_and_file_digests(folder)
    links = {file.name for file in files if (folder / file.name).is_symlink()}  # the digest follows them; nothing else does
    found = {file.name: file.sha256 for file in files if file.name not in links}
    registered = {file["path"]: file for file in model["files"]}
    problems = [] if digest == model["digest"] else [f"the folder's digest is {digest}, the model's {model['digest']}"]
    problems += [f"{_shown(path)} is a symbolic link, which no model folder holds" for path in sorted(links)]
    problems += [f"{path} is missing" for path in sorted(registered.keys() - found.keys() - links)]
    problems += [f"{_shown(path)} is not a file of the model" for path in sorted(found.keys() - registered.keys() - links)]
    problems += [f"{path} has sha256 {found[path]}, registered as {registered[path]['sha256']}"
                 for path in sorted(found.keys() & registered.keys()) if found[path] != registered[path]["sha256"]]  # fmt: skip
    if record is None:
        return DownloadCheck(digest, model["digest"], (), tuple(problems), None)
    against = _against_record(found, model, record.statement)
    return DownloadCheck(digest, model["digest"], tuple(against.linked), (*problems, *against.problems), record, against.by_content)


def _shown(name: str) -> str:
    """A file name found on disk as it can be printed: bytes that are not UTF-8 as ``\\xNN``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class _RecordCheck:
    problems: list[str]
    linked: list[str]  # the files that agree with the record
    by_content: bool  # linked by content: the model named no copied file


def _against_record(found: dict[str, str], model: Mapping[str, Any], statement: Mapping[str, Any]) -> _RecordCheck:
    """What in the folder and the model disagrees with the run statement (checked by
    ``verify_input.checked_run_statement``), and the files that agree with it."""
    predicate = statement["predicate"]
    run_id = predicate["run"]["id"]
    if run_id != model.get("run_id"):
        return _RecordCheck([f"the record is of run {run_id}, the model was trained by run {model.get('run_id')}"], [], False)
    problems = []
    if model.get("artifact_digest") not in (None, predicate.get("artifact_sha256")):
        problems.append(f"the model names artifact digest {model['artifact_digest']}, the record {predicate.get('artifact_sha256')}")
    signed = artifact_files(dict(statement))
    copies = {file["path"]: file["artifact_path"] for file in model["files"] if file.get("artifact_path")}
    by_content = not copies
    if by_content:
        copies = _copies_by_content(model["files"], signed)
        if not copies:
            problems.append(_unlinked(signed, run_id))
    linked = []
    for path, source in sorted(copies.items()):
        if source not in signed:
            problems.append(f"{path}: the record names no artifact file {source}")
        elif found.get(path) != signed[source]:
            problems.append(f"{path} has sha256 {found.get(path)}, the signed record {signed[source]} ({ARTIFACT_SUBJECT}{source})")
        else:
            linked.append(path)
    return _RecordCheck(problems, linked, by_content)


def _copies_by_content(files: list[dict[str, Any]], signed: dict[str, str]) -> dict[str, str]:
    """For a model registered before the registry named the artifact files it copied: each of its files
    whose registered sha256 the record names for an artifact file, with that file (the same path first)."""
    by_digest: dict[str, list[str]] = {}
    for source, sha256 in sorted(signed.items()):
        by_digest.setdefault(sha256, []).append(source)
    copies = {}
    for file in files:
        sources = by_digest.get(file["sha256"], [])
        if sources:
            copies[file["path"]] = file["path"] if file["path"] in sources else sources[0]
    return copies


def _unlinked(signed: dict[str, str], run_id: int) -> str:
    """Why no file of a model registered before the registry named its copies links to the record, and
    what can be done."""
    why = ("the record names no artifact file (its attempt left none: give the record of the run's last attempt)"
           if not signed else "none of its files has the sha256 the record names for one of the artifact's "
           f"{len(signed)} files: its weights are not that artifact's (give the record of the run's last attempt; "
           f"the operator finds the artifact with `trainarena runs show {run_id}` and can compare its weights with the model's)")  # fmt: skip
    return f"the model names no file copied from its run's artifact (registered before the registry recorded them), and {why}"


# Where a customer finds each kind of statement ``models verify`` reads.
_LISTED = {Kind.RUN: "`GET /v1/records/entries?job_id=ID&kind=run` lists your job's",
           Kind.EVALUATION: "`GET /v1/records/entries?job_id=ID&kind=evaluation` lists your job's"}  # fmt: skip


def record_from_entry(entry: Any, key: SSlibKey | None, kind: Kind = Kind.RUN) -> SignedRecord:
    """The statement of ``kind`` in a log entry (as ``GET /v1/records/entries/{index}`` answers it, or
    its bare ``envelope``), its signature checked when ``key`` (the operator's public key) is given; the
    entry's decoded ``statement`` field is never trusted, only the envelope. MalformedInput naming the
    field when it is not such an entry (``verify_input``); SignatureError when its signature does not
    check out."""
    given = typed(entry, "the record", dict)
    envelope = typed(given.get("envelope", entry), "envelope", dict)
    place = given if "envelope" in given else {}
    member(envelope, "envelope", "payload", str)
    if key is None:
        try:
            statement, signed_by = envelope_payload(envelope), None
        except SignatureError:
            raise MalformedInput("envelope.payload is not a JSON statement encoded in base64") from None
    else:
        member(envelope, "envelope", "payloadType", str)
        for index, signature in enumerate(member(envelope, "envelope", "signatures", list)):
            for field in ("keyid", "sig"):
                member(typed(signature, f"envelope.signatures[{index}]", dict), f"envelope.signatures[{index}]", field, str)
        statement, signed_by = open_envelope(envelope, key, PAYLOAD_TYPE), key.keyid
    if not isinstance(statement, dict) or _kind(statement) != kind:
        raise MalformedInput(f"the record is not {with_article(kind.value)} statement ({_LISTED[kind]})")
    checked = checked_run_statement(statement) if kind == Kind.RUN else checked_evaluation_statement(statement)
    return SignedRecord(checked, signed_by, envelope, member(place, "", "index", int, required=False),
                        member(place, "", "tree_size", int, required=False),
                        member(place, "", "inclusion_proof", list, required=False))  # fmt: skip


def _kind(statement: dict[str, Any]) -> Kind | None:
    try:
        return kind_of(statement)
    except ValueError:
        return None


def stored_run_record(session: Session, key_path: Path, run_id: int, kind: Kind = Kind.RUN) -> SignedRecord | None:
    """The newest statement of ``kind`` the operator's log holds for ``run_id`` (the counted attempt's),
    its signature checked with the key that signed it (the operator's key at ``key_path``, or one it
    replaced), with its inclusion proof in the tree of the latest signed head, as the API serves an
    entry; None when the log has none (records were off)."""
    entry = session.scalar(select(LogEntry).where(LogEntry.kind == kind.value, LogEntry.run_id == run_id)
                           .order_by(LogEntry.index.desc()).limit(1))  # fmt: skip
    if entry is None:
        return None
    pem = public_pem_for(key_path, envelope_keyid(entry.envelope) or "")
    if pem is None:
        raise SignatureError(f"the key that signed run {run_id}'s record is not this operator's")
    head = tree_head(session)
    served = entry_json(entry, head, proofs_against(session, head, [entry.index])[entry.index])
    return record_from_entry(served, public_key_from_pem(pem), kind)


def stored_tree_head(session: Session, key_path: Path) -> tuple[dict[str, Any], SSlibKey]:
    """The latest signed tree head's envelope in the operator's log, with the key that signed it (the
    operator's key at ``key_path``, or one it replaced); SignatureError when neither did."""
    envelope = tree_head(session).envelope
    pem = public_pem_for(key_path, envelope_keyid(envelope) or "")
    if pem is None:
        raise SignatureError("the key that signed the log's latest tree head is not this operator's")
    return envelope, public_key_from_pem(pem)
