"""The field types and base class every settings section shares: paths made absolute where the
settings are built, times in UTC, durations in seconds or ISO 8601."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

__all__ = ["AbsolutePath", "Duration", "ResolvedPath", "Section", "UtcDateTime", "resolved"]


def resolved(path: Path) -> Path:
    return path.expanduser().resolve()


def _absolute(path: Path) -> Path:
    # Not resolve(): a venv's bin/python is a symlink, and the interpreter finds its venv by the path
    # it was started as, so following the link would start the system python instead.
    return Path(os.path.abspath(path.expanduser()))


# Every path in the settings is made absolute once, here, against the working directory the settings
# are built in: a relative path would name another folder in every process that runs elsewhere (the
# evaluation child, the sandbox) and in every record read later.
ResolvedPath = Annotated[Path, AfterValidator(resolved)]
AbsolutePath = Annotated[Path, AfterValidator(_absolute)]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# A time as written in a setting: UTC when it names no zone.
UtcDateTime = Annotated[datetime, AfterValidator(_utc)]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _seconds_or_iso(value: object) -> object:
    """A duration from the environment as plain seconds ("30", "1.5") or ISO 8601 ("P14D", "PT10M")."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


# A duration: seconds (a number or a numeric string) or ISO 8601.
Duration = Annotated[timedelta, BeforeValidator(_seconds_or_iso)]
