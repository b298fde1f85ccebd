"""Cleaning rows of the preference and prompt-only task types: keep the spec's columns as text, drop (and
count) rows with an empty required field, and raise :class:`DatasetError` for what cannot be dropped
(a missing column, a value that is not text, too few rows left)."""

from __future__ import annotations

import logging
from typing import Any

from trainarena.settings import DataRules
from trainarena.tasks.base import DatasetError

log = logging.getLogger(__name__)
Row = dict[str, str]


def clean_rows(
    source: str, raw: list[dict[str, Any]], columns: dict[str, str], required: tuple[str, ...], rules: DataRules
) -> tuple[list[Row], int]:
    """``(rows, dropped)``: rows reduced to ``columns`` (role -> column name) as strings; rows where a
    ``required`` role is empty or missing are dropped and logged with their 1-based row numbers."""
    present = set().union(*(row.keys() for row in raw)) if raw else set()
    for role, column in columns.items():
        if column not in present:
            raise DatasetError(f"{source}: missing column '{column}' (field_{role}); columns present: {sorted(present)}")
    rows: list[Row] = []
    dropped: list[int] = []
    for number, row in enumerate(raw, start=1):
        clean = _clean_row(source, number, row, columns)
        if any(not clean[columns[role]].strip() for role in required):
            dropped.append(number)
        else:
            rows.append(clean)
    if dropped:
        shown = ", ".join(str(n) for n in dropped[:10]) + (" ..." if len(dropped) > 10 else "")
        log.warning("%s: dropped %d row(s) with an empty required field (rows %s)", source, len(dropped), shown)
    if len(rows) < rules.min_rows:
        raise DatasetError(
            f"{source}: {len(rows)} usable rows ({len(dropped)} dropped for an empty field), "
            f"fewer than the minimum of {rules.min_rows}"
        )
    return rows, len(dropped)


def _clean_row(source: str, number: int, row: dict[str, Any], columns: dict[str, str]) -> Row:
    clean: Row = {}
    for column in columns.values():
        value = row.get(column)
        if value is None:
            value = ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise DatasetError(f"{source}: row {number}, column '{column}' is a {type(value).__name__} ({value!r:.40}), not text")
        clean[column] = str(value)
    return clean
