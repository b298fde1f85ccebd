"""A score next to the references of its task: the untrained base model's and the house script's,
with the relative improvement over each (plain data; ``trainarena run`` and ``runs show`` render it).
A run with no house score beside it shows why instead, rather than leaving the line out: the house
script was not run on its seed (a tournament run, a new seed), or its run there failed (which run,
and why). A customer's job run has no references: its task is the customer's data, which no
reference is run on."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from trainarena.contract import Direction
from trainarena.engine.comparison import relative_improvement
from trainarena.reporting.reasons import short_reason
from trainarena.store import Run
from trainarena.store.adhoc import cached_reference, failed_reference
from trainarena.store.models import RunOrigin
from trainarena.wording import HOUSE_SCRIPT

# How each reference is named in tables and details, in the order they are shown.
REFERENCE_LABELS = {RunOrigin.BASE_MODEL: "base model", RunOrigin.HOUSE: HOUSE_SCRIPT}
# A working tree's runs are labelled with its folder's name and this.
TREE_SUFFIX = " (tree)"
# Why a run has no house score to compare with: the house run on its own seed is its reference.
HOUSE_NOT_RUN = "not run on this seed"
HOUSE_FAILED = "failed on this seed"  # then "(run N: its short reason)"


@dataclass(frozen=True)
class ReferenceLine:
    """One reference of a task, and how a score compares with it; or, with ``missing``, why there is
    none to compare with (score and improvement None; the run the failed reference, else None)."""

    kind: str  # base_model | house
    label: str
    run_id: int | None
    score: float | None
    improvement: float | None  # the compared score's relative improvement (0.1: 10 % better); None: no score
    missing: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_label(run: Run) -> str:
    """Who ran: the competitor's name, a working tree's folder name, or the reference's name; a
    customer's job run, the script that trained it as jobs name it (the champion's name, else
    :data:`HOUSE_SCRIPT`)."""
    if run.competitor is not None:
        return run.competitor.name
    if run.origin == RunOrigin.JOB:
        return HOUSE_SCRIPT
    if run.origin in REFERENCE_LABELS or run.source_path is None:
        return REFERENCE_LABELS.get(run.origin, run.origin)
    return tree_label(run.source_path)


def tree_label(folder: str) -> str:
    """A working tree's runs' label: its folder's name (``mywork (tree)``), never the path on the server."""
    return f"{Path(folder).name}{TREE_SUFFIX}"


def reference_lines(session: Session, digest: str | None, score: float | None, direction: str | None,
                    seed: int | None) -> tuple[ReferenceLine, ...]:  # fmt: skip
    """The stored references of the task with ``digest`` (those computed so far) for a run on ``seed``,
    compared with ``score``: the base model's, and the house script's run on the same seed (none scored:
    a house line saying why, :func:`_missing_house`). The house script's score moves with its seed, so another
    seed's would set the run against noise; the untrained base model's is one score for every seed."""
    if digest is None:
        return ()
    lines = []
    for kind, label in REFERENCE_LABELS.items():
        reference = cached_reference(session, digest, kind, seed=seed if kind == RunOrigin.HOUSE else None)
        if reference is None or reference.evaluation is None or reference.evaluation.score is None:
            if kind == RunOrigin.HOUSE:
                lines.append(_missing_house(session, digest, label, seed))
            continue
        value = reference.evaluation.score
        better = Direction(direction or reference.evaluation.direction)
        improvement = None if score is None else relative_improvement(score, value, better)
        lines.append(ReferenceLine(kind, label, reference.id, value, improvement))
    return tuple(lines)


def _missing_house(session: Session, digest: str, label: str, seed: int | None) -> ReferenceLine:
    """The house line without a score: its failed run on the seed (the latest), or that it has none."""
    failed = failed_reference(session, digest, RunOrigin.HOUSE, seed=seed)
    if failed is None:
        return ReferenceLine(RunOrigin.HOUSE, label, None, None, None, missing=HOUSE_NOT_RUN)
    reason = short_reason(failed.failure_reason) or failed.status
    return ReferenceLine(RunOrigin.HOUSE, label, failed.id, None, None, missing=f"{HOUSE_FAILED} (run {failed.id}: {reason})")
