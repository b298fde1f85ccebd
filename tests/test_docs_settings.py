"""Every setting README.md and docs/*.md name exists, as its variable (`TRAINARENA_SCHEDULE__TEXT_POOL`, or
the short `__IMAGE_POOL` after it), its key (`schedule.text_pool`) or a field with its default beside it
(`group_size_min` (6), `lease.lease_seconds`, default 60 s); every value the docs assign in a variable is
one the settings take; and every default the docs state that way is the code's. Operators copy these
lines into their environment, where a misspelt name is ignored with a warning at best."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from trainarena.contract import RunSpec, TaskType, script_environment
from trainarena.settings import Settings
from trainarena.settings.problems import misspelt_variables

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

SECTIONS = {name: field.annotation for name, field in Settings.model_fields.items() if hasattr(field.annotation, "model_fields")}
VARIABLES = {f"TRAINARENA_{name.upper()}" for name in Settings.model_fields} | {
    f"TRAINARENA_{section.upper()}__{field.upper()}" for section, model in SECTIONS.items() for field in model.model_fields
}
_RUN = RunSpec(run_id="r", task_type=TaskType.INSTRUCT, dataset_file="train.jsonl", budget_seconds=1, seed=0, devices=(),
               base_model_name="m")
# Variables of the prefix that are no settings: those a training script is given (docs/contract.md),
# the test suite's (tests/conftest.py) and the host port docker/compose.yaml reads from docker/.env.
NOT_SETTINGS = {*script_environment(_RUN, deadline_unix=0), "TRAINARENA_TEST_STORE", "TRAINARENA_API_PORT"}
# The README's examples of what a misspelt setting gets: a refusal or a warning naming the setting meant.
MISSPELT_EXAMPLES = {"TRAINARENA_RULES__BOS_MARGIN": "TRAINARENA_RULES__BOSS_MARGIN", "TRAINARENA_DATADIR": "TRAINARENA_DATA_DIR",
                     "TRAINARENA_SCHEDULE_TEXT_POOL": "TRAINARENA_SCHEDULE__TEXT_POOL"}

VARIABLE = re.compile(r"(?<![A-Z_])(TRAINARENA_[A-Z0-9_]*[A-Z0-9]|__[A-Z][A-Z0-9_]*[A-Z0-9])(_?\*)?")
ASSIGNMENT = re.compile(r"(TRAINARENA_[A-Z0-9_]+)=('[^'\n]*'|\"[^\"\n]*\"|[^\s`'\")]+)")
KEY = re.compile(r"`([a-z_]+)\.([a-z_0-9]+)`")
FILE_SUFFIXES = {"md", "py", "txt", "json", "toml", "pem", "png"}  # `rules.md`, `sandbox.txt`: files, not keys
NOT_KEYS = {("data", "lines")}  # a job event's `data` object (docs/api.md, "Jobs"), not the settings' data section
DEFAULT = re.compile(r"`(?:([a-z_]+)\.|TRAINARENA_([A-Z_]+?)__)?([a-zA-Z_0-9]+)`((?: [a-z]+){0,2}(?:,? \(|, ))(?:default )?([\d,.]*\d)(?:\^(\d+))? ?(%|s\b|seconds?|minutes?|hours?)?")
DEFAULTS_LIST = re.compile(r"`([a-z_]+)` ([\d.]*\d)")  # in a "Defaults:" sentence: `champion_share` 0.5, ...
UNITS = {None: 1, "s": 1, "second": 1, "seconds": 1, "minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "%": 0.01}


def _lines() -> list[tuple[str, str]]:
    return [(f"{document.relative_to(ROOT)}:{number}", line) for document in DOCUMENTS
            for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), start=1)]  # fmt: skip


def named_variables() -> list[tuple[str, str]]:
    """(where, variable) of every variable the docs name; `__FIELD` is the section of the variable named last
    in the same document, `TRAINARENA_DATA__REWARD_*` every variable starting so."""
    found, section, document = [], None, None
    for where, line in _lines():
        if where.split(":")[0] != document:
            section, document = None, where.split(":")[0]
        for match in VARIABLE.finditer(line):
            name, wildcard = match.group(1), match.group(2)
            if name.startswith("__"):
                if section is None:
                    continue  # `__init__`-like text, or a short form with no variable before it
                name = f"{section}{name}"
            elif "__" in name:
                section = name.split("__")[0]
            found.append((where, name + ("*" if wildcard else "")))
    return found


def test_the_docs_are_read_for_settings() -> None:
    """The extraction finds a short form's section, a wildcard, a key's default and a variable's."""
    named = {name for _, name in named_variables()}
    assert {"TRAINARENA_SCHEDULE__IMAGE_OFFSET", "TRAINARENA_WEIGHTS__FALLBACK_HOTKEY", "TRAINARENA_DATA__REWARD*"} <= named
    stated = {key for _, key, _, _ in _defaults()}
    assert {"rules.group_size_min", "dashboard.poll_seconds", "schedule.retry_after_fault", "data.test_fraction",
            "lease.lease_seconds", "weights.rank_decay", "weights.hybrid_cap"} <= stated
    written = ["`api.json_body_max_bytes` (4,000,000)", "`data.max_row_bytes` (2^18)", "`api.page_size`, 50",
               "`api.rate_limit_burst` requests (120)", "`TRAINARENA_DASHBOARD__POLL_SECONDS` (3 s)", "`test_fraction` (10%)",
               "`boss_rounds_max` x `boss_tasks_text`, 15 by default", "`orphan_grace` (1 hour)"]
    assert [(key, value) for _, key, _, value in _defaults([("x", line) for line in written])] == [
        ("api.json_body_max_bytes", 4e6), ("data.max_row_bytes", 2.0**18), ("api.page_size", 50),
        ("api.rate_limit_burst", 120), ("dashboard.poll_seconds", 3), ("data.test_fraction", 0.1), ("registry.orphan_grace", 3600)]


def test_every_variable_the_docs_name_is_a_setting() -> None:
    unknown = []
    for where, name in named_variables():
        if name.endswith("*"):
            known = any(variable.startswith(name[:-1]) for variable in VARIABLES)
        else:
            known = name in VARIABLES or name in NOT_SETTINGS or name in MISSPELT_EXAMPLES
        if not known:
            unknown.append(f"{where}: {name}")
    assert unknown == []


def test_the_readme_misspelt_examples_are_refused_or_warned_naming_the_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for misspelt, meant in MISSPELT_EXAMPLES.items():
        assert misspelt in readme and meant in VARIABLES
        if misspelt.count("__") and misspelt.split("__")[0] in VARIABLES:  # a section's unknown field: refused
            with pytest.raises(ValueError, match="Extra inputs are not permitted"):
                Settings.model_validate({misspelt.split("__")[0].removeprefix("TRAINARENA_").lower(): {misspelt.split("__")[1].lower(): 1}})
        else:
            assert misspelt_variables(Settings, {misspelt: "x"}) == [f"{misspelt} names no setting and is ignored; did you mean {meant}?"]


def test_every_settings_key_the_docs_name_exists() -> None:
    unknown = [f"{where}: {section}.{field}" for where, line in _lines() for section, field in KEY.findall(line)
               if section in SECTIONS and field not in SECTIONS[section].model_fields
               and field not in FILE_SUFFIXES and (section, field) not in NOT_KEYS]  # fmt: skip
    assert unknown == []


def _assignments() -> list[tuple[str, str, str]]:
    found = []
    for where, line in _lines():
        for name, value in ASSIGNMENT.findall(line):
            if value[0] in "'\"":
                value = value[1:-1]
            if name in VARIABLES and not re.search(r"[a-z] [a-z]", value):  # '[first uid, count]' is a placeholder
                found.append((where, name, value))
    return found


@pytest.mark.parametrize(("where", "name", "value"), _assignments(), ids=[f"{w} {n}" for w, n, _ in _assignments()])
def test_every_value_the_docs_assign_is_taken(where: str, name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in [v for v in os.environ if v.startswith("TRAINARENA_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv(name, value)
    Settings()  # a value the settings refuse raises, naming the variable


def _defaults(lines: list[tuple[str, str]] | None = None) -> list[tuple[str, str, object, float]]:
    """(where, key, the code's default, the docs' value) of each default the docs' lines (or ``lines``) state."""
    owners: dict[str, list[str]] = {}
    for section, model in SECTIONS.items():
        for field in model.model_fields:
            owners.setdefault(field, []).append(section)
    found = []
    for where, line in _lines() if lines is None else lines:
        listed = [("", "", field, "(", number, "", "") for field, number in DEFAULTS_LIST.findall(line)] if "Defaults:" in line else []
        for key_section, variable_section, field, between, number, power, unit in [*DEFAULT.findall(line), *listed]:
            field = field.lower()
            section = key_section or variable_section.lower() or None
            if section is None and between.strip(" ,") != "(":
                continue  # a bare field name is followed by its own value only in parentheses
            candidates = [section] if section else owners.get(field, [])
            if len(candidates) != 1 or candidates[0] not in SECTIONS or field not in SECTIONS[candidates[0]].model_fields:
                continue  # not a setting, or a field name two sections share, written without its section
            value = float(number.replace(",", "")) ** int(power or 1) * UNITS[unit or None]
            found.append((where, f"{candidates[0]}.{field}", getattr(getattr(Settings(), candidates[0]), field), value))
    return found


def test_every_default_the_docs_state_is_the_code_default() -> None:
    stated = _defaults()
    assert len(stated) > 30
    wrong = []
    for where, key, default, value in stated:
        code = default.total_seconds() if isinstance(default, timedelta) else default
        if not isinstance(code, int | float) or abs(code - value) > 1e-9 * max(1.0, abs(value)):
            wrong.append(f"{where}: {key} is {default!r} in the code, {value:g} in the docs")
    assert wrong == []
