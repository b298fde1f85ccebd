"""The tournament engine's plain data as the records' JSON, and back (pure).

A ``round`` statement carries a played round as :func:`played_round_json` writes it; a verifier reads
it back with :func:`played_round_from_json` and replays the bracket with the same pure engine the
platform used. Per-example scores are not inside the statement (they can be long): each outcome
names their SHA-256, and the bundle holds the values beside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from trainarena.contract import Direction
from trainarena.engine.bracket import Replay
from trainarena.engine.model import Finished, Match, PlayedMatch, PlayedRound, RoundPlan, Stage, TaskOutcome
from trainarena.records.signing import canonical_json

__all__ = ["per_example_digest", "played_round_from_json", "played_round_json", "replay_json"]


def per_example_digest(values: tuple[float, ...] | list[float]) -> str:
    """SHA-256 hex of per-example scores in their fixed example order (canonical JSON of the list)."""
    return hashlib.sha256(canonical_json(list(values))).hexdigest()


def _plan_json(plan: RoundPlan) -> dict[str, Any]:
    return {"index": plan.index, "stage": plan.stage.value, "byes": list(plan.byes),
            "matches": [{"match_id": m.match_id, "competitors": list(m.competitors), "tasks": m.tasks,
                         "advance": m.advance} for m in plan.matches]}


def played_round_json(played: PlayedRound, extra: Callable[[str, int, str], dict[str, Any]]) -> dict[str, Any]:
    """A played round as JSON; ``extra(match_id, task_index, competitor)`` adds what the store knows of
    that outcome (run id, the log index and digest of its evaluation statement)."""
    matches = []
    for match in played.matches:
        tasks = []
        for index, (direction, outcomes) in enumerate(zip(match.directions, match.tasks, strict=True)):
            unit = match.lead_unit(index)
            tasks.append({"direction": direction.value, **({} if unit is None else {"lead_unit": unit}), "outcomes": [
                {"competitor": o.competitor, "score": o.score, "failure": o.failure,
                 "per_example_count": len(o.per_example), "per_example_sha256": per_example_digest(o.per_example),
                 **extra(match.match.match_id, index, o.competitor)}
                for o in outcomes]})
        matches.append({"match_id": match.match.match_id, "tasks": tasks})
    return {"plan": _plan_json(played.plan), "matches": matches}


def played_round_from_json(data: Mapping[str, Any], per_example: Mapping[str, list[float]]) -> PlayedRound:
    """The engine's played round from :func:`played_round_json`'s JSON; ``per_example`` maps a
    per-example digest to its values (a missing digest stands for no values, as the bootstrap gate
    then has nothing to resample). KeyError/ValueError when the JSON is malformed."""
    plan_data = data["plan"]
    matches = tuple(Match(m["match_id"], tuple(m["competitors"]), int(m["tasks"]), int(m["advance"]))
                    for m in plan_data["matches"])
    plan = RoundPlan(int(plan_data["index"]), Stage(plan_data["stage"]), matches, tuple(plan_data["byes"]))
    played = []
    for match, match_data in zip(matches, data["matches"], strict=True):
        if match_data["match_id"] != match.match_id:
            raise ValueError(f"round {plan.index}: outcomes of match {match_data['match_id']!r} where the plan has {match.match_id!r}")
        directions = tuple(Direction(task["direction"]) for task in match_data["tasks"])
        tasks = tuple(
            tuple(TaskOutcome(o["competitor"], o["score"], o["failure"],
                              tuple(per_example.get(o["per_example_sha256"], ())) if o["per_example_count"] else ())
                  for o in task["outcomes"])
            for task in match_data["tasks"]
        )
        units = tuple(task.get("lead_unit") for task in match_data["tasks"])
        played.append(PlayedMatch(match, directions, tasks, units))
    return PlayedRound(plan, tuple(played))


def replay_json(replay: Replay) -> dict[str, Any]:
    """What the engine decided from a record: each round's match decisions, the boss round, the end."""
    return {
        "rounds": [{"index": r.plan.index, "decisions": [asdict(d) for d in r.decisions], "advanced": list(r.advanced)}
                   for r in replay.rounds],
        "boss": None if replay.boss is None else asdict(replay.boss),
        "end": asdict(replay.next) if isinstance(replay.next, Finished) else None,
    }
