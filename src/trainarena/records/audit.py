"""``trainarena audit RUN_ID``: run a stored run again from its signed record and compare the scores.

What an audit shows: that the script the record names (the registered commit's tree, checked against
the record's git tree hash, or the working tree's snapshot, checked against its digest), trained again
on the same task (type, base model, dataset and field mapping, split key, budget, seed; an image task
noised from the master seed its evaluation was), with the base model and both splits unchanged (their
digests checked before anything runs), through the same sandboxed executor, scores within the noise
that repeated runs of one script show on that task type -- or by how much it does not. The record is
read from the transparency log and both its statements (run, evaluation) are checked against the
operator's key, and the store's row against them, first.

The noise band is measured, never assumed: stored runs of one submission tree on one task key
(``tasks.digest``: ``trainarena run --seeds N``, tournament retries, earlier audits) give relative
differences between pairs of runs; pooled over the task type, a quantile of them is the band
(``records.audit_band_*``). With too few such runs the band is unknown and the difference is shown
alone. The audit run is itself stored (origin ``audit``, naming the audited run, with its own signed
record), so each audit adds to the band; it is a re-measurement, so no task board counts it as the
competitor's run.

What an audit cannot show: that the recorded run happened on the hardware or library versions it
names (the audit runs on today's machine and environment); that a nondeterministic script did
exactly what it did then (only that its score is within the noise); that a score outside the band
is dishonest rather than a script more variable than the runs the band came from. A customer's job
run is not audited (its data is split by the job's own rules, and its results are private).
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from trainarena.attempts import store_report
from trainarena.contract import MANIFEST_NAME, Direction, RunStatus, TaskType
from trainarena.execution.output_tree import remove_tree
from trainarena.pipeline import resolve_base_model
from trainarena.records.audit_verdict import Comparison, NoiseBand, Verdict, compare, noise_band
from trainarena.records.log import entry_leaf_hash
from trainarena.records.provenance import folder_digest, split_digests
from trainarena.records.recorder import recorder_for
from trainarena.records.signing import (
    OperatorKeyError,
    SignatureError,
    envelope_keyid,
    load_key,
    open_envelope,
    public_key_from_pem,
    public_pem_for,
)
from trainarena.records.statements import PAYLOAD_TYPE, Kind, kind_of, payload_digest
from trainarena.runs import CompetitorInfo, RunNotStarted, RunReport, SubmissionChanged, definition_json, stopped_report, task_key
from trainarena.settings import Settings
from trainarena.store import Store, get_competitor
from trainarena.store.adhoc import WorkingTree, start_adhoc_run, withdraw_adhoc_run
from trainarena.store.log_tables import LogEntry
from trainarena.store.models import Run, RunAttempt, RunOrigin, TaskRow
from trainarena.store.shown_status import shown_outcome
from trainarena.submissions import RegistrationError, checkout_path, parse_manifest, register, snapshot_worktree
from trainarena.submissions.tree_hash import git_tree_hash
from trainarena.tasks import get_task_type
from trainarena.tasks.base import DatasetError, TaskDefinition
from trainarena.tasks.secret_split import PUBLIC_NOISE, split_settings

__all__ = [
    "AuditExecutor", "AuditReport", "CannotAudit", "NoiseBand", "SignedRun", "Verdict", "as_scored", "audit_run",
    "compare", "current_inputs", "noise_band", "read_signed_run",
]

Say = Callable[[str], None]
# The digests of a task's inputs, under the names the run statement gives them.
INPUTS = {"base_model_sha256": "base model", "train_split_sha256": "train split", "hidden_split_sha256": "hidden split"}


class CannotAudit(Exception):
    """The run cannot be audited (no record, a record that does not check out, the tree gone, an input
    changed): the message says which and what to do."""


class AuditExecutor(Protocol):
    """What an audit needs of ``pipeline.SandboxedExecutor`` (tests pass a fake)."""

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport: ...


# --- the signed record ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRun:
    """A run's two statements, their signatures checked, and where they are in the log."""

    run_id: int
    attempt: int
    run_index: int
    evaluation_index: int
    keyid: str
    run: dict[str, Any]  # the run statement's predicate
    evaluation: dict[str, Any]  # the evaluation statement's predicate


def _signed_statement(session: Session, key: Any, entry_key: str, kind: Kind) -> tuple[int, dict[str, Any]]:
    entry = session.scalar(select(LogEntry).where(LogEntry.key == entry_key))
    if entry is None:
        raise CannotAudit(f"{entry_key} is not in the transparency log: the run was stored before records existed "
                          "or while records.enabled was off, so there is no signed record to audit against")
    where = f"log entry {entry.index} ({entry_key})"
    if entry.leaf_hash != entry_leaf_hash(entry.envelope).hex():
        raise CannotAudit(f"{where}: its envelope does not hash to its leaf; run `trainarena verify` on an export")
    try:
        statement = open_envelope(entry.envelope, key, PAYLOAD_TYPE)
        found = kind_of(statement)
    except (SignatureError, ValueError) as error:
        raise CannotAudit(f"{where}: {error}") from error
    if found != kind:
        raise CannotAudit(f"{where} is a {found.value} statement, not a {kind.value} statement")
    return entry.index, statement


def _store_disagreements(run: Run, attempt: RunAttempt, signed: SignedRun) -> list[str]:
    """Where the store's rows differ from the signed record (the record wins; the store was changed)."""
    record, evaluation = signed.run, signed.evaluation
    stored_score = None if attempt.evaluation is None else attempt.evaluation.score
    submission = record["submission"]
    checks = [("status", attempt.status, record["exit"]["status"]), ("score", stored_score, evaluation["score"]),
              ("artifact sha256", attempt.artifact_digest, record["artifact_sha256"]),
              ("task digest", run.task.digest, record["task"]["definition_digest"])]  # fmt: skip
    audited = record["run"].get("audit_of")  # absent from records signed before audits named their run
    if run.audit_of_id is not None and "audit_of" in record["run"]:  # None in the store: the audited run was deleted
        checks.append(("audited run", run.audit_of_id, None if audited is None else audited.get("run_id")))
    if run.competitor is not None:
        checks.append(("tree hash", run.competitor.tree_hash, submission.get("tree_hash")))
    elif run.source_path is not None:
        checks.append(("working tree", run.source_path, submission.get("path")))
    return [f"{name}: {stored!r} in the store, {recorded!r} signed" for name, stored, recorded in checks if stored != recorded]


def read_signed_run(session: Session, run_id: int, key: Any) -> SignedRun:
    """Run ``run_id``'s signed run and evaluation statements, each checked against ``key`` (an SSlibKey),
    linked to each other and agreeing with the store's rows; CannotAudit naming what does not."""
    run = session.get(Run, run_id)
    if run is None:
        raise CannotAudit(f"no run {run_id}; `trainarena runs list` shows the stored runs")
    if run.origin in RunOrigin.PRIVATE:
        raise CannotAudit(f"run {run_id} is a customer's training job: its data is split by the job's own rules "
                          "and its results are private, so it is not audited")
    attempt = run.counted_attempt
    if attempt is None:
        raise CannotAudit(f"run {run_id} has no counted attempt (status {shown_outcome(run)[0]}): nothing was recorded to audit")
    number = attempt.number
    run_index, run_statement = _signed_statement(session, key, f"run:{run_id}:attempt:{number}", Kind.RUN)
    if attempt.evaluation is None:
        raise CannotAudit(f"run {run_id} was never scored (status {shown_outcome(run)[0]}): there is no score to reproduce")
    evaluation_index, evaluation = _signed_statement(session, key, f"evaluation:{run_id}:attempt:{number}", Kind.EVALUATION)
    predicate, scored = run_statement["predicate"], evaluation["predicate"]
    if scored["score"] is None:
        raise CannotAudit(f"run {run_id}'s signed evaluation has no score ({scored.get('failure') or 'not scored'}): "
                          "there is no score to reproduce")
    if (predicate["run"]["id"], predicate["run"]["attempt"]) != (run_id, number):
        raise CannotAudit(f"log entry {run_index} is signed for run {predicate['run']['id']} attempt "
                          f"{predicate['run']['attempt']}, not run {run_id} attempt {number}")
    if scored["run"]["statement"] != {"log_index": run_index, "payload_sha256": payload_digest(run_statement)}:
        raise CannotAudit(f"the evaluation statement (log entry {evaluation_index}) does not name the run statement "
                          f"(log entry {run_index}) it scores")
    signed = SignedRun(run_id, number, run_index, evaluation_index, key.keyid, predicate, scored)
    disagreements = _store_disagreements(run, attempt, signed)
    if disagreements:
        raise CannotAudit(f"the store disagrees with the signed record of run {run_id}: " + "; ".join(disagreements)
                          + "; the store was changed after the run was recorded (`trainarena verify` on an export says more)")
    return signed


# --- the submission and the task, rebuilt from the record ------------------------------------------


@dataclass(frozen=True)
class Submission:
    info: CompetitorInfo
    competitor: str | None  # the registered name
    tree: WorkingTree | None  # an unregistered working tree's source and snapshot


def _registered(settings: Settings, recorded: dict[str, Any]) -> Submission:
    name, repo, commit = recorded["name"], recorded["repo"], recorded["commit"]
    checkout = checkout_path(settings, commit)
    if not checkout.is_dir():
        try:
            register(settings, name=name, repo=repo, commit=commit)
        except RegistrationError as error:
            raise CannotAudit(f"the tree of {name} ({repo}@{commit[:12]}) is gone from the cache and cannot be "
                              f"fetched again: {error}") from error
    found = git_tree_hash(checkout)
    if found != recorded["tree_hash"]:
        raise CannotAudit(f"the checkout {checkout} has git tree {found[:12]}, the record names tree "
                          f"{recorded['tree_hash'][:12]}: it was changed; delete it to have it exported again")
    info = CompetitorInfo(name, repo, commit, recorded["tree_hash"], recorded["entrypoint"], submission_dir=checkout)
    return Submission(info, name, None)


def _working_tree(settings: Settings, recorded: dict[str, Any], snapshot_path: str | None) -> Submission:
    digest = recorded.get("snapshot_sha256")
    snapshot = None if snapshot_path is None else Path(snapshot_path)
    if digest is None:
        raise CannotAudit("the record names no digest of the working tree's snapshot: nothing to check a tree against")
    if snapshot is None or not snapshot.is_dir():
        # The cache was cleared: the source folder, snapshotted again, serves if it still holds the same tree.
        source = Path(recorded["path"])
        try:
            snapshot = snapshot_worktree(settings, source).snapshot_dir if source.is_dir() else None
        except RegistrationError:
            snapshot = None
        if snapshot is None or folder_digest(snapshot) != digest:
            raise CannotAudit(f"the snapshot the run used is gone, and the working tree at {source} no longer holds "
                              "the tree it ran (missing or changed): the tree is gone")
    elif folder_digest(snapshot) != digest:
        raise CannotAudit(f"the snapshot {snapshot} has changed since the run (digest {folder_digest(snapshot)}, "
                          f"recorded {digest}); delete it and snapshot the tree again")
    manifest = parse_manifest((snapshot / MANIFEST_NAME).read_text(encoding="utf-8"))
    info = CompetitorInfo(Path(recorded["path"]).name, recorded["path"], recorded.get("commit") or "", digest, manifest.entrypoint,
                          submission_dir=snapshot)
    return Submission(info, None, WorkingTree(recorded["path"], recorded.get("commit"), recorded.get("dirty"), str(snapshot)))


def rebuild_task(record: dict[str, Any]) -> TaskDefinition:
    """The task definition the record states, checked against the definition digest it signs."""
    task = record["task"]
    definition = TaskDefinition(name=task["name"], task_type=TaskType(task["type"]), base_model=task["base_model"],
                                dataset=task["dataset"], budget_seconds=record["budget_seconds"], seed=record["seed"],
                                split_key=task.get("split_key"))  # fmt: skip
    if task_key(definition) != task["definition_digest"]:
        raise CannotAudit(f"the recorded task {task['name']!r} does not hash to its recorded digest "
                          f"{task['definition_digest']}: the record cannot be replayed")
    return definition


def as_scored(task: TaskDefinition, evaluation: Mapping[str, Any]) -> TaskDefinition:
    """``task`` to be scored as its recorded evaluation was: an image task with a split key whose
    evaluation names no ``noise_seed`` (recorded before noise seeds were per task) was noised from the
    public ``eval_master_seed``, and is audited so."""
    if task.task_type != TaskType.IMAGE or task.split_key is None:
        return task
    # An evaluation recorded before its details named one took its noise master seed from the public one.
    source = (evaluation.get("details") or {}).get("noise_seed", PUBLIC_NOISE)
    return replace(task, public_noise=source == PUBLIC_NOISE)


def current_inputs(settings: Settings, task: TaskDefinition) -> dict[str, str | None]:
    """Today's digests of the task's base model and splits, as the run statement names them. The splits
    are made again from the dataset as it is now, in a scratch folder: the prepared-task cache is keyed
    by the definition, not by the file's content, so a cached split would hide a dataset edited since."""
    settings.hidden_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=".audit-inputs-", dir=settings.hidden_dir) as scratch:
            train, hidden = Path(scratch) / "train", Path(scratch) / "hidden"
            train.mkdir()
            hidden.mkdir()
            prepared = get_task_type(task.task_type).prepare(task, train, hidden, split_settings(task, settings))
            splits = split_digests(prepared.to_json())
        model = resolve_base_model(task.base_model)
    except DatasetError as error:
        raise CannotAudit(f"the task's data cannot be prepared now: {error}") from error
    return {"base_model_sha256": folder_digest(model), **splits}


def uncommitted_inputs(session: Session, key: Any, signed: SignedRun) -> list[str]:
    """Where a pool tournament's run recorded another hidden split than its tournament's signed
    commitment names for the task (as ``verify`` checks): the run played on data changed after the
    tournament committed to it, so its own record (which the other checks hold today's files against)
    cannot vouch for it. Empty for other runs, and for tournaments that drew no pool."""
    place = signed.run["run"].get("place")
    if not place:
        return []
    entry_key = f"tournament:{place['tournament_id']}:commitment"
    if session.scalar(select(LogEntry.index).where(LogEntry.key == entry_key)) is None:
        return []
    index, commitment = _signed_statement(session, key, entry_key, Kind.COMMITMENT)
    task = signed.run["task"]
    committed = {t.get("name"): t for t in commitment["predicate"].get("tasks") or ()}.get(task["name"])
    if committed is None:
        return []
    name = "hidden_split_sha256"  # what `verify` holds every run against ("hidden splits as committed")
    if committed.get(name) == task.get(name):
        return []
    return [f"hidden split: run {signed.run_id} recorded {task.get(name)}, the commitment (log entry {index}) names {committed.get(name)}"]


def changed_inputs(recorded: Mapping[str, Any], now: Mapping[str, str | None]) -> list[str]:
    return [f"{label}: recorded {recorded.get(name)}, now {now.get(name)}"
            for name, label in INPUTS.items() if recorded.get(name) != now.get(name)]


# --- the audit (the shell) ------------------------------------------------------------------------------


def _tree_identity(run: Run) -> str | None:
    """What makes two runs runs of the same submission: a commit's git tree, a working tree's content-addressed snapshot."""
    if run.competitor is not None:
        return f"tree:{run.competitor.tree_hash}"
    if run.snapshot_path is not None:
        return f"snapshot:{run.snapshot_path}"
    return None


def repeated_scores(session: Session, task_type: str, *, leave_out: int | None = None) -> dict[tuple[str, str], list[float]]:
    """Scores of the stored runs of ``task_type``, grouped by (task key, tree); customers' jobs left out."""
    runs = session.scalars(
        select(Run).where(Run.status == RunStatus.SUCCEEDED.value, Run.origin.not_in(RunOrigin.PRIVATE))
        .options(selectinload(Run.counted_attempt).selectinload(RunAttempt.evaluation), selectinload(Run.competitor),
                 selectinload(Run.task).load_only(TaskRow.digest, TaskRow.definition))
        .order_by(Run.id)
    )  # fmt: skip
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for run in runs:
        tree, evaluation = _tree_identity(run), run.evaluation
        if run.id == leave_out or tree is None or evaluation is None or evaluation.score is None:
            continue
        if run.task.definition.get("task_type") == task_type:
            groups[(run.task.digest, tree)].append(evaluation.score)
    return dict(groups)


@dataclass(frozen=True)
class AuditReport:
    run_id: int
    audit_run_id: int
    record: SignedRun
    submission: dict[str, Any]  # what ran, as the run statement names it
    task: TaskDefinition
    comparison: Comparison
    band: NoiseBand
    audit_status: str
    failure_reason: str | None
    run_dir: Path

    def to_json(self) -> dict[str, Any]:
        record = self.record
        comparison = {**asdict(self.comparison), "direction": self.comparison.direction.value,
                      "verdict": self.comparison.verdict.value}
        return {
            "run_id": self.run_id, "audit_run_id": self.audit_run_id,
            "record": {"attempt": record.attempt, "run_entry": record.run_index,
                       "evaluation_entry": record.evaluation_index, "keyid": record.keyid},
            "submission": self.submission,
            "task": {"name": self.task.name, "type": self.task.task_type.value, "budget_seconds": self.task.budget_seconds,
                     "seed": self.task.seed},
            **comparison, "band": asdict(self.band),
            "audit_status": self.audit_status, "failure_reason": self.failure_reason, "run_dir": str(self.run_dir),
        }  # fmt: skip


def _record_key(settings: Settings, session: Session, run_id: int) -> Any:
    """The public key that signed the run's record: the operator key, or the one it replaced when the key
    was rotated since (``retired-keys/``)."""
    try:
        current = load_key(settings.operator_key_path)
    except OperatorKeyError as error:
        raise CannotAudit(f"the records cannot be checked without the operator's key: {error}") from error
    entry = session.scalar(select(LogEntry).where(LogEntry.run_id == run_id, LogEntry.kind == Kind.RUN.value)
                           .order_by(LogEntry.index.desc()).limit(1))
    signer = None if entry is None else envelope_keyid(entry.envelope)
    pem = None if signer is None else public_pem_for(settings.operator_key_path, signer)
    return current.public if pem is None else public_key_from_pem(pem)


def _rebuild(settings: Settings, store: Store, run_id: int) -> tuple[SignedRun, Submission]:
    with store.session() as session:
        key = _record_key(settings, session, run_id)
        signed = read_signed_run(session, run_id, key)
        snapshot_path = session.get_one(Run, run_id).snapshot_path
        uncommitted = uncommitted_inputs(session, key, signed)
    if uncommitted:
        raise CannotAudit(f"run {run_id} played on inputs its tournament had not committed to (the task's data was "
                          "changed after the tournament was created), so its record does not stand for the tournament "
                          "and a new score would say nothing of it: " + "; ".join(uncommitted))
    recorded = signed.run["submission"]
    if recorded.get("kind") == "registered":
        return signed, _registered(settings, recorded)
    if recorded.get("kind") == "working tree":
        return signed, _working_tree(settings, recorded, snapshot_path)
    raise CannotAudit(f"run {run_id} is a {recorded.get('kind')} reference, not a script's run: there is no tree to run again")


def audit_run(settings: Settings, store: Store, executor: AuditExecutor, run_id: int, *, say: Say | None = None,
              inputs: Callable[[Settings, TaskDefinition], Mapping[str, str | None]] | None = None) -> AuditReport:
    """Check run ``run_id``'s record, rebuild its submission and task, check the inputs, run it again
    (stored and recorded as an audit run of ``run_id``) and compare. CannotAudit when any check before the run fails.
    ``inputs`` gives today's input digests (default :func:`current_inputs`)."""
    tell = say or (lambda _message: None)
    tell(f"checking the signed record of run {run_id}")
    signed, submission = _rebuild(settings, store, run_id)
    task = as_scored(rebuild_task(signed.run), signed.evaluation)
    tell(f"checking the digests of {task.name}'s base model and splits")
    changed = changed_inputs(signed.run["task"], (inputs or current_inputs)(settings, task))
    if changed:
        raise CannotAudit(f"the inputs of run {run_id} changed since it was recorded, so a new score would not "
                          "say anything about the old one: " + "; ".join(changed))
    with store.transaction() as session:
        competitor = None if submission.competitor is None else get_competitor(session, submission.competitor)
        new_id = start_adhoc_run(session, origin=RunOrigin.AUDIT, definition=definition_json(task), digest=task_key(task),
                                 competitor=competitor, source=submission.tree, audit_of=run_id).id  # fmt: skip
    run_dir = settings.work_dir / "audits" / f"run-{run_id}-{new_id}"
    tell(f"running {submission.info.name} on {task.name} again as run {new_id} "
         f"(budget {task.budget_seconds:g} s, seed {task.seed})")
    report = _execute(settings, store, executor, submission.info, task, new_id, run_dir)
    with store.session() as session:
        band_rules = settings.records
        band = noise_band(repeated_scores(session, task.task_type.value, leave_out=new_id), task.task_type.value,
                          quantile=band_rules.audit_band_quantile, min_runs=band_rules.audit_band_min_runs)
    new_score = None if report.evaluation is None or report.status != RunStatus.SUCCEEDED else report.evaluation.score
    comparison = compare(signed.evaluation["score"], new_score, Direction(signed.evaluation["direction"]), band)
    return AuditReport(run_id, new_id, signed, signed.run["submission"], task, comparison, band, RunStatus(report.status).value,
                       report.failure_reason, run_dir)


def _execute(settings: Settings, store: Store, executor: AuditExecutor, info: CompetitorInfo, task: TaskDefinition,
             new_id: int, run_dir: Path) -> RunReport:
    """The audit run through the executor, stored (and signed) like any run; stored as failed if stopped.
    One the platform could not start or count (``RunNotStarted``) is removed and the error raised on: a
    failed audit run would read as a run that does not reproduce."""
    started = time.time()
    try:
        report = executor.run_task(info, task, run_dir, f"audit-run{new_id}")
    except SubmissionChanged as error:  # the tree changed under the audit run: stored as failed, saying why
        report = stopped_report(error, started, run_dir)
    except RunNotStarted:
        with store.transaction() as session:
            withdraw_adhoc_run(session, new_id)
        remove_tree(run_dir)
        raise
    except BaseException as error:
        _store(settings, store, new_id, stopped_report(error, started, run_dir))
        raise
    _store(settings, store, new_id, report)
    return report


def _store(settings: Settings, store: Store, run_id: int, report: RunReport) -> None:
    recorder = recorder_for(settings)
    with store.transaction() as session:
        store_report(session, run_id, 1, report)
        if recorder is not None:
            recorder.run_stored(session, run_id)
