"""The log half of ``trainarena verify`` (pure): the key, the signed tree heads (their sizes and times
only grow) and their consistency, each entry's signature, statement and inclusion proof. Returns the
opened entries for the record checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from securesystemslib.signer import SSlibKey

from trainarena.records.checks import Bundle, CheckResult, Entry, describe, malformed
from trainarena.records.log import TIME_RULE, TREE_HEAD_TYPE, entry_leaf_hash
from trainarena.records.merkle import ProofError, verify_consistency, verify_inclusion
from trainarena.records.signing import OperatorKeyError, SignatureError, envelope_payload, open_envelope, public_key_from_pem
from trainarena.records.statements import PAYLOAD_TYPE, Kind, kind_of

__all__ = ["LogChecks", "check_inclusion", "check_log", "entry_key", "open_tree_head"]


@dataclass(frozen=True)
class LogChecks:
    keyid: str | None
    checks: list[CheckResult]
    entries: list[Entry]


@dataclass(frozen=True)
class _Head:
    size: int
    root: bytes | None
    label: str


def _short(keyid: object) -> str:
    return "none" if keyid is None else str(keyid)[:16]  # what a tampered bundle holds may be no string


def _signers(envelopes: list[Any]) -> set[str]:
    """The key ids the envelopes' signatures name (what signed them, as they say)."""
    found = set()
    for envelope in envelopes:
        signatures = envelope.get("signatures") if isinstance(envelope, dict) else None
        for signature in signatures if isinstance(signatures, list) else []:
            found.add(str(signature.get("keyid") if isinstance(signature, dict) else None))
    return found


def _check_key(bundle: Bundle, trusted_pem: str | None) -> tuple[SSlibKey | None, CheckResult]:
    check = CheckResult("key", "public key the records are signed with", checked=1)
    bundled = trusted = None
    try:
        bundled = None if bundle.public_key_pem is None else public_key_from_pem(bundle.public_key_pem)
    except OperatorKeyError as error:
        check.fail("public_key.pem", str(error))
    if trusted_pem is not None:
        try:
            trusted = public_key_from_pem(trusted_pem)
        except OperatorKeyError as error:
            check.fail("--key", str(error))
            return None, check
    key = trusted or bundled
    signers = _signers([e.get("envelope") for e in bundle.entries] + [h.get("envelope") for h in bundle.tree_heads])
    named = ", ".join(sorted(_short(s) for s in signers)) or "nobody"
    if trusted is not None and bundled is not None and bundled.keyid != trusted.keyid:
        check.fail("public_key.pem", f"the bundle's public key is {_short(bundled.keyid)}, not the trusted key "
                   f"{_short(trusted.keyid)} given with --key; its records are signed with {named}")
    elif key is not None and signers and signers != {key.keyid}:
        check.fail("signatures", f"the records are signed with {named}, not with the key {_short(key.keyid)}")
    log_id = bundle.manifest.get("log_id")
    if key is not None and not bundle.manifest_unread(check, "its log_id against the key") and log_id != key.keyid:
        said = "names no log_id" if log_id is None else f"log_id is {_short(log_id)}"
        check.fail("bundle.json", f"{said}, the key is {_short(key.keyid)}")
    if key is None:
        check.fail("public_key.pem", "no public key: the bundle has none and no --key was given")
    return key, check


def _payload(envelope: Any) -> Any:
    """An envelope's payload, unchecked; None when it does not decode."""
    try:
        return envelope_payload(envelope)
    except SignatureError:
        return None


def _open(envelope: Any, key: SSlibKey | None, payload_type: str, record: str, check: CheckResult) -> Any:
    """The payload, checked against ``key`` (a failure is noted and the unchecked payload returned, so the
    other checks still say what they find); None when it does not decode at all."""
    check.checked += 1
    try:
        if key is None:
            raise SignatureError("no key to check it with")
        return open_envelope(envelope, key, payload_type)
    except SignatureError as error:
        if key is not None and key.keyid in _signers([envelope]):
            check.fail(record, f"the signature of key {_short(key.keyid)} does not match the content: it was changed after signing")
        else:
            check.fail(record, f"signature does not verify: {error}")
    return _payload(envelope)


def _signed_time(payload: dict[str, Any], label: str, check: CheckResult) -> datetime | None:
    """The head's timestamp (ISO 8601 with a zone); a missing or unreadable one is a failure."""
    value = payload.get("timestamp")
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        check.fail(label, f"timestamp {value!r} is not an ISO 8601 time with a zone")
        return None
    return moment


def _check_heads(bundle: Bundle, key: SSlibKey | None) -> tuple[_Head | None, CheckResult, CheckResult]:
    heads_check = CheckResult("tree_heads", "signed tree heads (signature, size and time growth)")
    consistency = CheckResult("consistency", "consistency between tree heads (append-only)")
    previous: _Head | None = None
    last_signed: tuple[datetime, str] | None = None  # the latest head time read so far, and its head
    for line in bundle.tree_heads:
        label = f"tree head of size {line.get('size')}"
        payload = _open(line.get("envelope"), key, TREE_HEAD_TYPE, label, heads_check)
        if not isinstance(payload, dict):
            heads_check.fail(label, "its envelope does not decode")
            continue
        try:
            root = bytes.fromhex(payload["root_hash"])
        except (KeyError, TypeError, ValueError):
            heads_check.fail(label, f"root_hash {payload.get('root_hash')!r} is not a hex hash")
            root = None
        size = payload.get("tree_size")
        if size != line.get("size"):
            heads_check.fail(label, f"the signed head says size {size}, the line says {line.get('size')}")
        if key is not None and payload.get("log_id") != key.keyid:
            heads_check.fail(label, f"log_id is {_short(payload.get('log_id'))}, the key is {_short(key.keyid)}")
        signed = _signed_time(payload, label, heads_check)
        if signed is not None and last_signed is not None and signed < last_signed[0]:
            back = (f"signed at {signed.isoformat()}, before the {last_signed[1]} signed at "
                    f"{last_signed[0].isoformat()}")
            if payload.get("time_rule") == TIME_RULE:
                heads_check.fail(label, f"{back}: a log's time only moves forward")
            else:  # signed before heads promised it: the operator's clock stepped back, no rule broken
                heads_check.note(label, f"{back} (signed before tree heads promised {TIME_RULE} times)")
        if signed is not None:
            last_signed = (signed, label)
        if not isinstance(size, int):
            continue
        head = _Head(size, root, label)
        if previous is not None:
            if size <= previous.size:
                heads_check.fail(label, f"follows the head of size {previous.size}: a log's size only grows")
            elif previous.root is not None and root is not None:
                consistency.checked += 1
                try:
                    verify_consistency(previous.size, size, previous.root, root, _hashes(line.get("consistency_proof")))
                except (ProofError, ValueError, TypeError) as error:
                    consistency.fail(label, f"not consistent with the head of size {previous.size}: {error}")
        previous = head
    if previous is None:
        heads_check.fail("tree_heads.jsonl", "no signed tree head: nothing to prove the entries against")
    elif not bundle.manifest_unread(heads_check, "its tree_size against the latest head") and (
        (size := bundle.manifest.get("tree_size")) != previous.size
    ):
        said = "names no tree_size" if size is None else f"tree_size is {size}"
        heads_check.fail("bundle.json", f"{said}, the latest signed head's is {previous.size}")
    return previous, heads_check, consistency


def _hashes(values: Any) -> list[bytes]:
    if not isinstance(values, list):
        raise ValueError(f"a proof is a list of hex hashes, not {type(values).__name__}")
    return [bytes.fromhex(value) for value in values]


def check_inclusion(envelope: Any, index: int, tree_size: int, proof: Any, root: bytes) -> None:
    """That the entry of ``envelope`` is leaf ``index`` of the tree of ``tree_size`` entries whose root
    is ``root``, by its RFC 6962 inclusion proof (hex hashes, as the API and a bundle give it).
    ProofError, ValueError or TypeError saying why not."""
    verify_inclusion(entry_leaf_hash(envelope), index, tree_size, _hashes(proof), root)


def open_tree_head(envelope: Any, key: SSlibKey) -> tuple[int, bytes]:
    """The size and root a signed tree head's envelope states, its signature checked with ``key``;
    SignatureError when it does not check out, ValueError when it states no size and root."""
    payload = open_envelope(envelope, key, TREE_HEAD_TYPE)
    size = payload.get("tree_size") if isinstance(payload, dict) else None
    if not isinstance(size, int) or isinstance(size, bool):
        raise ValueError("the signed tree head states no tree_size")
    try:
        return size, bytes.fromhex(payload["root_hash"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the signed tree head states no root_hash in hex") from None


def entry_key(statement: dict[str, Any]) -> str:
    """The log key the recorder files a statement under (``run:12:attempt:1``, ``tournament:3:round:0``)."""
    kind, predicate = kind_of(statement), statement["predicate"]
    if kind in (Kind.RUN, Kind.EVALUATION):
        return f"{kind.value}:{predicate['run']['id']}:attempt:{predicate['run']['attempt']}"
    tournament = predicate["tournament"]["id"]
    if kind is Kind.ROUND:
        return f"tournament:{tournament}:round:{predicate['plan']['index']}"
    return f"tournament:{tournament}:{kind.value}"


def _shape_problem(statement: dict[str, Any]) -> str | None:
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return "has no subject"
    for subject in subjects:
        digest = subject.get("digest", {}).get("sha256") if isinstance(subject, dict) else None
        if not isinstance(digest, str) or len(digest) != 64:
            return f"subject {subject!r} has no SHA-256 digest"
    if not isinstance(statement.get("predicate"), dict):
        return "has no predicate"
    return None


def _statement_problem(payload: Any, error: Exception) -> str:
    """Why a payload is no statement, in words: kind_of's own ValueErrors say it; Python's others do not."""
    if not isinstance(payload, dict):
        return "its payload is not a JSON object encoded in base64"
    return str(error) if type(error) is ValueError else malformed(error)


def _check_entries(bundle: Bundle, key: SSlibKey | None, latest: _Head | None) -> tuple[list[Entry], list[CheckResult]]:
    signatures = CheckResult("signatures", "entry signatures")
    statements = CheckResult("statements", "statements (shape, kind, log key)")
    inclusion = CheckResult("inclusion", "inclusion proofs against the latest head")
    entries: list[Entry] = []
    previous = -1
    for number, line in enumerate(bundle.entries, start=1):
        index = line.get("index")
        if not isinstance(index, int):
            statements.fail(f"entries.jsonl line {number}", f"index {index!r} is not a number")
            continue
        payload = _payload(line.get("envelope"))
        statements.checked += 1
        kind = None
        try:
            kind = kind_of(payload)
            label = f"entry {index} ({describe(payload)})"
            problem = _shape_problem(payload) or _label_problem(line, payload)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            label = f"entry {index} ({line.get('kind')} {line.get('key')})"
            problem = f"not a trainarena statement: {_statement_problem(payload, error)}"
        _open(line.get("envelope"), key, PAYLOAD_TYPE, label, signatures)
        if problem:
            statements.fail(label, problem)
        if index <= previous:
            statements.fail(label, f"out of log order in entries.jsonl: index {index} after index {previous}")
        previous = max(previous, index)
        entries.append(Entry(index, kind, payload if isinstance(payload, dict) else None, label))
        if latest is not None and latest.root is not None:
            inclusion.checked += 1
            try:
                check_inclusion(line.get("envelope"), index, latest.size, line.get("inclusion_proof"), latest.root)
            except (ProofError, ValueError, TypeError) as error:
                inclusion.fail(label, f"not in the log the latest head signs: {error}")
    listed = bundle.manifest.get("entries")
    if not bundle.manifest_unread(statements, "its list of entries against entries.jsonl") and listed != [e.index for e in entries]:
        said = "lists no entries" if listed is None else f"lists entries {_ranges(listed)}"
        statements.fail("bundle.json", f"{said}, entries.jsonl holds {_ranges([e.index for e in entries])}")
    return entries, [signatures, statements, inclusion]


def _label_problem(line: dict[str, Any], statement: dict[str, Any]) -> str | None:
    """The line's unsigned kind and key must say what the signed statement is."""
    kind, key = kind_of(statement).value, entry_key(statement)
    if line.get("kind") != kind:
        return f"the line says kind {line.get('kind')!r}, the signed statement is a {kind!r}"
    if line.get("key") != key:
        return f"the line says key {line.get('key')!r}, the signed statement is {key!r}"
    return None


def _ranges(indices: Any) -> str:
    if not isinstance(indices, list):
        return repr(indices)
    return "[" + ", ".join(str(i) for i in indices[:40]) + (", ..." if len(indices) > 40 else "") + "]"


def check_log(bundle: Bundle, trusted_pem: str | None) -> LogChecks:
    key, key_check = _check_key(bundle, trusted_pem)
    latest, heads, consistency = _check_heads(bundle, key)
    entries, entry_checks = _check_entries(bundle, key, latest)
    return LogChecks(None if key is None else key.keyid, [key_check, heads, consistency, *entry_checks], entries)
