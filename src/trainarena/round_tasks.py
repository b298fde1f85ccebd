"""Which task each place of a round plays: its seed, from the tournament's seed and the place, and the
task the tournament's task source gives for it. Asked again for the same place (a resumed drive, an
early run adopted by its round) it gives the same task."""

from __future__ import annotations

import hashlib

from trainarena.engine.model import Stage
from trainarena.runs import TaskSource
from trainarena.store import Tournament
from trainarena.tasks.base import TaskDefinition


def task_seed(tournament_seed: int, stage: Stage, round_index: int, match_id: str, task_index: int) -> int:
    """A task's seed: fixed by the tournament seed and the task's place, so a replay draws the same. A
    boss round's place is its match id alone (``boss``, ``boss-2``...): its tasks are the same however
    many rounds led to it, so the defender's runs can be trained before its challenger is known
    (``early_runs``)."""
    place = match_id if stage == Stage.BOSS else f"{round_index}:{match_id}"
    text = f"{tournament_seed}:{place}:{task_index}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") & 0x7FFFFFFF


def task_of(task_source: TaskSource, tournament: Tournament, stage: Stage, round_index: int, match_id: str,
            index: int) -> TaskDefinition:
    """The task a round's match plays as its task ``index``."""
    seed = task_seed(tournament.seed, stage, round_index, match_id, index)
    return task_source(tournament.kind, stage, match_id, index, seed)
