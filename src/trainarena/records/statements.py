"""The statements trainarena signs: in-toto Statement v1, with one predicate type per kind of record.

Pure: plain data in, plain data out. The statement's shape is built and checked with the in-toto
attestation package (at least one subject, every subject with a digest, a predicate type and a
predicate); its JSON is written from the plain dict, not from the package's protobuf form, because
protobuf's Struct holds every number as a double and would round the 63-bit seeds the records carry.

Kinds and what each attests (docs/records.md has every field):
- ``run``: one attempt of a script on a task: subjects are the artifact's files (or, without an
  artifact, the run's logs), the predicate the submission, task, budget, seed, sandbox and its limits,
  environment, timings, exit status and log digests.
- ``evaluation``: that artifact's score on the hidden split (subjects: the same files).
- ``commitment``: before a tournament's first round, its entrants and the hidden splits it will use
  (digests, and a salted hash of each split seed).
- ``round``: a played round: every task's outcome per competitor (referencing the evaluations).
- ``decision``: the tournament's end: the boss decision, the champion, the weights, the rules used.
- ``reveal``: at the end, the split seeds and salts the commitment hid.
- ``cancellation``: the end of a started tournament the operator cancelled instead (when, why, the
  rounds it played); no decision or reveal follows it.
- ``weights``: a published weight vector (what goes on chain), naming the tournaments it came from.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import STATEMENT_TYPE_URI, Statement

from trainarena.records.signing import canonical_json

__all__ = [
    "ARTIFACT_SUBJECT", "PAYLOAD_TYPE", "PREDICATE_VERSION", "Kind", "artifact_files", "commitment_hash", "kind_of",
    "make_statement", "payload_digest", "predicate_type", "subject",
]

# DSSE payload type of an in-toto statement (in-toto's envelope convention).
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_VERSION = "v1"
_PREDICATE_PREFIX = "https://trainarena.dev/attestation/"


class Kind(StrEnum):
    RUN = "run"
    EVALUATION = "evaluation"
    COMMITMENT = "commitment"
    ROUND = "round"
    DECISION = "decision"
    REVEAL = "reveal"
    WEIGHTS = "weights"
    CANCELLATION = "cancellation"


def predicate_type(kind: Kind) -> str:
    return f"{_PREDICATE_PREFIX}{kind.value}/{PREDICATE_VERSION}"


def kind_of(statement: dict[str, Any]) -> Kind:
    """The kind of a statement from its predicate type; ValueError for anything else."""
    if statement.get("_type") != STATEMENT_TYPE_URI:
        raise ValueError(f"not an in-toto Statement v1 (_type is {statement.get('_type')!r})")
    found = statement.get("predicateType", "")
    for kind in Kind:
        if found == predicate_type(kind):
            return kind
    raise ValueError(f"unknown predicate type {found!r}")


def subject(name: str, sha256: str) -> dict[str, Any]:
    return {"name": name, "digest": {"sha256": sha256}}


# How a run (and evaluation) statement names each file of its artifact: ``artifact/<relative path>``.
ARTIFACT_SUBJECT = "artifact/"


def artifact_files(statement: dict[str, Any]) -> dict[str, str]:
    """The artifact files a run statement names, by relative path, with their sha256 (none: no artifact)."""
    return {s["name"].removeprefix(ARTIFACT_SUBJECT): s["digest"]["sha256"]
            for s in statement["subject"] if s["name"].startswith(ARTIFACT_SUBJECT)}  # fmt: skip


def make_statement(kind: Kind, subjects: list[dict[str, Any]], predicate: dict[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1 as a plain dict, checked by the in-toto package (ValueError if malformed)."""
    descriptors = [ResourceDescriptor(name=s["name"], digest=dict(s["digest"])).pb for s in subjects]
    Statement(descriptors, predicate_type(kind), _as_struct(predicate)).validate()
    return {"_type": STATEMENT_TYPE_URI, "subject": subjects, "predicateType": predicate_type(kind), "predicate": predicate}


def _as_struct(value: Any) -> Any:
    """The predicate as protobuf's Struct accepts it, for the shape check only (big ints as text)."""
    if isinstance(value, dict):
        return {str(k): _as_struct(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_struct(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def payload_digest(statement: dict[str, Any]) -> str:
    """SHA-256 hex of a statement's canonical JSON: how one record names another."""
    return hashlib.sha256(canonical_json(statement)).hexdigest()


def commitment_hash(task: str, split_seed: int, salt: str, noise_seed: int | None = None) -> str:
    """What the commitment publishes for one task's split seed (and an image task's noise seed): SHA-256
    over the task's name, the seeds and a random salt (the salt keeps a small seed space from being
    searched). Without a noise seed (other types; records from before image tasks had their own) the
    hash is over the name, the split seed and the salt alone."""
    opened: dict[str, Any] = {"task": task, "split_seed": split_seed, "salt": salt}
    if noise_seed is not None:
        opened["noise_seed"] = noise_seed
    return hashlib.sha256(canonical_json(opened)).hexdigest()
