"""What a verification works on and reports (``records/verify.py``): the bundle as read, its entries
by what they are about, each check with its failures, and how a log entry is named in them
("entry 12 (evaluation of run 5, attempt 1)")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from trainarena.records.bundle import MANIFEST
from trainarena.records.statements import Kind, kind_of

__all__ = [
    "MISSING", "Bundle", "CheckResult", "Entry", "Failure", "RecordView", "audited_run", "brief", "describe", "reading",
    "short_digest",
]

MISSING = object()  # a field one side of a comparison lacks


@dataclass(frozen=True)
class Failure:
    """One thing that does not check out: the record it is about and what does not match."""

    record: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"record": self.record, "message": self.message}


@dataclass
class CheckResult:
    """One kind of check: what it checks, over how many items, each failure, and each note (something a
    reader should know that does not fail it: what older records did not promise yet)."""

    name: str
    title: str
    checked: int = 0
    failures: list[Failure] = field(default_factory=list)
    notes: list[Failure] = field(default_factory=list)

    def fail(self, record: str, message: str) -> None:
        self.failures.append(Failure(record, message))

    def note(self, record: str, message: str) -> None:
        self.notes.append(Failure(record, message))

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "checked": self.checked, "ok": self.ok,
                "failures": [f.to_json() for f in self.failures], "notes": [n.to_json() for n in self.notes]}


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
    manifest_problem: str | None = None  # why bundle.json could not be read; None when it was

    def manifest_unread(self, check: CheckResult, what: str) -> bool:
        """True when bundle.json could not be read, so ``what`` (a comparison with it) is not made: noted
        on ``check`` as not checked. The files check has already failed on it, once; failing every
        comparison as well repeated that failure with ``None`` for each value bundle.json would give."""
        if self.manifest_problem is None:
            return False
        check.note(MANIFEST, f"{what} not checked: {self.manifest_problem}")
        return True


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
            by, audited = predicate.get("submission", {}).get("name"), audited_run(predicate)
            return (f"run {predicate['run']['id']}, attempt {predicate['run']['attempt']}" + (f", by {by}" if by else "")
                    + ("" if audited is None else f", audit of run {audited.get('run_id')}"))
        if kind is Kind.EVALUATION:
            return f"evaluation of run {predicate['run']['id']}, attempt {predicate['run']['attempt']}"
        tournament = predicate["tournament"]["id"]
        if kind is Kind.ROUND:
            return f"round {predicate['plan']['index']} of tournament {tournament}"
        return f"{kind.value} of tournament {tournament}"
    except (KeyError, TypeError, ValueError, AttributeError):
        return "an unreadable statement"


def audited_run(predicate: dict[str, Any]) -> dict[str, Any] | None:
    """What a run statement's predicate names as the run it audits (``run.audit_of``); None for any
    other run, and for an audit signed before statements named their run."""
    run = predicate.get("run")
    audited = run.get("audit_of") if isinstance(run, dict) else None
    return audited if isinstance(audited, dict) else None


@dataclass
class RecordView:
    """The bundle's entries by what they are about."""

    tournament_id: Any
    by_index: dict[int, Entry] = field(default_factory=dict)
    runs: dict[tuple[Any, Any], Entry] = field(default_factory=dict)
    evaluations: dict[tuple[Any, Any], Entry] = field(default_factory=dict)
    rounds: list[Entry] = field(default_factory=list)
    single: dict[Kind, Entry] = field(default_factory=dict)  # commitment, decision, reveal
    audits: dict[tuple[Any, Any], Entry] = field(default_factory=dict)  # the run statements of audits (also in runs)
    duplicates: list[tuple[Entry, Entry]] = field(default_factory=list)

    @classmethod
    def of(cls, bundle: Bundle, entries: list[Entry]) -> RecordView:
        view = cls(bundle.manifest.get("tournament", {}).get("id") if isinstance(bundle.manifest.get("tournament"), dict) else None)
        for entry in entries:
            view.by_index.setdefault(entry.index, entry)
            run = entry.predicate.get("run") if isinstance(entry.predicate.get("run"), dict) else {}
            if entry.kind in (Kind.RUN, Kind.EVALUATION):
                target = view.runs if entry.kind is Kind.RUN else view.evaluations
                key = (_key_part(run.get("id")), _key_part(run.get("attempt")))
                view._add(target, key, entry)
                if entry.kind is Kind.RUN and audited_run(entry.predicate) is not None:
                    view.audits.setdefault(key, entry)
            elif entry.kind is Kind.ROUND:
                view.rounds.append(entry)
            elif entry.kind is not None:
                view._add(view.single, entry.kind, entry)
        view.rounds.sort(key=lambda e: (_plan_index(e), e.index))
        return view

    def _add(self, target: dict[Any, Entry], key: Any, entry: Entry) -> None:
        if key in target:
            self.duplicates.append((target[key], entry))
        else:
            target[key] = entry


def _key_part(value: Any) -> Any:
    """A run's id or attempt as a dict key: what an edited statement holds may be a list or an object."""
    return value if value is None or isinstance(value, (int, str, float)) else repr(value)


def _plan_index(entry: Entry) -> int:
    index = entry.predicate.get("plan", {}).get("index") if isinstance(entry.predicate.get("plan"), dict) else None
    return index if isinstance(index, int) else -1


@contextmanager
def reading(check: CheckResult, record: str) -> Iterator[None]:
    """A statement without a field a check needs is a failure of that check, not a crash."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        check.fail(record, malformed(error))


def malformed(error: Exception) -> str:
    """What a record a check could not read lacks, in words (a verifier is told about the bundle, not
    about Python): the field a KeyError names, else only that a field is missing or of the wrong shape."""
    if isinstance(error, KeyError) and error.args:
        return f"a field is missing: {brief(error.args[0])}"
    return "a field is missing or malformed (not of the type or shape a statement gives it)"


def brief(value: Any, width: int = 70) -> str:
    text = "(absent)" if value is MISSING else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def short_digest(digest: Any) -> str:
    return f"{digest[:16]}..." if isinstance(digest, str) else repr(digest)
