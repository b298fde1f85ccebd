"""The record half of ``trainarena verify`` (pure): cross-references, per-example files, the bracket
and weights replayed with the engine, the commitment and its reveal, the database's claims and
artifact folders, over the entries ``verify_log`` opened."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from trainarena.engine.bracket import Replay, replay
from trainarena.engine.model import Finished, TournamentRecord
from trainarena.engine.weights import tournament_weights
from trainarena.records.checks import Bundle, CheckResult, Entry
from trainarena.records.engine_json import per_example_digest, played_round_from_json, replay_json
from trainarena.records.signing import canonical_json
from trainarena.records.statements import Kind, commitment_hash, payload_digest
from trainarena.settings import TournamentRules, WeightRules

__all__ = ["check_records"]

# Differences between a signed decision and the replayed one listed per decision, at most.
MAX_DIFFERENCES = 12
_MISSING = object()


@dataclass
class _View:
    """The bundle's entries by what they are about."""

    tournament_id: Any
    by_index: dict[int, Entry] = field(default_factory=dict)
    runs: dict[tuple[Any, Any], Entry] = field(default_factory=dict)
    evaluations: dict[tuple[Any, Any], Entry] = field(default_factory=dict)
    rounds: list[Entry] = field(default_factory=list)
    single: dict[Kind, Entry] = field(default_factory=dict)  # commitment, decision, reveal
    duplicates: list[tuple[Entry, Entry]] = field(default_factory=list)

    @classmethod
    def of(cls, bundle: Bundle, entries: list[Entry]) -> _View:
        view = cls(bundle.manifest.get("tournament", {}).get("id") if isinstance(bundle.manifest.get("tournament"), dict) else None)
        for entry in entries:
            view.by_index.setdefault(entry.index, entry)
            run = entry.predicate.get("run") if isinstance(entry.predicate.get("run"), dict) else {}
            if entry.kind in (Kind.RUN, Kind.EVALUATION):
                target = view.runs if entry.kind is Kind.RUN else view.evaluations
                view._add(target, (run.get("id"), run.get("attempt")), entry)
            elif entry.kind is Kind.ROUND:
                view.rounds.append(entry)
            elif entry.kind is not None:
                view._add(view.single, entry.kind, entry)
        view.rounds.sort(key=lambda e: (_plan_index(e), e.index))
        return view

    def _add(self, target: dict[Any, Entry], key: Any, entry: Entry) -> None:
        if key in target:
            self.duplicates.append((target[key], entry))
        else:
            target[key] = entry


def _plan_index(entry: Entry) -> int:
    index = entry.predicate.get("plan", {}).get("index") if isinstance(entry.predicate.get("plan"), dict) else None
    return index if isinstance(index, int) else -1


@contextmanager
def _reading(check: CheckResult, record: str) -> Iterator[None]:
    """A statement without a field a check needs is a failure of that check, not a crash."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        check.fail(record, f"a field is missing or malformed ({type(error).__name__}: {' '.join(str(error).split())})")


def _brief(value: Any, width: int = 70) -> str:
    text = "(absent)" if value is _MISSING else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _short(digest: Any) -> str:
    return f"{digest[:16]}..." if isinstance(digest, str) else repr(digest)


def _resolve(view: _View, reference: Any, kind: Kind) -> tuple[Entry | None, str | None]:
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
        return None, (f"names {target.label} with payload digest {_short(reference.get('payload_sha256'))}, "
                      f"its payload's is {_short(found)}")
    return target, None


# --- Cross-references ------------------------------------------------------------------------------


def _engine_score(evaluation: Entry, run: Entry | None) -> float | None:
    """The score the engine takes from an evaluation: only a finite score of a succeeded run counts."""
    score = evaluation.predicate["score"]
    status = None if run is None else run.predicate["exit"]["status"]
    finite = isinstance(score, int | float) and math.isfinite(score)
    return score if finite and status == "succeeded" else None


def _check_outcome(view: _View, check: CheckResult, entry: Entry, where: str, outcome: dict[str, Any]) -> None:
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
            check.fail(entry.label, f"{where}: {name} {_brief(outcome[name])} in the round, "
                       f"{_brief(signed[name])} in {evaluation.label}")


def _check_evaluation(view: _View, check: CheckResult, entry: Entry) -> None:
    check.checked += 1
    run, problem = _resolve(view, entry.predicate["run"]["statement"], Kind.RUN)
    if run is None:
        check.fail(entry.label, f"its run: {problem}")
        return
    if (run.predicate["run"]["id"], run.predicate["run"]["attempt"]) != (entry.predicate["run"]["id"], entry.predicate["run"]["attempt"]):
        check.fail(entry.label, f"names {run.label} as its run")
    if entry.statement is not None and run.statement is not None and entry.statement["subject"] != run.statement["subject"]:
        check.fail(entry.label, f"scores other files than {run.label} produced (the subjects differ)")


def _check_tournament_of(view: _View, check: CheckResult, entry: Entry) -> None:
    if entry.kind is Kind.EVALUATION:
        return  # its run statement says where it was played
    about = entry.predicate["run"]["place"]["tournament_id"] if entry.kind is Kind.RUN else entry.predicate["tournament"]["id"]
    if about != view.tournament_id:
        check.fail(entry.label, f"is about tournament {about}, the bundle about tournament {view.tournament_id}")


def _check_references(view: _View) -> CheckResult:
    check = CheckResult("references", "cross-references between records")
    for first, second in view.duplicates:
        check.fail(second.label, f"says the same as {first.label}: one statement each is expected")
    for entry in view.by_index.values():
        with _reading(check, entry.label):
            _check_tournament_of(view, check, entry)
            if entry.kind is Kind.EVALUATION:
                _check_evaluation(view, check, entry)
            elif entry.kind is Kind.ROUND:
                for match in entry.predicate["matches"]:
                    for number, task in enumerate(match["tasks"]):
                        for outcome in task["outcomes"]:
                            where = f"match {match['match_id']} task {number}, {outcome['competitor']}"
                            _check_outcome(view, check, entry, where, outcome)
    decision, reveal = view.single.get(Kind.DECISION), view.single.get(Kind.REVEAL)
    if decision is not None:
        with _reading(check, decision.label):
            named = []
            for reference in decision.predicate["rounds"]:
                check.checked += 1
                target, problem = _resolve(view, reference, Kind.ROUND)
                if target is None:
                    check.fail(decision.label, f"its rounds: {problem}")
                else:
                    named.append(target.index)
            held = [r.index for r in view.rounds]
            if sorted(named) != sorted(held):
                check.fail(decision.label, f"names round statements at entries {named}, the bundle holds them at {held}")
    if reveal is not None:
        with _reading(check, reveal.label):
            check.checked += 1
            _, problem = _resolve(view, reveal.predicate["commitment"], Kind.COMMITMENT)
            if problem:
                check.fail(reveal.label, f"its commitment: {problem}")
    return check


# --- Per-example scores ----------------------------------------------------------------------------


def _check_per_example(view: _View, files: Mapping[str, Any]) -> CheckResult:
    check = CheckResult("per_example", "per-example score files against digests")
    for name, values in files.items():
        check.checked += 1
        found = per_example_digest(values) if isinstance(values, list) else None
        if found != name:
            check.fail(f"per_example/{name}.json", f"its values hash to {_short(found)}, not to the {_short(name)} "
                       "its name and the signed statements give")
    for entry in view.evaluations.values():
        with _reading(check, entry.label):
            count, digest = entry.predicate["per_example_count"], entry.predicate["per_example_sha256"]
            if count and digest not in files:
                check.fail(entry.label, f"its {count} per-example scores (per_example/{digest}.json) are not in the bundle")
            elif count and isinstance(files[digest], list) and len(files[digest]) != count:
                check.fail(entry.label, f"per_example/{digest}.json holds {len(files[digest])} scores, the statement says {count}")
    return check


# --- The bracket and the weights, replayed ---------------------------------------------------------


def _differences(signed: Any, recomputed: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(signed, dict) and isinstance(recomputed, dict):
        for key in sorted(set(signed) | set(recomputed), key=str):
            yield from _differences(signed.get(key, _MISSING), recomputed.get(key, _MISSING), f"{path}.{key}")
    elif isinstance(signed, list) and isinstance(recomputed, list) and len(signed) == len(recomputed):
        for position, (a, b) in enumerate(zip(signed, recomputed, strict=True)):
            yield from _differences(a, b, f"{path}[{position}]")
    elif signed != recomputed:
        yield path, signed, recomputed


def _plain(value: Any) -> Any:
    """A value as its JSON reads back (tuples as lists), so it compares with a signed one."""
    return json.loads(canonical_json(value))


def _replayed(view: _View, decision: Entry, files: Mapping[str, Any], bracket: CheckResult) -> Replay | None:
    """The engine's replay of the round statements under the decision's rules and record; None (with
    the failure noted) when they cannot be read or depart from the rules."""
    signed = decision.predicate
    with _reading(bracket, decision.label):
        rules = TournamentRules(**signed["rules"])
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


def _compare_bracket(view: _View, decision: Entry, replayed: Replay, bracket: CheckResult) -> None:
    differences = list(_differences(decision.predicate["decided"], _plain(replay_json(replayed)), "decided"))
    for path, said, recomputed in differences[:MAX_DIFFERENCES]:
        bracket.fail(decision.label, f"{path}: the decision says {_brief(said)}, the replayed bracket gives {_brief(recomputed)}")
    if len(differences) > MAX_DIFFERENCES:
        bracket.fail(decision.label, f"and {len(differences) - MAX_DIFFERENCES} more differences")
    for entry, decided in zip(view.rounds, replayed.rounds, strict=False):
        bracket.checked += 1
        if entry.predicate.get("advanced") != list(decided.advanced):
            bracket.fail(entry.label, f"says {_brief(entry.predicate.get('advanced'))} advanced, the replayed "
                         f"bracket advances {_brief(list(decided.advanced))}")


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


def _check_replay(view: _View, files: Mapping[str, Any]) -> list[CheckResult]:
    bracket = CheckResult("bracket", "bracket and champion replayed by the engine")
    weights = CheckResult("weights", "weights recomputed from the replayed end")
    decision = view.single.get(Kind.DECISION)
    if decision is None:
        bracket.fail("decision", "the bundle has no decision statement: the tournament's end is not recorded")
        return [bracket, weights]
    replayed = _replayed(view, decision, files, bracket)
    if replayed is None:
        return [bracket, weights]
    with _reading(bracket, decision.label):
        _compare_bracket(view, decision, replayed, bracket)
    if not isinstance(replayed.next, Finished):
        bracket.fail(decision.label, f"the replayed bracket has not finished: round {replayed.next.plan.index} is still to play")
        return [bracket, weights]
    with _reading(weights, decision.label):
        _compare_weights(decision, replayed.next, weights)
    return [bracket, weights]


# --- Commitment, hidden splits, reveal ------------------------------------------------------------


def _check_commitment(view: _View) -> CheckResult:
    check = CheckResult("commitment", "commitment logged before every run")
    commitment, decision = view.single.get(Kind.COMMITMENT), view.single.get(Kind.DECISION)
    if commitment is None:
        check.fail("commitment", "the bundle has no commitment: nothing shows the hidden data was fixed before the runs")
        return check
    for entry in [*view.runs.values(), *view.evaluations.values(), *view.rounds]:
        check.checked += 1
        if entry.index < commitment.index:
            check.fail(entry.label, f"logged before the commitment ({commitment.label})")
    if decision is not None:
        with _reading(check, commitment.label):
            check.checked += 1
            entrants = [e["name"] for e in commitment.predicate["entrants"]]
            if entrants != decision.predicate["entrants"]:
                check.fail(commitment.label, f"commits to entrants {_brief(entrants)}, {decision.label} decides "
                           f"over {_brief(decision.predicate['entrants'])}")
            if commitment.predicate["champion_before"] != decision.predicate["champion_before"]:
                check.fail(commitment.label, f"names defending champion {commitment.predicate['champion_before']!r}, "
                           f"{decision.label} {decision.predicate['champion_before']!r}")
    return check


def _committed_tasks(view: _View) -> dict[str, dict[str, Any]] | None:
    """The pool tasks the commitment names, by name; None when the tournament drew no pool (or its
    task list does not read: the commitment check says so)."""
    commitment = view.single.get(Kind.COMMITMENT)
    tasks = None if commitment is None else commitment.predicate.get("tasks")
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tasks):
        return None
    return {t["name"]: t for t in tasks}


def _check_hidden_splits(view: _View) -> CheckResult:
    check = CheckResult("hidden_splits", "hidden splits as committed, one per task")
    seen: dict[str, list[tuple[str, Any]]] = {}
    for key, run in view.runs.items():
        with _reading(check, run.label):
            task = run.predicate["task"]
            seen.setdefault(task["name"], []).append((run.label, task["hidden_split_sha256"]))
            evaluation = view.evaluations.get(key)
            if evaluation is not None:
                seen[task["name"]].append((evaluation.label, evaluation.predicate["hidden_split_sha256"]))
    committed = _committed_tasks(view)
    commitment = view.single.get(Kind.COMMITMENT)
    for name, uses in seen.items():
        check.checked += len(uses)
        if committed is not None and name not in committed:
            check.fail(uses[0][0], f"plays task {name!r}, which the commitment does not name ({sorted(committed)})")
            continue
        expected = uses[0][1] if committed is None else committed[name].get("hidden_split_sha256")
        source = f"{uses[0][0]} used" if committed is None or commitment is None else f"{commitment.label} names"
        for label, digest in uses:
            if digest != expected:
                check.fail(label, f"task {name!r}: hidden split {_short(digest)}, but {source} {_short(expected)}")
    return check


def _check_reveal(view: _View) -> CheckResult:
    check = CheckResult("reveal", "reveal opens the committed split seeds")
    reveal = view.single.get(Kind.REVEAL)
    if reveal is None:
        check.fail("reveal", "the bundle has no reveal: the committed split seeds were never opened")
        return check
    check.checked += 1
    last_run = max((e.index for e in [*view.runs.values(), *view.evaluations.values()]), default=-1)
    if reveal.index < last_run:
        check.fail(reveal.label, f"logged before entry {last_run}: the seeds were revealed while runs were still being recorded")
    committed = _committed_tasks(view) or {}
    with _reading(check, reveal.label):
        revealed = {t["name"]: t for t in reveal.predicate["tasks"]}
        for name in sorted(set(revealed) - set(committed)):
            check.fail(reveal.label, f"reveals task {name!r}, which the commitment does not name")
        for name, task in committed.items():
            check.checked += 1
            opened = revealed.get(name)
            if opened is None:
                check.fail(reveal.label, f"does not reveal the split seed of committed task {name!r}")
                continue
            found = commitment_hash(name, opened["split_seed"], opened["salt"])
            if found != task["split_seed_commitment"]:
                check.fail(reveal.label, f"task {name!r}: the revealed seed and salt hash to {_short(found)}, "
                           f"the commitment says {_short(task['split_seed_commitment'])}")
    return check


# --- The database's claims and artifact folders ---------------------------------------------------


def _check_claimed_run(view: _View, check: CheckResult, claim: dict[str, Any]) -> None:
    key = (claim["run_id"], claim["attempt"])
    run = view.runs.get(key)
    if run is None:
        check.fail(f"claims.json run {key[0]}, attempt {key[1]}", "the database has this run, the bundle no signed run statement of it")
        return
    signed = run.predicate
    for what, claimed, said in (("status", claim["status"], signed["exit"]["status"]),
                                ("artifact sha256", claim["artifact_sha256"], signed["artifact_sha256"]),
                                ("competitor", claim["competitor"], signed["submission"].get("name", claim["competitor"]))):
        if claimed != said:
            check.fail(run.label, f"{what}: the database says {_brief(claimed)}, the signed run statement {_brief(said)}")
    evaluation = view.evaluations.get(key)
    if evaluation is None:
        if claim["score"] is not None:
            check.fail(run.label, f"score: the database says {claim['score']}, the bundle has no signed evaluation of it")
    elif claim["score"] != evaluation.predicate["score"]:
        check.fail(evaluation.label, f"score: the database says {claim['score']}, the signed evaluation {evaluation.predicate['score']}")


def _check_claims(view: _View, claims: Any) -> CheckResult:
    check = CheckResult("claims", "database claims vs the signed statements")
    if not isinstance(claims, dict):
        check.fail("claims.json", "missing or not a JSON object: nothing to compare the database with")
        return check
    claimed = set()
    runs = claims.get("runs")
    for number, claim in enumerate(runs if isinstance(runs, list) else []):
        check.checked += 1
        with _reading(check, f"claims.json run {number + 1} of {len(runs)}"):
            claimed.add((claim["run_id"], claim["attempt"]))
            _check_claimed_run(view, check, claim)
    for key, run in view.runs.items():
        if key not in claimed:
            check.fail(run.label, "signed, but the database no longer has this attempt counted for the tournament")
    decision = view.single.get(Kind.DECISION)
    if decision is not None:
        with _reading(check, decision.label):
            check.checked += 1
            champion = decision.predicate["decided"]["end"]["champion"]
            if claims.get("champion") != champion:
                check.fail(decision.label, f"champion: the database says {claims.get('champion')!r}, the signed decision {champion!r}")
            signed, stored = decision.predicate["weights"], claims["weights"]
            for name in sorted(set(signed) | set(stored)):
                check.checked += 1
                if stored.get(name) != signed.get(name):
                    check.fail(decision.label, f"weight of {name}: the database says {stored.get(name)}, the signed decision {signed.get(name)}")
    return check


def _check_artifacts(view: _View, artifacts: Mapping[int, list[dict[str, Any]] | None]) -> CheckResult:
    check = CheckResult("artifacts", "artifact folders vs their run statements")
    for run_id, listing in artifacts.items():
        runs = [e for (rid, _), e in view.runs.items() if rid == run_id]
        if not runs:
            check.fail(f"artifact of run {run_id}", "the bundle has no run statement of this run")
            continue
        run = max(runs, key=lambda e: e.index)
        with _reading(check, run.label):
            expected = {s["name"].removeprefix("artifact/"): s["digest"]["sha256"]
                        for s in run.statement["subject"] if s["name"].startswith("artifact/")}  # type: ignore[index]
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
                    check.fail(run.label, f"{name} changed: its sha256 is {_short(found[name])}, the statement says {_short(expected[name])}")
            for name in sorted(expected.keys() - found.keys()):
                check.fail(run.label, f"{name} is missing from the folder")
            for name in sorted(found.keys() - expected.keys()):
                check.fail(run.label, f"{name} is in the folder but not in the statement (an extra file)")
    return check


def check_records(bundle: Bundle, entries: list[Entry], artifacts: Mapping[int, list[dict[str, Any]] | None] | None) -> list[CheckResult]:
    view = _View.of(bundle, entries)
    checks = [_check_references(view), _check_per_example(view, bundle.per_example), *_check_replay(view, bundle.per_example),
              _check_commitment(view), _check_hidden_splits(view), _check_reveal(view), _check_claims(view, bundle.claims)]
    if artifacts:
        checks.append(_check_artifacts(view, artifacts))
    return checks
