"""A score next to the references of its task: the untrained base model's and the house script's,
with the relative improvement over each (plain data; ``trainarena run`` and ``runs show`` render it).
A run the house script has not run beside (a tournament run, a seed the house script has no run on)
shows why instead of a house score, rather than leaving the line out."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from trainarena.contract import Direction
from trainarena.engine.comparison import relative_improvement
from trainarena.store import Run
from trainarena.store.adhoc import cached_reference
from trainarena.store.models import RunOrigin

# How each reference is named in tables and details, in the order they are shown.
REFERENCE_LABELS = {RunOrigin.BASE_MODEL: "base model", RunOrigin.HOUSE: "house script"}
# A working tree's runs are labelled with its folder's name and this.
TREE_SUFFIX = " (tree)"
# Why a run has no house score to compare with: the house run on its own seed is its reference.
HOUSE_NOT_RUN = "not run on this seed"


@dataclass(frozen=True)
class ReferenceLine:
    """One reference of a task, and how a score compares with it; or, with ``missing``, why there is
    none to compare with (run, score and improvement None)."""

    kind: str  # base_model | house
    label: str
    run_id: int | None
    score: float | None
    improvement: float | None  # the compared score's relative improvement (0.1: 10 % better); None: no score
    missing: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_label(run: Run) -> str:
    """Who ran: the competitor's name, a working tree's folder name, or the reference's name."""
    if run.competitor is not None:
        return run.competitor.name
    if run.origin in REFERENCE_LABELS or run.source_path is None:
        return REFERENCE_LABELS.get(run.origin, run.origin)
    return f"{Path(run.source_path).name}{TREE_SUFFIX}"


def reference_lines(session: Session, digest: str | None, score: float | None, direction: str | None,
                    seed: int | None) -> tuple[ReferenceLine, ...]:  # fmt: skip
    """The stored references of the task with ``digest`` (those computed so far) for a run on ``seed``,
    compared with ``score``: the base model's, and the house script's run on the same seed (none yet: a
    house line saying :data:`HOUSE_NOT_RUN`). The house script's score moves with its seed, so another
    seed's would set the run against noise; the untrained base model's is one score for every seed."""
    if digest is None:
        return ()
    lines = []
    for kind, label in REFERENCE_LABELS.items():
        reference = cached_reference(session, digest, kind, seed=seed if kind == RunOrigin.HOUSE else None)
        if reference is None or reference.evaluation is None or reference.evaluation.score is None:
            if kind == RunOrigin.HOUSE:
                lines.append(ReferenceLine(kind, label, None, None, None, missing=HOUSE_NOT_RUN))
            continue
        value = reference.evaluation.score
        better = Direction(direction or reference.evaluation.direction)
        improvement = None if score is None else relative_improvement(score, value, better)
        lines.append(ReferenceLine(kind, label, reference.id, value, improvement))
    return tuple(lines)
