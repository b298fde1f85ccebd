"""Checking a model folder someone downloaded or exported (``trainarena models verify``) against the
registry and the signed run record of the run that trained it.

The model's ``digest`` is computed as the records' artifact digest is (``tasks.digests.path_digest``:
sha256 over the sorted relative paths, sizes and contents), but over the model folder, which is not
the run's output folder the record hashed: the registry publishes only the scored weights (copied byte
for byte), a rewritten adapter config, the base model's tokenizer and a card (``registry.layout``). So
the link to the signed record is made file by file: each file the registry copied from the artifact
(``artifact_path``) has the sha256 the run statement names for that artifact file, and the statement's
``artifact_sha256`` is the model's ``artifact_digest``. A folder digest that differs says the folder is
not the registered one; the files that differ say where.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.records.provenance import file_subjects
from trainarena.records.signing import (
    SignatureError,
    envelope_keyid,
    envelope_payload,
    open_envelope,
    public_key_from_pem,
    public_pem_for,
)
from trainarena.records.statements import ARTIFACT_SUBJECT, PAYLOAD_TYPE, Kind, artifact_files, kind_of
from trainarena.store.log_tables import LogEntry
from trainarena.tasks.digests import path_digest


@dataclass(frozen=True)
class SignedRecord:
    """A run statement, and how far it is trusted: ``signed_by`` the key id its signature was checked
    against, None when it was read without a key."""

    statement: dict[str, Any]
    signed_by: str | None


@dataclass(frozen=True)
class DownloadCheck:
    folder_digest: str  # recomputed from the folder
    registered_digest: str
    linked: tuple[str, ...]  # files whose sha256 the signed run record names
    problems: tuple[str, ...]
    record: SignedRecord | None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "folder_digest": self.folder_digest, "registered_digest": self.registered_digest,
                "linked_to_record": list(self.linked), "problems": list(self.problems),
                "record_checked": self.record is not None, "signed_by": None if self.record is None else self.record.signed_by}  # fmt: skip


def check_download(folder: Path, model: Mapping[str, Any], record: SignedRecord | None) -> DownloadCheck:
    """``folder`` against ``model`` (a model's record with its ``files``, as ``GET /v1/models/{id}`` and
    ``models show --json`` give it) and, when given, the run statement of the run that trained it."""
    found = {subject["name"]: subject["digest"]["sha256"] for subject in file_subjects(folder)}
    registered = {file["path"]: file for file in model["files"]}
    digest = path_digest(folder)
    problems = [] if digest == model["digest"] else [f"the folder's digest is {digest}, the model's {model['digest']}"]
    problems += [f"{path} is missing" for path in sorted(registered.keys() - found.keys())]
    problems += [f"{path} is not a file of the model" for path in sorted(found.keys() - registered.keys())]
    problems += [f"{path} has sha256 {found[path]}, registered as {registered[path]['sha256']}"
                 for path in sorted(found.keys() & registered.keys()) if found[path] != registered[path]["sha256"]]  # fmt: skip
    linked: list[str] = []
    if record is not None:
        problems += _against_record(found, model, record.statement, linked)
    return DownloadCheck(digest, model["digest"], tuple(linked), tuple(problems), record)


def _against_record(found: dict[str, str], model: Mapping[str, Any], statement: Mapping[str, Any], linked: list[str]) -> list[str]:
    """What in the folder and the model disagrees with the run statement; ``linked`` gains the files
    that agree with it."""
    predicate = statement.get("predicate", {})
    run_id = predicate.get("run", {}).get("id")
    if run_id != model.get("run_id"):
        return [f"the record is of run {run_id}, the model was trained by run {model.get('run_id')}"]
    problems = []
    if model.get("artifact_digest") not in (None, predicate.get("artifact_sha256")):
        problems.append(f"the model names artifact digest {model['artifact_digest']}, the record {predicate.get('artifact_sha256')}")
    signed = artifact_files(dict(statement))
    copies = {file["path"]: file["artifact_path"] for file in model["files"] if file.get("artifact_path")}
    if not copies:
        problems.append("the model names no file copied from its run's artifact (registered before the registry recorded them)")
    for path, source in sorted(copies.items()):
        if source not in signed:
            problems.append(f"{path}: the record names no artifact file {source}")
        elif found.get(path) != signed[source]:
            problems.append(f"{path} has sha256 {found.get(path)}, the signed record {signed[source]} ({ARTIFACT_SUBJECT}{source})")
        else:
            linked.append(path)
    return problems


def record_from_entry(entry: Mapping[str, Any], key_pem: str | None) -> SignedRecord:
    """The run statement of a log entry (as ``GET /v1/records/entries/{index}`` answers it, or its bare
    ``envelope``), its signature checked when ``key_pem`` (the operator's public key) is given; the
    entry's decoded ``statement`` field is never trusted, only the envelope. SignatureError when it is no
    run statement or its signature does not check out."""
    envelope = entry.get("envelope", entry)
    if key_pem is None:
        statement, signed_by = envelope_payload(envelope), None
    else:
        key = public_key_from_pem(key_pem)
        statement, signed_by = open_envelope(envelope, key, PAYLOAD_TYPE), key.keyid
    if not isinstance(statement, dict) or _kind(statement) != Kind.RUN:
        raise SignatureError("the record is not a run statement (`GET /v1/records/entries?job_id=ID&kind=run` lists your job's)")
    return SignedRecord(statement, signed_by)


def _kind(statement: dict[str, Any]) -> Kind | None:
    try:
        return kind_of(statement)
    except ValueError:
        return None


def stored_run_record(session: Session, key_path: Path, run_id: int) -> SignedRecord | None:
    """The newest run statement the operator's log holds for ``run_id`` (the counted attempt's), its
    signature checked with the key that signed it (the operator's key at ``key_path``, or one it
    replaced); None when the log has none (records were off)."""
    entry = session.scalar(select(LogEntry).where(LogEntry.kind == Kind.RUN.value, LogEntry.run_id == run_id)
                           .order_by(LogEntry.index.desc()).limit(1))  # fmt: skip
    if entry is None:
        return None
    pem = public_pem_for(key_path, envelope_keyid(entry.envelope) or "")
    if pem is None:
        raise SignatureError(f"the key that signed run {run_id}'s record is not this operator's")
    return record_from_entry({"envelope": entry.envelope}, pem)
