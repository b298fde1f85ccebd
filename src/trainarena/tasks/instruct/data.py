"""Validating instruct rows. Every problem raises :class:`DatasetError` naming the
file, the column or the row (1-based, as a person counts them), never a bare KeyError."""

from __future__ import annotations

from typing import Any

from trainarena.settings import DataRules
from trainarena.tasks.base import DatasetError
from trainarena.tasks.instruct.spec import InstructDatasetSpec
from trainarena.tasks.text.rows import Row

REQUIRED_ROLES = ("instruction", "output")


def validate_rows(spec: InstructDatasetSpec, raw: list[dict[str, Any]], rules: DataRules) -> list[Row]:
    """Rows reduced to the spec's columns (original names), as strings; raises on the first problem."""
    columns = spec.columns()
    present = set().union(*(row.keys() for row in raw)) if raw else set()
    for role, column in columns.items():
        if column not in present:
            raise DatasetError(
                f"{spec.source}: missing column '{column}' (field_{role}); columns present: {sorted(present)}"
            )
    rows = [_validate_row(spec.source, number, row, columns) for number, row in enumerate(raw, start=1)]
    if len(rows) < rules.min_rows:
        raise DatasetError(f"{spec.source}: {len(rows)} rows, fewer than the minimum of {rules.min_rows}")
    return rows


def _validate_row(source: str, number: int, row: dict[str, Any], columns: dict[str, str]) -> Row:
    clean: Row = {}
    for role, column in columns.items():
        value = row.get(column)
        if value is None and role not in REQUIRED_ROLES:
            value = ""
        if not isinstance(value, str):
            shown = "missing" if value is None else f"a {type(value).__name__} ({value!r:.40})"
            raise DatasetError(f"{source}: row {number}, column '{column}' is {shown}, not text")
        if role in REQUIRED_ROLES and not value.strip():
            raise DatasetError(f"{source}: row {number}, column '{column}' is empty")
        clean[column] = value
    return clean


