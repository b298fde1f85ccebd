"""What is wrong with the ``TRAINARENA_*`` environment, one line per bad setting, naming the variable:
the shells (the CLI's entry) print these instead of pydantic's multi-line report and a traceback."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping

from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

__all__ = ["ENV_PREFIX", "misspelt_variables", "setting_problems", "settings_error_problems"]

ENV_PREFIX = "TRAINARENA_"
NESTED_DELIMITER = "__"
# Values never echoed back: a database URL may hold a password, a secret is a secret.
_HIDDEN_VALUE = re.compile(r"secret|password|token|database_url", re.IGNORECASE)
# pydantic's wording where a user of an environment variable needs the accepted forms instead.
_HINTS = {
    "time_delta_parsing": "not a duration (seconds, or ISO 8601 such as P14D or PT10M)",
    "time_delta_type": "not a duration (seconds, or ISO 8601 such as P14D or PT10M)",
    "datetime_parsing": "not a time (ISO 8601, such as 2026-01-05T12:00:00Z)",
    "datetime_from_date_parsing": "not a time (ISO 8601, such as 2026-01-05T12:00:00Z)",
}


# Variables of this prefix that are no settings: the test suite's own (tests/conftest.py), and the
# host port docker/compose.yaml publishes the API on (read by compose from docker/.env).
_TEST_PREFIX = ENV_PREFIX + "TEST_"
_COMPOSE_PORT = ENV_PREFIX + "API_PORT"
# How close a name must be to a setting's variable to be taken for a misspelling of it (difflib's ratio).
_CLOSE = 0.8


def _variable(location: tuple[str | int, ...]) -> str:
    return ENV_PREFIX + NESTED_DELIMITER.join(str(part) for part in location).upper()


def _given(variable: str, environ: Mapping[str, str]) -> str | None:
    """The variable's value as set (names are matched without case, as the settings read them)."""
    return next((value for name, value in environ.items() if name.upper() == variable), None)


def _setting_variables(model: type[BaseModel], location: tuple[str, ...] = ()) -> Iterator[str]:
    """Every variable a setting of ``model`` is read from: each section's whole-JSON one and its fields'."""
    for name, field in model.model_fields.items():
        yield _variable((*location, name))
        if not location and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _setting_variables(field.annotation, (name,))


def _closest(name: str, known: list[str]) -> str:
    found = difflib.get_close_matches(name.upper(), known, n=1, cutoff=_CLOSE)
    return f"; did you mean {found[0]}?" if found else ""


def misspelt_variables(settings: type[BaseModel], environ: Mapping[str, str] | None = None) -> list[str]:
    """``TRAINARENA_DATADIR names no setting and is ignored; did you mean TRAINARENA_DATA_DIR?``: a variable
    of the prefix that no setting reads but that looks meant as one (close to a setting's variable, or
    naming a section with the double underscore). pydantic-settings ignores it, so the platform ran on
    the default (a store in ./.trainarena instead of the data directory meant) without a word."""
    environ = os.environ if environ is None else environ
    known = list(_setting_variables(settings))
    lines = []
    for name in sorted(environ):
        upper = name.upper()
        section = upper.split(NESTED_DELIMITER)[0]
        # A section's unknown field is refused by the settings themselves (setting_problems says which).
        in_section = section in known and section != upper
        if not upper.startswith(ENV_PREFIX) or upper.startswith(_TEST_PREFIX) or upper in (*known, _COMPOSE_PORT) or in_section:
            continue
        hint = _closest(upper, known)
        if hint or NESTED_DELIMITER in upper.removeprefix(ENV_PREFIX):
            lines.append(f"{name} names no setting and is ignored{hint}")
    return lines


def setting_problems(error: ValidationError, settings: type[BaseModel], environ: Mapping[str, str] | None = None) -> list[str]:
    """``TRAINARENA_SCHEDULE__TEXT_EVERY='garbage' (setting schedule.text_every): not a duration ...``,
    one line per error of a ``settings()`` that failed; a rule across settings (no location) says
    itself which variables to set."""
    environ = os.environ if environ is None else environ
    lines = []
    for problem in error.errors(include_url=False):
        message = _HINTS.get(problem["type"]) or problem["msg"].removeprefix("Value error, ")
        location = tuple(problem["loc"])
        if problem["type"] == "extra_forbidden":  # pydantic's "Extra inputs are not permitted"
            fields = [name for name in _setting_variables(settings) if name.startswith(_variable(location[:1]) + NESTED_DELIMITER)]
            message = f"no such setting in section {location[0]}{_closest(_variable(location), fields)}"
        if not location:
            lines.append(f"settings: {message}")
            continue
        # The deepest variable that was set: TRAINARENA_SCHEDULE__TEXT_EVERY, or TRAINARENA_SCHEDULE
        # when the section came whole as JSON.
        named = next((location[:n] for n in range(len(location), 0, -1) if _given(_variable(location[:n]), environ) is not None),
                     location)
        variable, value = _variable(named), _given(_variable(named), environ)
        shown = variable if value is None or _HIDDEN_VALUE.search(variable) else f"{variable}={value!r}"
        setting = ".".join(str(part) for part in location)
        lines.append(f"{shown} (setting {setting}): {message}")
    return lines


def settings_error_problems(error: SettingsError) -> list[str]:
    """A value pydantic-settings could not even parse (a section given as JSON that is not JSON)."""
    found = re.search(r'field "(\w+)"', str(error))
    if found is None:
        return [f"settings: {error}"]
    return [f"{_variable((found.group(1),))} (setting {found.group(1)}): not valid JSON; give the section's fields "
            f"as {_variable((found.group(1), 'FIELD'))} variables, or the section as a JSON object"]
