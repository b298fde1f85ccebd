"""What registration does about copies (docs/rules.md, "Copies"): an exact copy of another
competitor (same tree or same source digest) is refused or flagged, as ``registration.exact_copies``
says; every new competitor is compared with every registered one by the near-duplicate measure
(``submissions.similarity``), the closest is reported, and one at or above the flag threshold is flagged.

Fingerprints are cached per git tree (``cache_dir/fingerprints/<version and parameters>/<tree hash>``),
so registration reads one small file per registered competitor instead of tokenizing its code again.
Nothing here touches the store: the caller passes the registered competitors in.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from trainarena.settings import RegistrationRules, Settings
from trainarena.submissions.errors import RegistrationError
from trainarena.submissions.registration import (
    CopyMatch,
    RegisteredCompetitor,
    Registration,
    checkout_path,
    find_copies,
)
from trainarena.submissions.similarity import FINGERPRINT_VERSION, Closest, closest, tree_fingerprints

NEAR_DUPLICATE = "near_duplicate"  # the copy flag of a competitor flagged by the measure, not by an equal hash


@dataclass(frozen=True)
class CopyReport:
    """What registration found: the exact copies, the closest competitor, and the flag (None: not flagged;
    else ``tree_hash``, ``source_digest`` or ``near_duplicate``)."""

    exact: tuple[CopyMatch, ...]
    closest: Closest | None
    flag: str | None
    not_compared: tuple[str, ...]  # competitors whose code is no longer on disk (checkout and cache cleared)


def report_warnings(name: str, report: CopyReport, rules: RegistrationRules) -> list[str]:
    """What `competitor add` prints to stderr and the API returns as ``warnings``, one line each."""
    lines = [f"{name} {match.message}" for match in report.exact]
    if report.flag is not None and report.closest is not None:
        why = "an exact copy" if report.exact else f"a near-duplicate (flag threshold {rules.similarity_flag_threshold:.2f})"
        lines.append(f"{name} is flagged for the operator as {why} of competitor {report.closest.name!r}, "
                     f"similarity {report.closest.similarity:.2f} (docs/rules.md, \"Copies\")")
    if report.not_compared:
        lines.append(f"{name} was not compared with {', '.join(report.not_compared)}: their code is no longer on disk")
    return lines


def fingerprint_cache_path(settings: Settings, tree_hash: str) -> Path:
    rules = settings.registration
    parameters = f"{FINGERPRINT_VERSION}-k{rules.similarity_k}-w{rules.similarity_window}"
    return settings.cache_dir / "fingerprints" / parameters / tree_hash


def cached_fingerprints(settings: Settings, tree_hash: str, tree_dir: Path) -> frozenset[int] | None:
    """The fingerprints of the tree exported in ``tree_dir``, from the cache or computed and cached;
    None when neither the cache nor the tree is there."""
    cache = fingerprint_cache_path(settings, tree_hash)
    if cache.is_file():
        return frozenset(array("Q", cache.read_bytes()))
    if not tree_dir.is_dir():
        return None
    rules = settings.registration
    fingerprints = tree_fingerprints(_python_files(tree_dir), k=rules.similarity_k, window=rules.similarity_window)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache.parent, prefix=".tmp-", delete=False) as staged:
        staged.write(array("Q", sorted(fingerprints)).tobytes())
    os.replace(staged.name, cache)  # atomic: a concurrent registration reads the old state or the whole file
    return fingerprints


def _python_files(root: Path) -> Iterable[tuple[str, bytes]]:
    """(path, content) of the regular .py files under ``root`` (links are skipped: they point inside the
    tree, whose files count once)."""
    for path in sorted(root.rglob("*.py")):
        if path.is_file() and not path.is_symlink():
            yield path.relative_to(root).as_posix(), path.read_bytes()


def flag_for(exact: Iterable[CopyMatch], nearest: Closest | None, rules: RegistrationRules) -> str | None:
    """The copy flag: the strongest exact match's kind, else near_duplicate at or above the threshold."""
    kinds = [match.kind for match in exact]
    if kinds:
        return kinds[0]
    if nearest is not None and nearest.similarity >= rules.similarity_flag_threshold:
        return NEAR_DUPLICATE
    return None


def check_copies(settings: Settings, registration: Registration, registered: list[RegisteredCompetitor]) -> CopyReport:
    """Apply the copy rules to a new registration against every ``registered`` competitor:
    RegistrationError for an exact copy under ``exact_copies = "refuse"``, else the report (closest
    competitor, flag) to record with it."""
    rules = settings.registration
    exact = find_copies(registration, registered)
    if exact and rules.exact_copies == "refuse":
        match = exact[0]
        raise RegistrationError(
            f"{registration.name!r} {match.message}: an exact copy of a registered competitor is refused "
            "(registration.exact_copies; docs/rules.md, \"Copies\"); register your own code, or have the "
            f"operator remove {match.other_name!r} if it is yours"
        )
    new = cached_fingerprints(settings, registration.tree_hash, registration.checkout_dir) or frozenset()
    others, missing = [], []
    for competitor in registered:
        if competitor.name == registration.name:
            continue
        fingerprints = cached_fingerprints(settings, competitor.tree_hash, checkout_path(settings, competitor.commit))
        if fingerprints is None:
            missing.append(competitor.name)
        else:
            others.append((competitor.name, fingerprints))
    # An exact copy is the closest by definition, whatever the measure says of trees without Python.
    nearest = Closest(exact[0].other_name, 1.0) if exact else closest(new, others, min_size=rules.similarity_min_fingerprints)
    return CopyReport(tuple(exact), nearest, flag_for(exact, nearest, rules), tuple(missing))
