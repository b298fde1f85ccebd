"""What a verification reports (``records/verify.py``): the bundle as read, each check with its
failures, and how a log entry is named in them ("entry 12 (evaluation of run 5, attempt 1)")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainarena.records.statements import Kind, kind_of

__all__ = ["Bundle", "CheckResult", "Entry", "Failure", "describe"]


@dataclass(frozen=True)
class Failure:
    """One thing that does not check out: the record it is about and what does not match."""

    record: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"record": self.record, "message": self.message}


@dataclass
class CheckResult:
    """One kind of check: what it checks, over how many items, and each failure."""

    name: str
    title: str
    checked: int = 0
    failures: list[Failure] = field(default_factory=list)

    def fail(self, record: str, message: str) -> None:
        self.failures.append(Failure(record, message))

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "checked": self.checked, "ok": self.ok,
                "failures": [f.to_json() for f in self.failures]}


@dataclass(frozen=True)
class Bundle:
    """A bundle's files, parsed; ``problems`` lists the files that are missing or do not parse."""

    manifest: dict[str, Any]
    public_key_pem: str | None
    entries: list[dict[str, Any]]
    tree_heads: list[dict[str, Any]]
    per_example: dict[str, Any]  # file stem (the digest the statements give) -> its parsed values
    claims: dict[str, Any] | None
    problems: list[Failure] = field(default_factory=list)


@dataclass(frozen=True)
class Entry:
    """A log entry of the bundle, opened: its statement (None when its envelope does not decode)."""

    index: int
    kind: Kind | None
    statement: dict[str, Any] | None
    label: str

    @property
    def predicate(self) -> dict[str, Any]:
        predicate = (self.statement or {}).get("predicate")
        return predicate if isinstance(predicate, dict) else {}


def describe(statement: Any) -> str:
    """What a statement is about, in a few words (for naming its entry in a failure)."""
    try:
        kind = kind_of(statement)
        predicate = statement["predicate"]
        if kind is Kind.RUN:
            by = predicate.get("submission", {}).get("name")
            return f"run {predicate['run']['id']}, attempt {predicate['run']['attempt']}" + (f", by {by}" if by else "")
        if kind is Kind.EVALUATION:
            return f"evaluation of run {predicate['run']['id']}, attempt {predicate['run']['attempt']}"
        tournament = predicate["tournament"]["id"]
        if kind is Kind.ROUND:
            return f"round {predicate['plan']['index']} of tournament {tournament}"
        return f"{kind.value} of tournament {tournament}"
    except (KeyError, TypeError, ValueError, AttributeError):
        return "an unreadable statement"
