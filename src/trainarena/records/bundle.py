"""``trainarena export``: one tournament's records as a self-contained bundle anyone can verify offline.

The bundle (a folder; ``records/verify.py`` checks it, docs/records.md documents it)::

    bundle.json       {"format": "trainarena-bundle/v1", "tournament": {id, name, kind}, "exported_at",
                       "log_id": the operator's keyid, "entries": [log indices exported],
                       "tree_size": size of the latest signed tree head}
    public_key.pem    the operator's public key (verify trusts it only when no --key is given)
    entries.jsonl     one log entry per line, in log order: {"index", "key", "kind", "envelope",
                      "inclusion_proof": [hex...]} (proof against the latest signed tree head)
    tree_heads.jsonl  the signed tree head right after each exported entry, and the latest, in size
                      order: {"size", "envelope", "consistency_proof": [hex...]} (from the
                      previous line's head; empty on the first line)
    per_example/<sha256>.json  the per-example scores of each exported evaluation (a JSON list), named
                      by the digest its signed statement gives
    claims.json       what the operator's database says *now*: {"runs": [{"run_id", "attempt",
                      "competitor", "status", "score", "artifact_sha256"}], "champion", "weights"},
                      and "cancelled": {"at", "reason"} for a tournament cancelled after it started

Exported: every log entry about the tournament (commitment, runs, evaluations, rounds, decision and
reveal, or its cancellation), and the run and evaluation statements of each audit of its runs whose statement names the run
it audits (``trainarena audit``; signed by the tournament's key: those another key signed, after a
``keys init --force``, are left out and named in what ``export_bundle`` returns). The exporter copies what the store
holds, as it is: a store whose log or results were changed still exports (proofs that no longer lead
to the signed root, claims that differ from the statements), so that ``verify`` can say what changed.
It never re-signs anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.records.merkle import CachedLeaves, ProofError, consistency_proof, inclusion_proof
from trainarena.records.recorder import tournament_json
from trainarena.records.signing import OperatorKeyError, SignatureError, envelope_keyid, envelope_payload, public_pem_for
from trainarena.records.statements import Kind
from trainarena.settings import Settings
from trainarena.store.database import Store
from trainarena.store.log_tables import LogEntry, TreeHead
from trainarena.store.models import Run, RunAttempt, RunOrigin, Tournament, TournamentStatus, WeightRow
from trainarena.store.records import load_tournament
from trainarena.store.tournaments import unknown_tournament

__all__ = [
    "BUNDLE_FORMAT", "BundleError", "CLAIMS", "ENTRIES", "MANIFEST", "PER_EXAMPLE", "PUBLIC_KEY", "TREE_HEADS",
    "Exported", "LeftOutAudit", "audit_left_out", "export_bundle",
]

BUNDLE_FORMAT = "trainarena-bundle/v1"
MANIFEST = "bundle.json"
PUBLIC_KEY = "public_key.pem"
ENTRIES = "entries.jsonl"
TREE_HEADS = "tree_heads.jsonl"
PER_EXAMPLE = "per_example"
CLAIMS = "claims.json"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class BundleError(ValueError):
    """A bundle that cannot be exported: the folder is not empty, or there is nothing to export."""


@dataclass(frozen=True)
class LeftOutAudit:
    """An audit of one of the tournament's runs that its bundle cannot hold: its records are signed by
    another key than the tournament's (the operator key was replaced since), and a bundle is checked
    against one key."""

    run_id: int  # the audit's run
    audit_of: int | None  # the run it audits
    signed_by: str  # its records' key id
    tournament_key: str  # the tournament's records' key id

    @property
    def reason(self) -> str:
        return f"signed by key {self.signed_by[:16]}, not the tournament's {self.tournament_key[:16]}"

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "audit_of": self.audit_of, "signed_by": self.signed_by,
                "tournament_key": self.tournament_key, "reason": self.reason}


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the folder, the tournament, how many entries and tree heads, and the
    audits of its runs it left out."""

    directory: Path
    tournament: dict[str, Any]
    entries: int
    tree_heads: int
    audits_left_out: tuple[LeftOutAudit, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "tournament": self.tournament, "entries": self.entries,
                "tree_heads": self.tree_heads, "audits_left_out": [audit.to_json() for audit in self.audits_left_out]}


def export_bundle(store_or_session: Store | Session, settings: Settings, tournament_id: int, directory: Path) -> Exported:
    """Write tournament ``tournament_id``'s bundle into ``directory`` (new or empty); BundleError when it
    is not empty, when the tournament has no log entries or when the operator's key is missing."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BundleError(f"{directory} is not an empty folder: export writes a new bundle; name a new folder "
                          "or empty this one")
    opened = store_or_session.session() if isinstance(store_or_session, Store) else nullcontext(store_or_session)
    with opened as session:
        keyid = _signing_keyid(session, tournament_id)
        try:
            public = public_pem_for(settings.operator_key_path, keyid)
        except OperatorKeyError as error:
            raise BundleError(f"the operator's key is needed for its public half: {error}") from None
        if public is None:
            raise BundleError(f"tournament {tournament_id}'s records are signed with key {keyid[:16]}, which is neither "
                              f"the operator key at {settings.operator_key_path} nor one it replaced (retired-keys/)")
        content = _collect(session, tournament_id, keyid)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {"format": BUNDLE_FORMAT, "tournament": content["tournament"],
                "exported_at": datetime.now(UTC).isoformat(timespec="seconds"), "log_id": keyid,
                "entries": [line["index"] for line in content["entries"]], "tree_size": content["tree_size"]}
    _write_json(directory / MANIFEST, manifest)
    (directory / PUBLIC_KEY).write_text(public)
    _write_lines(directory / ENTRIES, content["entries"])
    _write_lines(directory / TREE_HEADS, content["tree_heads"])
    (directory / PER_EXAMPLE).mkdir()
    for digest, values in content["per_example"].items():
        _write_json(directory / PER_EXAMPLE / f"{digest}.json", values)
    _write_json(directory / CLAIMS, content["claims"])
    return Exported(directory, content["tournament"], len(content["entries"]), len(content["tree_heads"]),
                    content["audits_left_out"])


def audit_left_out(session: Session, audit_run_id: int) -> LeftOutAudit | None:
    """Why audit run ``audit_run_id``'s records cannot join the bundle of the tournament of the run it
    audits (``export`` leaves them out: signed by another key), or None when they can or when that run
    was played in no tournament."""
    run = session.get(Run, audit_run_id)
    if run is None or run.audit_of_id is None:
        return None
    tournament_id = session.scalar(select(LogEntry.tournament_id).where(
        LogEntry.run_id == run.audit_of_id, LogEntry.tournament_id.is_not(None)).limit(1))  # fmt: skip
    if tournament_id is None:
        return None
    try:
        keyid = _signing_keyid(session, tournament_id)
    except BundleError:  # no bundle of that tournament can be exported at all: export says why
        return None
    _, left_out = _audit_entries(session, tournament_id, keyid)
    return next((audit for audit in left_out if audit.run_id == audit_run_id), None)


def _tournament_entries(session: Session, tournament_id: int) -> list[LogEntry]:
    entries = list(session.scalars(select(LogEntry).where(LogEntry.tournament_id == tournament_id).order_by(LogEntry.index)))
    if not entries:
        raise BundleError(_nothing_recorded(session.get(Tournament, tournament_id), tournament_id))
    return entries


def _nothing_recorded(tournament: Tournament | None, tournament_id: int) -> str:
    """Why the log holds no entry about a tournament: it does not exist, it has not started (its records
    begin with its commitment, signed when it starts), or it ran with records off."""
    if tournament is None:
        return f"{unknown_tournament(str(tournament_id))}: neither the database nor the transparency log knows it"
    if tournament.status == TournamentStatus.CREATED:
        return (f"tournament {tournament_id} ({tournament.name}) has not started: nothing is recorded yet (its records "
                "begin when it starts); export it once it has run")
    why = ("it ran with records.enabled off" if tournament.status == TournamentStatus.FINISHED else
           "it runs with records.enabled off, or it started a moment ago and its commitment is not logged yet")
    return f"the transparency log holds no entry about tournament {tournament_id} ({tournament.name}): {why}"


def _signing_keyid(session: Session, tournament_id: int) -> str:
    """The key that signed the tournament's records (one: a key replaced mid-tournament is refused)."""
    keyids = {envelope_keyid(e.envelope) for e in _tournament_entries(session, tournament_id)} - {None}
    if len(keyids) != 1:
        raise BundleError(f"tournament {tournament_id}'s records are signed by {len(keyids)} keys "
                          f"({', '.join(sorted(k[:16] for k in keyids))}): the operator key was replaced while it "
                          "ran, and a bundle is checked against one key")
    return keyids.pop()


def _latest_head(session: Session, keyid: str) -> TreeHead | None:
    """The latest tree head signed by ``keyid`` (after a key rotation the newest heads are the new key's)."""
    for head in session.scalars(select(TreeHead).order_by(TreeHead.size.desc())):
        if envelope_keyid(head.envelope) == keyid:
            return head
    return None


def _audit_entries(session: Session, tournament_id: int, keyid: str) -> tuple[list[LogEntry], list[LeftOutAudit]]:
    """The run and evaluation entries of the audits of the tournament's runs, signed by ``keyid``, whose
    run statement names the audited run (an audit recorded before statements did so is not exported:
    nothing in it ties it to the tournament); and the audits naming it whose records another key
    signed, left out."""
    played = select(LogEntry.run_id).where(LogEntry.tournament_id == tournament_id, LogEntry.run_id.is_not(None))
    audits = select(Run.id).where(Run.origin == RunOrigin.AUDIT, Run.audit_of_id.in_(played))
    found = list(session.scalars(select(LogEntry).where(LogEntry.run_id.in_(audits)).order_by(LogEntry.index)))
    naming = {e.run_id for e in found if e.kind == Kind.RUN.value and isinstance(_predicate(e).get("run"), dict)
              and _predicate(e)["run"].get("audit_of") is not None}  # fmt: skip
    signed = [e for e in found if envelope_keyid(e.envelope) == keyid]
    kept = {e.run_id for e in signed if e.run_id in naming and e.kind == Kind.RUN.value}
    left_out: dict[int, LeftOutAudit] = {}
    for entry in found:
        signer = envelope_keyid(entry.envelope)
        if entry.run_id in naming and entry.run_id not in kept and signer not in (None, keyid) and entry.run_id not in left_out:
            audited = session.get_one(Run, entry.run_id).audit_of_id
            left_out[entry.run_id] = LeftOutAudit(entry.run_id, audited, signer, keyid)
    return [e for e in signed if e.run_id in kept], list(left_out.values())


def _collect(session: Session, tournament_id: int, keyid: str) -> dict[str, Any]:
    audit_entries, audits_left_out = _audit_entries(session, tournament_id, keyid)
    entries = sorted([*_tournament_entries(session, tournament_id), *audit_entries], key=lambda entry: entry.index)
    latest = _latest_head(session, keyid)
    if latest is None:
        raise BundleError("the transparency log has no tree head signed by the tournament's key: its tree_head "
                          "table was emptied")
    # The head signed right after each exported entry (it dates the entry) and the latest one: a busy log
    # signs a head per append, and the heads between add nothing a consistency proof does not show.
    sizes = {e.index + 1 for e in entries} | {latest.size}
    heads = list(session.scalars(select(TreeHead).where(TreeHead.size.in_(sizes)).order_by(TreeHead.size)))
    # The leaves as the store holds them now, in index order: a removed or reordered row changes them,
    # and the proofs built from them then fail against the roots signed before.
    leaves = [bytes.fromhex(value) for value in session.scalars(select(LogEntry.leaf_hash).order_by(LogEntry.index))]
    latest_leaves = CachedLeaves(leaves[: latest.size])
    lines = [{"index": e.index, "key": e.key, "kind": e.kind, "envelope": e.envelope,
              "inclusion_proof": _hexes(_inclusion(latest_leaves, e.index))} for e in entries]
    head_lines = []
    for position, head in enumerate(heads):
        proof = [] if position == 0 else _consistency(leaves[: head.size], heads[position - 1].size)
        head_lines.append({"size": head.size, "envelope": head.envelope, "consistency_proof": _hexes(proof)})
    tournament = session.get(Tournament, tournament_id)
    about = tournament_json(tournament) if tournament is not None else _tournament_from_log(entries)
    return {"tournament": about, "tree_size": latest.size, "entries": lines, "audits_left_out": tuple(audits_left_out),
            "tree_heads": head_lines, "per_example": _per_example(session, entries),
            "claims": _claims(session, tournament_id) if tournament is not None else {"runs": [], "champion": None, "weights": {}}}


def _inclusion(leaves: Sequence[bytes], index: int) -> list[bytes]:
    try:
        return inclusion_proof(leaves, index)
    except ProofError:  # the entry's leaf is missing from the store: no proof to give, verify says so
        return []


def _consistency(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    try:
        return consistency_proof(leaves, old_size)
    except ProofError:
        return []


def _hexes(values: list[bytes]) -> list[str]:
    return [value.hex() for value in values]


def _predicate(entry: LogEntry) -> dict[str, Any]:
    """An entry's predicate as stored (unchecked: verify checks it); empty when it does not decode."""
    try:
        predicate = envelope_payload(entry.envelope).get("predicate")
    except (SignatureError, AttributeError):
        return {}
    return predicate if isinstance(predicate, dict) else {}


def _tournament_from_log(entries: list[LogEntry]) -> dict[str, Any]:
    """The tournament as its statements name it, when its row is gone from the store."""
    for entry in entries:
        if isinstance(_predicate(entry).get("tournament"), dict):
            return _predicate(entry)["tournament"]
    return {"id": entries[0].tournament_id, "name": None, "kind": None}


def _per_example(session: Session, entries: list[LogEntry]) -> dict[str, list[Any]]:
    """The stored per-example scores of each evaluation, under the digest its statement names."""
    found: dict[str, list[Any]] = {}
    for entry in entries:
        if entry.kind != Kind.EVALUATION.value or entry.run_id is None:
            continue
        predicate = _predicate(entry)
        number = predicate.get("run", {}).get("attempt") if isinstance(predicate.get("run"), dict) else None
        attempt = session.scalar(select(RunAttempt).where(RunAttempt.run_id == entry.run_id, RunAttempt.number == number))
        digest = predicate.get("per_example_sha256")
        # Only a SHA-256 hex names a file: a digest edited into the store must not name a path.
        if attempt is not None and attempt.evaluation is not None and isinstance(digest, str) and SHA256_HEX.fullmatch(digest):
            found[digest] = list(attempt.evaluation.per_example)
    return found


def _claims(session: Session, tournament_id: int) -> dict[str, Any]:
    """The tournament's results as the database holds them now: each counted attempt, the entrants' and
    the defending champion's registrations, the champion, the weights."""
    tournament = load_tournament(session, tournament_id)
    runs = []
    for round_row in tournament.rounds:
        for match in round_row.matches:
            for task in match.tasks:
                for run in task.runs:
                    attempt = run.counted_attempt
                    if attempt is None:
                        continue
                    evaluation = attempt.evaluation
                    runs.append({"run_id": run.id, "attempt": attempt.number,
                                 "competitor": None if run.competitor is None else run.competitor.name,
                                 "status": attempt.status, "run_status": run.status,
                                 "score": None if evaluation is None else evaluation.score,
                                 "direction": None if evaluation is None else evaluation.direction,
                                 "lead_unit": None if evaluation is None else evaluation.lead_unit,
                                 "artifact_sha256": attempt.artifact_digest})
    weights = session.scalars(select(WeightRow).where(WeightRow.tournament_id == tournament_id).order_by(WeightRow.id))
    entrants = [{"name": c.name, "repo": c.repo_url, "commit": c.commit, "tree_hash": c.tree_hash,
                 "source_digest": c.source_digest, "entrypoint": c.entrypoint, "hotkey": c.hotkey}
                for c in [e.competitor for e in tournament.entrants]
                + ([tournament.champion_before] if tournament.champion_before is not None else [])]
    claims = {"runs": runs, "entrants": entrants,
              "champion": None if tournament.champion_after is None else tournament.champion_after.name,
              "weights": {row.competitor.name: row.weight for row in weights}}
    if tournament.status == "cancelled":  # by the operator after it started: signed as a cancellation, never decided
        claims["cancelled"] = {"at": None if tournament.finished_at is None else tournament.finished_at.isoformat(),
                               "reason": tournament.outcome_reason}
    return claims


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _write_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    with path.open("w") as out:
        for line in lines:
            out.write(json.dumps(line, sort_keys=True, allow_nan=False) + "\n")
