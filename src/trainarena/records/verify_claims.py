"""The database half of ``trainarena verify`` (pure): ``claims.json`` (what the operator's database
said at export) against the signed statements, and artifact folders against their run statements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainarena.records.checks import CheckResult, RecordView, brief, reading, short_digest
from trainarena.records.statements import Kind, artifact_files

__all__ = ["check_artifacts", "check_claims"]


def _check_claimed_run(view: RecordView, check: CheckResult, claim: dict[str, Any]) -> None:
    key = (claim["run_id"], claim["attempt"])
    run = view.runs.get(key)
    if run is None:
        check.fail(f"claims.json run {key[0]}, attempt {key[1]}", "the database has this run, the bundle no signed run statement of it")
        return
    with reading(check, run.label):  # claims.json's item is well formed (_claimed_items): a field missing is the statement's
        signed = run.predicate
        for what, claimed, said in (("status", claim["status"], signed["exit"]["status"]),
                                    ("run status", claim.get("run_status", claim["status"]), signed["exit"]["status"]),
                                    ("artifact sha256", claim["artifact_sha256"], signed["artifact_sha256"]),
                                    ("competitor", claim["competitor"], signed["submission"].get("name", claim["competitor"]))):
            if claimed != said:
                check.fail(run.label, f"{what}: the database says {brief(claimed)}, the signed run statement {brief(said)}")
    evaluation = view.evaluations.get(key)
    if evaluation is None:
        if claim["score"] is not None:
            check.fail(run.label, f"score: the database says {claim['score']}, the bundle has no signed evaluation of it")
    else:
        for what in ("score", "direction", "lead_unit"):
            if what in claim and claim[what] != evaluation.predicate.get(what):
                check.fail(evaluation.label, f"{what}: the database says {claim[what]}, the signed evaluation {evaluation.predicate.get(what)}")


# What a registration is: a change to any of these after the commitment changes who was entered.
REGISTRATION = ("repo", "commit", "tree_hash", "source_digest", "entrypoint", "hotkey")


def _check_entrants(view: RecordView, check: CheckResult, claimed: list[dict[str, Any]]) -> None:
    """The database's registrations of the entrants and the defending champion against the commitment's
    (``claimed``: the well-formed entrants of claims.json, :func:`_claimed_items`)."""
    commitment = view.single.get(Kind.COMMITMENT)
    if commitment is None:
        return
    signed: dict[str, Any] = {}
    with reading(check, commitment.label):
        signed = {e["name"]: e for e in commitment.predicate["entrants"]}
        defender = commitment.predicate.get("champion_before_registration")
        if defender is not None:
            signed[defender["name"]] = defender
    for entrant in claimed:
        check.checked += 1
        committed = signed.get(entrant["name"])
        if not isinstance(committed, dict):
            continue  # an older commitment named only the challengers (a malformed one failed above)
        for field in REGISTRATION:
            if field in committed and entrant.get(field) != committed[field]:
                check.fail(commitment.label, f"{entrant['name']}'s {field}: the database says {brief(entrant.get(field))}, "
                           f"the signed commitment {brief(committed[field])}")


# What each item of claims.json's lists must hold for the checks to read it: field -> (types, in words).
_NULL = type(None)
_CLAIMED_RUN = {"run_id": ((int,), "a whole number"), "attempt": ((int,), "a whole number"), "status": ((str,), "a string"),
                "competitor": ((str, _NULL), "a string or null"), "artifact_sha256": ((str, _NULL), "a string or null"),
                "score": ((int, float, _NULL), "a number or null")}  # fmt: skip
_CLAIMED_ENTRANT = {"name": ((str,), "a string")}


def _claimed_items(check: CheckResult, claims: dict[str, Any], key: str, fields: dict[str, Any],
                   required: bool) -> list[dict[str, Any]]:  # fmt: skip
    """The items of claims.json's list ``key`` that hold ``fields``; each other one is a failure naming
    claims.json, the item and the field, in words. An absent list fails only when ``required``."""
    items = claims.get(key)
    if items is None and not required:
        return []
    if not isinstance(items, list):
        check.fail(f"claims.json {key}", "not a list" if key in claims else "missing")
        return []
    kept = []
    for number, item in enumerate(items):
        problem = _item_problem(item, fields)
        if problem is None:
            kept.append(item)
        else:
            check.fail(f"claims.json {key}[{number}]", problem)
    return kept


def _item_problem(item: Any, fields: dict[str, Any]) -> str | None:
    if not isinstance(item, dict):
        return "not an object"
    for name, (types, words) in fields.items():
        if name not in item:
            return f"no {name!r}"
        if isinstance(item[name], bool) or not isinstance(item[name], types):
            return f"{name!r} is {brief(item[name])}, not {words}"
    return None


def check_claims(view: RecordView, claims: Any) -> CheckResult:
    check = CheckResult("claims", "database claims vs the signed statements")
    if not isinstance(claims, dict):
        check.fail("claims.json", "missing or not a JSON object: nothing to compare the database with")
        return check
    claimed = set()
    for claim in _claimed_items(check, claims, "runs", _CLAIMED_RUN, required=True):
        check.checked += 1
        claimed.add((claim["run_id"], claim["attempt"]))
        _check_claimed_run(view, check, claim)
    # Bundles of older builds have no entrants in their claims.
    _check_entrants(view, check, _claimed_items(check, claims, "entrants", _CLAIMED_ENTRANT, required=False))
    for key, run in view.runs.items():
        if key not in claimed and key not in view.audits:  # an audit is no result of the tournament's
            check.fail(run.label, "signed, but the database no longer has this attempt counted for the tournament")
    stored = claims.get("weights")
    if not isinstance(stored, dict):
        check.fail("claims.json weights", "missing" if stored is None else "not an object")
        stored = {}
    decision = view.single.get(Kind.DECISION)
    if decision is not None:
        with reading(check, decision.label):
            check.checked += 1
            if claims.get("cancelled") is not None:
                check.fail(decision.label, "signed, but the database says the tournament was cancelled: a tournament ends once")
            champion = decision.predicate["decided"]["end"]["champion"]
            if claims.get("champion") != champion:
                check.fail(decision.label, f"champion: the database says {claims.get('champion')!r}, the signed decision {champion!r}")
            signed = decision.predicate["weights"]
            for name in sorted(set(signed) | set(stored)):
                check.checked += 1
                if stored.get(name) != signed.get(name):
                    check.fail(decision.label, f"weight of {name}: the database says {stored.get(name)}, the signed decision {signed.get(name)}")
    cancellation = view.single.get(Kind.CANCELLATION)
    if cancellation is not None:
        check.checked += 1
        if not isinstance(claims.get("cancelled"), dict):
            check.fail(cancellation.label, "signed, but the database does not say the tournament was cancelled")
        if claims.get("champion") is not None or stored:
            check.fail(cancellation.label, f"the database gives the cancelled tournament a champion ({claims.get('champion')!r}) "
                       f"or weights ({brief(stored)})")
    return check


def check_artifacts(view: RecordView, artifacts: Mapping[int, list[dict[str, Any]] | None]) -> CheckResult:
    check = CheckResult("artifacts", "artifact folders vs their run statements")
    for run_id, listing in artifacts.items():
        runs = [e for (rid, _), e in view.runs.items() if rid == run_id]
        if not runs:
            check.fail(f"artifact of run {run_id}", "the bundle has no run statement of this run")
            continue
        run = max(runs, key=lambda e: e.index)
        with reading(check, run.label):
            expected = artifact_files(run.statement)  # type: ignore[arg-type]
            if not expected:
                check.fail(run.label, "its statement names no artifact files: the run produced none")
                continue
            if listing is None:
                check.fail(f"artifact of run {run_id}", "the path given is not a folder")
                continue
            found = {f["name"]: f["digest"]["sha256"] for f in listing}
            check.checked += len(expected.keys() | found.keys())
            for name in sorted(expected.keys() & found.keys()):
                if expected[name] != found[name]:
                    check.fail(run.label, f"{name} changed: its sha256 is {short_digest(found[name])}, the statement says {short_digest(expected[name])}")
            for name in sorted(expected.keys() - found.keys()):
                check.fail(run.label, f"{name} is missing from the folder")
            for name in sorted(found.keys() - expected.keys()):
                check.fail(run.label, f"{name} is in the folder but not in the statement (an extra file)")
    return check
