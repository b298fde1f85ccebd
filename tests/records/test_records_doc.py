"""docs/records.md describes the statements a bundle holds: each kind's section names every field of its
predicate and no other, and the rows of the fields whose parts are fixed name each part (a registered
script's `hotkey` was left out of the `submission` row)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from records_store import read_lines

from trainarena.records.signing import envelope_payload

DOC = Path(__file__).resolve().parents[2] / "docs" / "records.md"
# Fields whose parts are always the same (not per rule, task type or evaluator), by kind.
FIXED_PARTS = {"run": ("run", "submission", "task", "environment", "timing", "exit"), "evaluation": ("run", "evaluator"),
               "commitment": ("tournament",)}  # fmt: skip


def _section(kind: str) -> str:
    doc = DOC.read_text(encoding="utf-8")
    start = doc.index(f"### `{kind}`\n")
    return doc[start : doc.find("\n#", start + 1)]


def _rows(section: str) -> dict[str, str]:
    """Each field a table row names (a row may name several: `budget_seconds`, `seed`) -> the row."""
    return {field: row for row in re.findall(r"^\| (`.*)$", section, flags=re.MULTILINE)
            for field in re.findall(r"`([a-z_0-9]+)`", row.split(" | ")[0])}  # fmt: skip


@pytest.fixture(scope="module")
def predicates(clean_bundle: Path) -> dict[str, dict]:
    """One statement's predicate of each kind the bundle holds."""
    found: dict[str, dict] = {}
    for entry in read_lines(clean_bundle / "entries.jsonl"):
        found.setdefault(entry["kind"], envelope_payload(entry["envelope"])["predicate"])
    return found


def test_the_bundle_holds_the_kinds_described(predicates: dict[str, dict]) -> None:
    assert {"run", "evaluation", "commitment", "round", "decision", "reveal"} <= set(predicates)


@pytest.mark.parametrize("kind", ["run", "evaluation", "commitment", "round", "decision", "reveal"])
def test_each_kind_section_names_its_predicate_fields(predicates: dict[str, dict], kind: str) -> None:
    section = _section(kind)
    rows = _rows(section)
    predicate = predicates[kind]
    if rows:
        assert set(rows) == set(predicate), f"{kind}: the doc's table has {sorted(rows)}, the statement {sorted(predicate)}"
    else:  # described in prose
        assert [field for field in predicate if f"`{field}`" not in section] == []
    for field in FIXED_PARTS.get(kind, ()):
        parts = predicate[field]
        assert [part for part in parts if f"`{part}`" not in rows[field]] == [], f"{kind}.{field}: parts left out of its row"
