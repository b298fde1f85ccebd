"""Checks every task type's dataset spec makes alike: required text fields, format-string
placeholders, and the keys a spec dictionary may carry."""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from trainarena.tasks.base import DatasetError, UnknownSpecKeys

# Keys the platform adds to the spec it writes for scripts; accepted (and ignored) when read back.
SCRIPT_KEYS = frozenset({"scoring", "task_type", "file"})
# Dataset keys whose value is a table or a list, not a string: `task add` takes them as JSON flags.
STRUCTURED_KEYS = frozenset({"role_map", "reward_functions"})


def require_strings(spec: object, names: Iterable[str]) -> None:
    """Each named field of ``spec`` is a non-empty string (DatasetError naming the field otherwise)."""
    for name in names:
        value = getattr(spec, name)
        if not isinstance(value, str) or not value:
            raise DatasetError(f"dataset spec: '{name}' must be a non-empty string, got {value!r}")


def check_answer_column(spec: object, answer: str, prompt_fields: Iterable[str]) -> None:
    """Refuse a spec whose ``answer`` field names the same column as one of ``prompt_fields``: the
    answer would be printed in every prompt, so a model scores by copying, not by training."""
    column = getattr(spec, answer)
    for name in prompt_fields:
        if getattr(spec, name) == column:
            raise DatasetError(f"dataset spec: {answer!r} and {name!r} both name the column {column!r}; "
                               f"the {answer.removeprefix('field_')} must be another column than the prompt's")


def check_format(name: str, value: object, allowed: set[str]) -> None:
    """A format string that uses only the allowed placeholders, each at most once and without a format
    spec (DatasetError naming the field otherwise): a placeholder repeated a thousand times, or given a
    width (``{instruction:>100000000}``), would make each row's text that much larger while the platform
    prepares and scores the data; a spec could also hide a placeholder (``{instruction:{input}}``)."""
    if not isinstance(value, str):
        raise DatasetError(f"dataset spec: '{name}' must be a string, got {value!r}")
    try:
        parsed = [(field, spec) for _, field, spec, _ in string.Formatter().parse(value) if field is not None]
    except ValueError as error:
        raise DatasetError(f"dataset spec: '{name}' = {value!r} is not a valid format string ({error})") from None
    specified = next((field for field, spec in parsed if spec), None)
    if specified is not None:
        raise DatasetError(f"dataset spec: '{name}' gives {{{specified}}} a format spec; placeholders take none (plain {{{specified}}})")
    fields = [field for field, _spec in parsed]
    repeated = sorted({field for field in fields if fields.count(field) > 1})
    if repeated:
        raise DatasetError(f"dataset spec: '{name}' uses {repeated} more than once; each placeholder may appear once")
    used = set(fields)
    if used - allowed:
        raise DatasetError(
            f"dataset spec: '{name}' = {value!r} uses {sorted(used - allowed)}; allowed placeholders: {sorted(allowed)}"
        )


def spec_fields(cls: type, data: dict[str, Any], required: set[str], ignored: frozenset[str] = SCRIPT_KEYS) -> dict[str, Any]:
    """The entries of ``data`` that are fields of the spec dataclass ``cls``; DatasetError for an
    unknown key (other than ``ignored``, UnknownSpecKeys), a missing required one, or a text field
    (typed ``str``, or ``str | None``) given something else: a number given as ``system_prompt`` was
    taken and turned into text downstream."""
    types = {f.name: f.type for f in fields(cls)}
    unknown = sorted(set(data) - set(types) - ignored)
    if unknown:
        raise UnknownSpecKeys("dataset spec", unknown, sorted(types))
    missing = sorted(required - set(data))
    if missing:
        raise DatasetError(f"dataset spec: missing required key(s) {missing}")
    for name, value in data.items():
        text, optional = types.get(name) in _TEXT, types.get(name) in _OPTIONAL_TEXT
        if (text or optional) and not isinstance(value, str) and not (optional and value is None):
            raise DatasetError(f"dataset spec: '{name}' must be a string{' or null' if optional else ''}, got {value!r}")
    return {k: v for k, v in data.items() if k in types}


# A spec field's annotation, as a type or (in a module with postponed annotations) as text.
_TEXT = (str, "str")
_OPTIONAL_TEXT = (str | None, "str | None")
