"""Validating instruct rows, and their group key for the split. Every problem raises
:class:`DatasetError` naming the file, the column or the row (1-based, as a person counts them),
never a bare KeyError. Instruct rows are never dropped: any unusable row refuses the dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainarena.settings import DataRules
from trainarena.tasks.base import DatasetError
from trainarena.tasks.instruct.spec import InstructDatasetSpec
from trainarena.tasks.split import joined_key
from trainarena.tasks.text.rows import Row, text_problem
from trainarena.wording import counted

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
        raise DatasetError(f"{spec.source}: {counted(len(rows), 'row')}, fewer than the minimum of {rules.min_rows}")
    return rows


def group_key(spec: InstructDatasetSpec, row: Mapping[str, object]) -> str:
    """The split's group: the normalised instruction and input (not the system text, so one question
    under two system prompts stays on one side)."""
    user_input = str(row.get(spec.field_input) or "") if spec.field_input else ""
    return joined_key((str(row[spec.field_instruction]), user_input))


def _validate_row(source: str, number: int, row: dict[str, Any], columns: dict[str, str]) -> Row:
    clean: Row = {}
    for role, column in columns.items():
        problem = text_problem(row, column) if role in REQUIRED_ROLES else None
        if problem:
            raise DatasetError(f"{source}: row {number}, {problem}")
        value = row.get(column)
        value = "" if value is None else value  # an optional column, absent or null: no text
        if not isinstance(value, str | int | float) or isinstance(value, bool):  # a number reads as its text, as in a CSV
            raise DatasetError(f"{source}: row {number}, column '{column}' is a {type(value).__name__} ({value!r:.40}), not text")
        clean[column] = str(value)
    return clean
