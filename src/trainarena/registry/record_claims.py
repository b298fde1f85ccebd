"""What ``trainarena models verify`` checks of the signed records beside the model's files: that the
model was trained on the customer's file, that its score is the signed one, and that the records are
in the operator's public log. Each claim is reported on its own (``download_check.ClaimCheck``):

- ``dataset``: the sha256 of a local file (``--dataset``) against the uploaded file's sha256 the run
  record signs (``task.upload``; a record made before it named the upload cannot say);
- ``score``: the model's score against the signed evaluation statement's, that statement naming the
  run record (its payload digest) as its run;
- ``inclusion``: each statement's entry in the tree a signed tree head states, by the entry's inclusion
  proof, checked as ``trainarena verify`` checks a bundle's (``records.verify_log.check_inclusion``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from securesystemslib.signer import SSlibKey

from trainarena.records.merkle import ProofError
from trainarena.records.signing import SignatureError
from trainarena.records.statements import kind_of, payload_digest
from trainarena.records.verify_log import check_inclusion, open_tree_head
from trainarena.registry.download_check import FAILED, NOT_CHECKED, PASSED, ClaimCheck, SignedRecord

__all__ = ["dataset_claim", "inclusion_claim", "record_claims", "score_claim"]

_EVALUATION_HINT = "give --evaluation: its entry from `GET /v1/records/entries?job_id=ID&kind=evaluation`"
_HEAD_HINT = "give --tree-head: `GET /v1/records/tree-head?size=N`, N the record's tree_size, and --key"


def record_claims(model: Mapping[str, Any], record: SignedRecord | None, evaluation: SignedRecord | None,
                  head: dict[str, Any] | None, key: SSlibKey | None, dataset: Path | None) -> tuple[ClaimCheck, ...]:
    """Every claim, in the order they are reported. OSError when ``dataset`` cannot be read."""
    entries = [signed for signed in (record, evaluation) if signed is not None]
    return (dataset_claim(record, dataset), score_claim(model, record, evaluation), inclusion_claim(entries, head, key))


def dataset_claim(record: SignedRecord | None, dataset: Path | None) -> ClaimCheck:
    if dataset is None:
        return ClaimCheck("dataset", NOT_CHECKED, "give --dataset FILE: the file you uploaded")
    if record is None:
        return ClaimCheck("dataset", NOT_CHECKED, "no run record to compare it with (give --record)")
    task = record.statement["predicate"].get("task")
    upload = task.get("upload") if isinstance(task, dict) else None
    signed = upload.get("sha256") if isinstance(upload, dict) else None
    if not isinstance(signed, str):
        return ClaimCheck("dataset", FAILED, "the run record names no uploaded file (a job's record made before "
                          "records named it, or a run of no job): it cannot say what the model was trained on")
    with dataset.open("rb") as handle:
        found = hashlib.file_digest(handle, "sha256").hexdigest()
    if found != signed:
        return ClaimCheck("dataset", FAILED, f"{dataset.name} has sha256 {found}, the signed record's file "
                          f"{upload.get('file_id')} {signed}: the model was not trained on this file")
    return ClaimCheck("dataset", PASSED, f"{dataset.name} is the signed record's file {upload.get('file_id')} (sha256 {signed})")


def score_claim(model: Mapping[str, Any], record: SignedRecord | None, evaluation: SignedRecord | None) -> ClaimCheck:
    score = model.get("score")
    if evaluation is None:
        if score is None:
            return ClaimCheck("score", PASSED, "the model claims no score (no rows were held out to measure one)")
        return ClaimCheck("score", NOT_CHECKED, f"the model's score {score} is not compared: {_EVALUATION_HINT}")
    if record is None:
        return ClaimCheck("score", NOT_CHECKED, "no run record to tie the evaluation to (give --record)")
    run, named = record.statement["predicate"]["run"], evaluation.statement["predicate"]["run"]
    if (named["id"], named["attempt"]) != (run["id"], run.get("attempt")):
        return ClaimCheck("score", FAILED, f"the evaluation is of run {named['id']} attempt {named['attempt']}, "
                          f"the record of run {run['id']} attempt {run.get('attempt')}")
    if named["statement"]["payload_sha256"] != payload_digest(record.statement):
        return ClaimCheck("score", FAILED, "the evaluation names another run statement than the record (its payload digest differs)")
    signed = evaluation.statement["predicate"]["score"]
    if score is not None and score != signed:
        return ClaimCheck("score", FAILED, f"the model's score is {score}, the signed evaluation's {signed}")
    if score is None:
        return ClaimCheck("score", PASSED, f"the model claims no score; the signed evaluation's is {signed}")
    return ClaimCheck("score", PASSED, f"{score}, as the signed evaluation states")


def inclusion_claim(entries: list[SignedRecord], head: dict[str, Any] | None, key: SSlibKey | None) -> ClaimCheck:
    if not entries:
        return ClaimCheck("inclusion", NOT_CHECKED, "no record to prove (give --record)")
    if head is None or key is None:
        return ClaimCheck("inclusion", NOT_CHECKED, _HEAD_HINT)
    try:
        size, root = open_tree_head(head, key)
    except (SignatureError, ValueError) as error:
        return ClaimCheck("inclusion", FAILED, f"the tree head cannot be trusted: {error}")
    proved = []
    for signed in entries:
        what = f"the {kind_of(signed.statement).value} record"
        if signed.index is None or signed.inclusion_proof is None:
            return ClaimCheck("inclusion", FAILED, f"{what} has no index and inclusion proof (save the entry as "
                              "`GET /v1/records/entries/{index}` answers it)")
        if signed.tree_size != size:
            return ClaimCheck("inclusion", FAILED, f"{what}'s proof is in the tree of {signed.tree_size} entries, "
                              f"the signed tree head's has {size} (`GET /v1/records/tree-head?size={signed.tree_size}`)")
        try:
            check_inclusion(signed.envelope, signed.index, size, signed.inclusion_proof, root)
        except (ProofError, ValueError, TypeError) as error:
            return ClaimCheck("inclusion", FAILED, f"{what} (entry {signed.index}) is not in the log the tree head signs: {error}")
        proved.append(f"entry {signed.index}")
    return ClaimCheck("inclusion", PASSED, f"{' and '.join(proved)} in the signed tree of {size} entries")
