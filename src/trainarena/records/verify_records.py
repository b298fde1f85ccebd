"""The record half of ``trainarena verify`` (pure): cross-references, per-example files, the bracket
and weights replayed with the engine, the commitment and its reveal, over the entries ``verify_log``
opened; the database's claims and artifact folders are in ``verify_claims``."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from trainarena.engine.bracket import Replay, replay
from trainarena.engine.model import Finished, TournamentRecord
from trainarena.engine.paired import task_lead_unit
from trainarena.engine.weights import tournament_weights
from trainarena.records.checks import MISSING, Bundle, CheckResult, Entry, RecordView, audited_run, brief, reading, short_digest
from trainarena.records.engine_json import per_example_digest, played_round_from_json, replay_json
from trainarena.records.signing import canonical_json
from trainarena.records.statements import Kind, commitment_hash, payload_digest
from trainarena.records.verify_claims import check_artifacts, check_claims
from trainarena.settings import TournamentRules, WeightRules

__all__ = ["check_records"]

# Differences between a signed decision and the replayed one listed per decision, at most.
MAX_DIFFERENCES = 12


def _resolve(view: RecordView, reference: Any, kind: Kind) -> tuple[Entry | None, str | None]:
    """The entry a ``{log_index, payload_sha256}`` reference names, or why it names none."""
    if not isinstance(reference, dict):
        return None, f"names no {kind.value} statement"
    index = reference.get("log_index")
    target = view.by_index.get(index) if isinstance(index, int) else None
    if target is None:
        return None, f"names the {kind.value} statement at entry {index}, which is not in the bundle"
    if target.kind is not kind or target.statement is None:
        return None, f"names the {kind.value} statement at entry {index}, which is {target.label}"
    found = payload_digest(target.statement)
    if found != reference.get("payload_sha256"):
        return None, (f"names {target.label} with payload digest {short_digest(reference.get('payload_sha256'))}, "
                      f"its payload's is {short_digest(found)}")
    return target, None


# --- Cross-references ------------------------------------------------------------------------------


def _engine_score(evaluation: Entry, run: Entry | None) -> float | None:
    """The score the engine takes from an evaluation: only a finite score of a succeeded run counts."""
    score = evaluation.predicate["score"]
    status = None if run is None else run.predicate["exit"]["status"]
    finite = isinstance(score, int | float) and math.isfinite(score)
    return score if finite and status == "succeeded" else None


def _check_outcome(view: RecordView, check: CheckResult, entry: Entry, where: str, outcome: dict[str, Any]) -> None:
    key = (outcome["run_id"], outcome["attempt"])
    run = view.runs.get(key)
    if outcome["attempt"] is not None:
        check.checked += 1
        if run is None:
            check.fail(entry.label, f"{where}: run {key[0]}, attempt {key[1]} has no run statement in the bundle")
        elif run.predicate["submission"].get("name") not in (None, outcome["competitor"]):
            check.fail(entry.label, f"{where}: {run.label} is by {run.predicate['submission'].get('name')}")
    if outcome.get("evaluation") is None:
        if outcome["score"] is not None:
            check.fail(entry.label, f"{where}: a score of {outcome['score']} with no evaluation statement")
        return
    check.checked += 1
    evaluation, problem = _resolve(view, outcome["evaluation"], Kind.EVALUATION)
    if evaluation is None:
        check.fail(entry.label, f"{where}: {problem}")
        return
    signed = evaluation.predicate
    if (signed["run"]["id"], signed["run"]["attempt"]) != key:
        check.fail(entry.label, f"{where}: run {key[0]}, attempt {key[1]}, but it names {evaluation.label}")
    expected = _engine_score(evaluation, run)
    if outcome["score"] != expected:
        check.fail(entry.label, f"{where}: score {outcome['score']} in the round, {expected} in {evaluation.label}")
    for name in ("per_example_sha256", "per_example_count"):
        if outcome[name] != signed[name]:
            check.fail(entry.label, f"{where}: {name} {brief(outcome[name])} in the round, "
                       f"{brief(signed[name])} in {evaluation.label}")


def _check_lead_unit(view: RecordView, check: CheckResult, entry: Entry, where: str, task: dict[str, Any]) -> None:
    """The round's lead unit of a task is the one its scored evaluations sign, by the store's rule
    (``engine.paired.task_lead_unit``)."""
    signed = []
    for outcome in task["outcomes"]:
        evaluation = _resolve(view, outcome["evaluation"], Kind.EVALUATION)[0] if outcome.get("evaluation") else None
        if evaluation is not None and outcome["score"] is not None:
            signed.append(evaluation.predicate.get("lead_unit"))
    try:
        expected = task_lead_unit(signed, where)
    except ValueError as error:
        check.fail(entry.label, str(error))
        return
    if task.get("lead_unit") != expected:
        check.fail(entry.label, f"{where}: lead unit {task.get('lead_unit')} in the round, {expected} by its evaluations")


def _check_evaluation(view: RecordView, check: CheckResult, entry: Entry) -> None:
    check.checked += 1
    run, problem = _resolve(view, entry.predicate["run"]["statement"], Kind.RUN)
    if run is None:
        check.fail(entry.label, f"its run: {problem}")
        return
    if (run.predicate["run"]["id"], run.predicate["run"]["attempt"]) != (entry.predicate["run"]["id"], entry.predicate["run"]["attempt"]):
        check.fail(entry.label, f"names {run.label} as its run")
    if entry.statement is not None and run.statement is not None and entry.statement["subject"] != run.statement["subject"]:
        check.fail(entry.label, f"scores other files than {run.label} produced (the subjects differ)")


def _check_tournament_of(view: RecordView, check: CheckResult, entry: Entry) -> None:
    if entry.kind is Kind.EVALUATION or audited_run(entry.predicate) is not None:
        return  # its run statement says where it was played; an audit is about the run it names (the audits check)
    about = entry.predicate["run"]["place"]["tournament_id"] if entry.kind is Kind.RUN else entry.predicate["tournament"]["id"]
    if about != view.tournament_id:
        bundle = "bundle.json names no tournament" if view.tournament_id is None else f"the bundle about tournament {view.tournament_id}"
        check.fail(entry.label, f"is about tournament {about}, {bundle}")


def _check_references(view: RecordView, bundle: Bundle) -> CheckResult:
    check = CheckResult("references", "cross-references between records")
    for first, second in view.duplicates:
        check.fail(second.label, f"says the same as {first.label}: one statement each is expected")
    tournament_known = not bundle.manifest_unread(check, "the tournament each record is about")
    for entry in view.by_index.values():
        with reading(check, entry.label):
            if tournament_known:
                _check_tournament_of(view, check, entry)
            if entry.kind is Kind.EVALUATION:
                _check_evaluation(view, check, entry)
            elif entry.kind is Kind.ROUND:
                for match in entry.predicate["matches"]:
                    for number, task in enumerate(match["tasks"]):
                        for outcome in task["outcomes"]:
                            where = f"match {match['match_id']} task {number}, {outcome['competitor']}"
                            _check_outcome(view, check, entry, where, outcome)
                        _check_lead_unit(view, check, entry, f"match {match['match_id']} task {number}", task)
    for end in _ends(view):
        with reading(check, end.label):
            named = []
            for reference in end.predicate["rounds"]:
                check.checked += 1
                target, problem = _resolve(view, reference, Kind.ROUND)
                if target is None:
                    check.fail(end.label, f"its rounds: {problem}")
                else:
                    named.append(target.index)
            held = [r.index for r in view.rounds]
            if sorted(named) != sorted(held):
                check.fail(end.label, f"names round statements at entries {named}, the bundle holds them at {held}")
    for naming in (view.single.get(Kind.REVEAL), view.single.get(Kind.CANCELLATION)):
        if naming is not None:
            with reading(check, naming.label):
                check.checked += 1
                _, problem = _resolve(view, naming.predicate["commitment"], Kind.COMMITMENT)
                if problem:
                    check.fail(naming.label, f"its commitment: {problem}")
    return check


def _ends(view: RecordView) -> list[Entry]:
    """The statements of how the tournament ended: its decision, or its cancellation (one is expected)."""
    return [end for end in (view.single.get(Kind.DECISION), view.single.get(Kind.CANCELLATION)) if end is not None]


# --- Audits ----------------------------------------------------------------------------------------


def _score(entry: Entry | None) -> str:
    return "no score" if entry is None or entry.predicate.get("score") is None else f"{entry.predicate['score']:.6g}"


def _check_audit(view: RecordView, check: CheckResult, key: tuple[Any, Any], audit: Entry) -> None:
    audited = audited_run(audit.predicate) or {}
    named = f"run {audited.get('run_id')}, attempt {audited.get('attempt')}"
    target, problem = _resolve(view, audited.get("statement"), Kind.RUN)
    if target is None:
        check.fail(audit.label, f"audits {named}, but {problem}")
        return
    if (target.predicate["run"]["id"], target.predicate["run"]["attempt"]) != (audited.get("run_id"), audited.get("attempt")):
        check.fail(audit.label, f"audits {named}, but names {target.label} as its statement")
    if target.predicate["task"]["definition_digest"] != audit.predicate["task"]["definition_digest"]:
        check.fail(audit.label, f"ran task {short_digest(audit.predicate['task']['definition_digest'])}, the audited "
                   f"{target.label} task {short_digest(target.predicate['task']['definition_digest'])}")
    audited_key = (target.predicate["run"]["id"], target.predicate["run"]["attempt"])
    check.note(audit.label, f"audits {target.label}: {_score(view.evaluations.get(key))} against "
               f"{_score(view.evaluations.get(audited_key))} signed then")


def _check_audits(view: RecordView) -> CheckResult:
    """Each audit in the bundle (``trainarena audit``'s re-run of one of its runs) names a run statement
    the bundle holds, of the run and attempt it says, on the same task; each is noted with both scores."""
    check = CheckResult("audits", "audits name runs of the bundle")
    for key, audit in view.audits.items():
        check.checked += 1
        with reading(check, audit.label):
            _check_audit(view, check, key, audit)
    return check


# --- Per-example scores ----------------------------------------------------------------------------


# What a JSON value is, in a failure that says what a file holds instead of what it must.
_JSON_KINDS = ((bool, "true or false"), (dict, "a JSON object"), (list, "a list"), (str, "a string"), (type(None), "null"))
_DIGEST = re.compile(r"[0-9a-f]{64}")


def _json_kind(value: Any) -> str:
    return next((said for kind, said in _JSON_KINDS if isinstance(value, kind)), "a number")


def _per_example_problem(name: str, values: Any) -> str | None:
    """Why ``per_example/NAME.json`` holding ``values`` is not what a signed statement can name, or None:
    a list of finite numbers, one score per example, whose digest (``per_example_digest``) is its name."""
    shape = "is not a list of numbers (one score per example)"
    if not isinstance(values, list):
        return f"{shape}: it holds {_json_kind(values)}"
    wrong = next(((i, v) for i, v in enumerate(values) if isinstance(v, bool) or not isinstance(v, int | float)), None)
    if wrong is not None:
        return f"{shape}: item {wrong[0]} is {_json_kind(wrong[1])}"
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):  # no canonical JSON, so no digest can match
        return "holds a score that is not finite (NaN or an infinity): no digest names it"
    found = per_example_digest(values)
    if found == name:
        return None
    if not _DIGEST.fullmatch(name):
        return f"its name is no SHA-256 digest: a per-example file is named after its values' digest ({short_digest(found)})"
    return f"its values hash to {short_digest(found)}, not to the {short_digest(name)} its name and the signed statements give"


def _check_per_example(view: RecordView, files: Mapping[str, Any]) -> CheckResult:
    check = CheckResult("per_example", "per-example score files against digests")
    for name, values in files.items():
        check.checked += 1
        problem = _per_example_problem(name, values)
        if problem is not None:
            check.fail(f"per_example/{name}.json", problem)
    for entry in view.evaluations.values():
        with reading(check, entry.label):
            count, digest = entry.predicate["per_example_count"], entry.predicate["per_example_sha256"]
            if count and digest not in files:
                check.fail(entry.label, f"its {count} per-example scores (per_example/{digest}.json) are not in the bundle")
            elif count and isinstance(files[digest], list) and len(files[digest]) != count:
                check.fail(entry.label, f"per_example/{digest}.json holds {len(files[digest])} scores, the statement says {count}")
    return check


# --- The bracket and the weights, replayed ---------------------------------------------------------


# Engine output compared by its decisive fields: the wording of a reason may improve between versions.
WORDING = frozenset({"reason"})


def _differences(signed: Any, recomputed: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """Where the signed decision and the replay differ: every field the decision states is compared
    (fields a later engine adds, and the wording of reasons, are not)."""
    if isinstance(signed, dict) and isinstance(recomputed, dict):
        for key in sorted(set(signed), key=str):
            if key not in WORDING:
                yield from _differences(signed[key], recomputed.get(key, MISSING), f"{path}.{key}")
    elif isinstance(signed, list) and isinstance(recomputed, list) and len(signed) == len(recomputed):
        for position, (a, b) in enumerate(zip(signed, recomputed, strict=True)):
            yield from _differences(a, b, f"{path}[{position}]")
    elif signed != recomputed:
        yield path, signed, recomputed


def _plain(value: Any) -> Any:
    """A value as its JSON reads back (tuples as lists), so it compares with a signed one."""
    return json.loads(canonical_json(value))


def _replayed(view: RecordView, decision: Entry, files: Mapping[str, Any], bracket: CheckResult) -> Replay | None:
    """The engine's replay of the round statements under the decision's rules and record; None (with
    the failure noted) when they cannot be read or depart from the rules."""
    signed = decision.predicate
    with reading(bracket, decision.label):
        rules = TournamentRules.as_recorded(signed["rules"])
        values = {name: v for name, v in files.items() if isinstance(v, list)}
        rounds = tuple(played_round_from_json(r.predicate, values) for r in view.rounds)
        record = TournamentRecord(tuple(signed["entrants"]), int(signed["seed"]), int(signed["boss_tasks"]),
                                  signed["champion_before"], rounds)
        bracket.checked += 1
        try:
            return replay(record, rules)
        except ValueError as error:
            bracket.fail(decision.label, f"the round statements depart from the rules it names: {error}")
    return None


def _compare_bracket(view: RecordView, decision: Entry, replayed: Replay, bracket: CheckResult) -> None:
    differences = list(_differences(decision.predicate["decided"], _plain(replay_json(replayed)), "decided"))
    for path, said, recomputed in differences[:MAX_DIFFERENCES]:
        bracket.fail(decision.label, f"{path}: the decision says {brief(said)}, the replayed bracket gives {brief(recomputed)}")
    if len(differences) > MAX_DIFFERENCES:
        bracket.fail(decision.label, f"and {len(differences) - MAX_DIFFERENCES} more differences")
    _compare_advanced(view, replayed, bracket)


def _compare_advanced(view: RecordView, replayed: Replay, bracket: CheckResult) -> None:
    """Each round statement's ``advanced`` against the replayed bracket's."""
    for entry, decided in zip(view.rounds, replayed.rounds, strict=False):
        bracket.checked += 1
        if entry.predicate.get("advanced") != list(decided.advanced):
            bracket.fail(entry.label, f"says {brief(entry.predicate.get('advanced'))} advanced, the replayed "
                         f"bracket advances {brief(list(decided.advanced))}")


def _compare_weights(decision: Entry, finished: Finished, weights: CheckResult) -> None:
    signed = decision.predicate
    computed = tournament_weights(finished, list(signed["entrants"]), WeightRules(**signed["weight_rules"]))
    for name in sorted(set(computed.weights) | set(signed["weights"])):
        weights.checked += 1
        said, recomputed = signed["weights"].get(name), computed.weights.get(name)
        if said != recomputed:
            weights.fail(decision.label, f"weight of {name}: the decision says {said}, recomputed {recomputed}")
    if signed["undistributed"] != computed.undistributed:
        weights.fail(decision.label, f"undistributed: the decision says {signed['undistributed']}, recomputed {computed.undistributed}")


def _check_replay(view: RecordView, files: Mapping[str, Any]) -> list[CheckResult]:
    bracket = CheckResult("bracket", "bracket and champion replayed by the engine")
    weights = CheckResult("weights", "weights recomputed from the replayed end")
    decision, cancellation = view.single.get(Kind.DECISION), view.single.get(Kind.CANCELLATION)
    if decision is not None and cancellation is not None:
        bracket.fail(cancellation.label, f"cancels the tournament {decision.label} decided: a tournament ends once")
    elif cancellation is not None:
        _check_cancelled(view, cancellation, files, bracket)
        weights.note(cancellation.label, "cancelled: no weights were given")
        return [bracket, weights]
    if decision is None:
        bracket.fail("decision", "the bundle has no decision statement nor a cancellation: the tournament's end is not recorded")
        return [bracket, weights]
    replayed = _replayed(view, decision, files, bracket)
    if replayed is None:
        return [bracket, weights]
    with reading(bracket, decision.label):
        _compare_bracket(view, decision, replayed, bracket)
    if not isinstance(replayed.next, Finished):
        bracket.fail(decision.label, f"the replayed bracket has not finished: round {replayed.next.plan.index} is still to play")
        return [bracket, weights]
    with reading(weights, decision.label):
        _compare_weights(decision, replayed.next, weights)
    return [bracket, weights]


def _check_cancelled(view: RecordView, cancellation: Entry, files: Mapping[str, Any], bracket: CheckResult) -> None:
    """A cancelled tournament: the rounds it played replay under the rules its cancellation names, and
    nothing of it was logged after the cancellation (a driver stores nothing once it is cancelled)."""
    with reading(bracket, cancellation.label):
        bracket.note(cancellation.label, f"the tournament was cancelled at {cancellation.predicate['cancelled_at']}: "
                     f"{cancellation.predicate['reason']}; no champion was decided")
    replayed = _replayed(view, cancellation, files, bracket)
    if replayed is not None:
        _compare_advanced(view, replayed, bracket)
    for entry in [*view.rounds, *[e for key, e in [*view.runs.items(), *view.evaluations.items()] if key not in view.audits]]:
        bracket.checked += 1
        if entry.index > cancellation.index:
            bracket.fail(entry.label, f"logged after the tournament was cancelled ({cancellation.label})")


# --- Commitment, hidden splits, reveal ------------------------------------------------------------


def _check_commitment(view: RecordView) -> CheckResult:
    check = CheckResult("commitment", "commitment logged before every run")
    commitment, ends = view.single.get(Kind.COMMITMENT), _ends(view)
    if commitment is None:
        check.fail("commitment", "the bundle has no commitment: nothing shows the hidden data was fixed before the runs")
        return check
    for entry in [*view.runs.values(), *view.evaluations.values(), *view.rounds]:
        check.checked += 1
        if entry.index < commitment.index:
            check.fail(entry.label, f"logged before the commitment ({commitment.label})")
    for end in ends:
        with reading(check, commitment.label):
            check.checked += 1
            entrants = [e["name"] for e in commitment.predicate["entrants"]]
            if entrants != end.predicate["entrants"]:
                check.fail(commitment.label, f"commits to entrants {brief(entrants)}, {end.label} names "
                           f"{brief(end.predicate['entrants'])}")
            if commitment.predicate["champion_before"] != end.predicate["champion_before"]:
                check.fail(commitment.label, f"names defending champion {commitment.predicate['champion_before']!r}, "
                           f"{end.label} {end.predicate['champion_before']!r}")
    return check


def _committed_tasks(view: RecordView) -> dict[str, dict[str, Any]] | None:
    """The pool tasks the commitment names, by name; None when the tournament drew no pool (or its
    task list does not read: the commitment check says so)."""
    commitment = view.single.get(Kind.COMMITMENT)
    tasks = None if commitment is None else commitment.predicate.get("tasks")
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tasks):
        return None
    return {t["name"]: t for t in tasks}


def _hidden_split_uses(view: RecordView, check: CheckResult) -> dict[str, list[tuple[Entry, Any]]]:
    """Each task's runs and evaluations with the hidden split digest they name."""
    seen: dict[str, list[tuple[Entry, Any]]] = {}
    for key, run in view.runs.items():
        with reading(check, run.label):
            task = run.predicate["task"]
            seen.setdefault(task["name"], []).append((run, task["hidden_split_sha256"]))
            evaluation = view.evaluations.get(key)
            if evaluation is not None:
                seen[task["name"]].append((evaluation, evaluation.predicate["hidden_split_sha256"]))
    return seen


def _check_hidden_splits(view: RecordView) -> CheckResult:
    """Every run and evaluation of a task names the same hidden split (the committed one in a pool
    tournament). A run that names none never received its task's data (a type its script does not
    support, a crash before the split was made); an evaluation always names the split it scored on."""
    check = CheckResult("hidden_splits", "hidden splits as committed, one per task")
    committed, commitment = _committed_tasks(view), view.single.get(Kind.COMMITMENT)
    for name, uses in _hidden_split_uses(view, check).items():
        check.checked += len(uses)
        if committed is not None and name not in committed:
            check.fail(uses[0][0].label, f"plays task {name!r}, which the commitment does not name ({sorted(committed)})")
            continue
        named = [(entry, digest) for entry, digest in uses if digest is not None]
        for entry, digest in uses:
            if digest is None and entry.kind is Kind.EVALUATION and committed is not None:
                check.fail(entry.label, f"task {name!r}: scored, but names no hidden split to hold against the commitment")
        if not named:
            continue
        if committed is None or commitment is None:
            expected, source = named[0][1], f"{named[0][0].label} used"
        else:
            expected, source = committed[name].get("hidden_split_sha256"), f"{commitment.label} names"
        for entry, digest in named:
            if digest != expected:
                check.fail(entry.label, f"task {name!r}: hidden split {short_digest(digest)}, but {source} {short_digest(expected)}")
    return check


def _check_reveal(view: RecordView) -> CheckResult:
    check = CheckResult("reveal", "reveal opens the committed split seeds")
    reveal, cancellation = view.single.get(Kind.REVEAL), view.single.get(Kind.CANCELLATION)
    if reveal is None and cancellation is not None:
        check.note(cancellation.label, "cancelled: nothing was decided on the committed tasks, so their split seeds "
                   "stay secret (not revealed)")
        return check
    if reveal is None:
        check.fail("reveal", "the bundle has no reveal: the committed split seeds were never opened")
        return check
    check.checked += 1
    tournament_runs = [e for key, e in [*view.runs.items(), *view.evaluations.items()] if key not in view.audits]  # audits come later
    last_run = max((e.index for e in tournament_runs), default=-1)
    if reveal.index < last_run:
        check.fail(reveal.label, f"logged before entry {last_run}: the seeds were revealed while runs were still being recorded")
    committed = _committed_tasks(view) or {}
    with reading(check, reveal.label):
        revealed = {t["name"]: t for t in reveal.predicate["tasks"]}
        for name in sorted(set(revealed) - set(committed)):
            check.fail(reveal.label, f"reveals task {name!r}, which the commitment does not name")
        played = {run.predicate["task"]["name"] for run in view.runs.values()}
        for name, task in committed.items():
            check.checked += 1
            opened = revealed.get(name)
            if opened is None:
                if name in played:  # a task drawn but never played keeps its seed secret (and stays usable)
                    check.fail(reveal.label, f"does not reveal the split seed of committed task {name!r}, which was played")
                continue
            found = commitment_hash(name, opened["split_seed"], opened["salt"], opened.get("noise_seed"))
            if found != task["split_seed_commitment"]:
                check.fail(reveal.label, f"task {name!r}: the revealed seed and salt hash to {short_digest(found)}, "
                           f"the commitment says {short_digest(task['split_seed_commitment'])}")
    return check


def check_records(bundle: Bundle, entries: list[Entry], artifacts: Mapping[int, list[dict[str, Any]] | None] | None) -> list[CheckResult]:
    view = RecordView.of(bundle, entries)
    checks = [_check_references(view, bundle), _check_per_example(view, bundle.per_example), *_check_replay(view, bundle.per_example),
              _check_commitment(view), _check_hidden_splits(view), _check_reveal(view), _check_audits(view),
              check_claims(view, bundle.claims)]
    if artifacts:
        checks.append(check_artifacts(view, artifacts))
    return checks
