"""The runs the run lists label with a name that is no registered competitor's: a working tree's
(``NAME (tree)``, or its path, as the task board shows it) and a reference's (``house script``, ``base
model``), as ``reporting.references.run_label`` names them; what ``runs list --competitor`` takes."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.orm import Session

from trainarena.reporting.references import REFERENCE_LABELS, TREE_SUFFIX
from trainarena.store import Run
from trainarena.store.models import RunOrigin

__all__ = ["has_labelled_runs", "labelled_runs"]


def labelled_runs(name: str) -> ColumnElement[bool]:
    """The runs of no registered competitor that the lists label ``name`` (``run_label``): a reference by
    its label, a working tree by its folder's name with :data:`TREE_SUFFIX` or by its path (as the task
    board shows it). A competitor removed since leaves its runs as working trees of its repository."""
    matches = [Run.competitor_id.is_(None) & (Run.source_path == name)]
    origins = [origin for origin, label in REFERENCE_LABELS.items() if label == name]
    if origins:
        matches.append(Run.origin.in_(origins))
    folder = name.removesuffix(TREE_SUFFIX)
    if folder != name and folder:
        tree = (Run.source_path == folder) | Run.source_path.endswith(f"/{folder}", autoescape=True)
        matches.append(Run.competitor_id.is_(None) & Run.origin.not_in(RunOrigin.REFERENCES) & tree)
    return or_(false(), *matches)


def has_labelled_runs(session: Session, name: str) -> bool:
    """Whether a listed run is labelled ``name`` (:func:`labelled_runs`): a name the competitor filter takes."""
    if name in REFERENCE_LABELS.values():  # a reference's label is known before any reference is computed
        return True
    return session.scalar(select(Run.id).where(labelled_runs(name), Run.origin.not_in(RunOrigin.PRIVATE)).limit(1)) is not None
