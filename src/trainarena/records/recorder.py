"""Signs what the platform stores, as it stores it: the shell between the store and the log.

The orchestrator, the job runner and ``trainarena run`` call a :class:`Recorder` inside the
transaction that stores a result, so a statement is in the log exactly when its result is stored:

- a run's counted attempt -> a ``run`` statement and, when scored, an ``evaluation`` statement;
- a tournament about to play its first round -> a ``commitment`` (entrants, the hidden splits and a
  salted hash of each split seed);
- each complete round -> a ``round`` statement (the outcomes, with the engine's decisions);
- the end -> a ``decision`` (boss round, champion, weights, the rules) and a ``reveal`` of the seeds;
  or, for a started tournament the operator cancels, a ``cancellation`` (when, why, the rounds played).

Each entry has a key (``run:12:attempt:1``, ``tournament:3:round:0``...): a resumed driver that
records the same thing again appends nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.contract import TaskType
from trainarena.engine.bracket import replay
from trainarena.engine.model import Finished, TournamentRecord
from trainarena.engine.weights import tournament_weights
from trainarena.records.engine_json import per_example_digest, played_round_json, replay_json
from trainarena.records.hardware import hardware_provider
from trainarena.records.log import Subjects, append
from trainarena.records.provenance import environment, file_subjects, folder_digest, sandbox_applied, split_digests
from trainarena.records.signing import OperatorKey, envelope_payload, init_key, json_safe, load_key
from trainarena.records.statements import ARTIFACT_SUBJECT, Kind, commitment_hash, make_statement, payload_digest, subject
from trainarena.runs import RunReport, definition_from_json
from trainarena.settings import Settings, TournamentRules, WeightRules
from trainarena.store.log_tables import LogEntry
from trainarena.store.models import Job, Run, RunAttempt, RunOrigin, Tournament, UploadedFile, WeightVector
from trainarena.store.pools import get_draw, get_stored_task
from trainarena.store.records import is_round_complete, load_record, load_tournament
from trainarena.store.weight_vectors import publish_weights
from trainarena.submissions.seal import changes, seal
from trainarena.submissions.worktree import snapshot_digest, snapshot_identity, snapshot_problem
from trainarena.tasks.base import TaskDefinition
from trainarena.tasks.secret_split import noise_master_seed, operator_secret, split_seed
from trainarena.wording import HOUSE_SCRIPT

__all__ = ["Recorder", "operator_key", "publish_recorded", "recorder_for", "revealed_task_names", "tournament_json"]


def operator_key(settings: Settings) -> OperatorKey:
    """The operator's signing key, created on first use (as an SSH host key is)."""
    path = settings.operator_key_path
    return load_key(path) if path.exists() else init_key(path)


def recorder_for(settings: Settings) -> Recorder | None:
    """The recorder the settings ask for (None when ``records.enabled`` is off)."""
    return Recorder(settings) if settings.records.enabled else None


def publish_recorded(session: Session, settings: Settings, at: datetime, now: datetime | None = None) -> tuple[WeightVector, bool]:
    """``store.publish_weights`` with a ``weights`` statement logged for a new vector (when records are on)."""
    vector, new = publish_weights(session, rules=settings.weights, at=at, now=now)
    recorder = recorder_for(settings) if new else None
    if recorder is not None:
        recorder.weights_published(session, vector)
    return vector, new


def revealed_task_names(session: Session) -> dict[str, str]:
    """Stored tasks whose split seed a finished tournament revealed, with that tournament's name: their
    hidden rows are public to anyone holding the dataset, so a pool never draws them again."""
    revealed: dict[str, str] = {}
    for envelope in session.scalars(select(LogEntry.envelope).where(LogEntry.kind == Kind.REVEAL.value)):
        predicate = envelope_payload(envelope)["predicate"]
        for task in predicate["tasks"]:
            revealed.setdefault(task["name"], predicate["tournament"]["name"])
    return revealed


def _entry(session: Session, key: str) -> LogEntry | None:
    return session.scalar(select(LogEntry).where(LogEntry.key == key))


def _reference(entry: LogEntry | None) -> dict[str, Any] | None:
    """How one statement names another: its log index and its payload's digest."""
    if entry is None:
        return None
    return {"log_index": entry.index, "payload_sha256": payload_digest(envelope_payload(entry.envelope))}


class Recorder:
    def __init__(self, settings: Settings, key: OperatorKey | None = None) -> None:
        self.settings = settings
        self.key = key or operator_key(settings)
        self.hardware = hardware_provider(settings.records.hardware_attestation)

    # --- runs ------------------------------------------------------------------------------------

    def warm(self, report: RunReport, task: TaskDefinition) -> None:
        """Hash what a run's statement names (base model, splits, artifact, logs) before the transaction
        that stores it: the digests are cached while the files are unchanged, so the statement is then
        built without hashing gigabytes under the database's write lock."""
        self._base_model_digest(task.base_model)
        split_digests(report.prepared_paths or {})
        file_subjects(report.artifact_path)
        file_subjects(report.log_path)

    def run_stored(self, session: Session, run_id: int) -> None:
        """The run and evaluation statements of a run's counted attempt."""
        run = session.get_one(Run, run_id)
        attempt = run.counted_attempt
        if attempt is None:
            return
        about = Subjects(tournament_id=_tournament_id(run), run_id=run.id, job_id=_job_id(session, run))
        key = f"run:{run.id}:attempt:{attempt.number}"
        statement = self.run_statement(session, run, attempt)
        run_index = append(session, self.key, key, Kind.RUN, statement, about)
        if attempt.evaluation is not None:
            evaluation = self.evaluation_statement(run, attempt, statement, run_index)
            append(session, self.key, f"evaluation:{run.id}:attempt:{attempt.number}", Kind.EVALUATION, evaluation, about)

    def run_statement(self, session: Session, run: Run, attempt: RunAttempt) -> dict[str, Any]:
        task = definition_from_json(run.task.definition)
        artifact = file_subjects(Path(attempt.artifact_path)) if attempt.artifact_path else []
        log_dir = Path(attempt.log_path) if attempt.log_path else None
        logs = file_subjects(log_dir)
        identity = f"run:{run.id}:attempt:{attempt.number}"
        predicate = {
            "run": {"id": run.id, "attempt": attempt.number, "origin": run.origin, "place": _place(run),
                    "job_id": _job_id(session, run), "audit_of": _audited(session, run)},
            "submission": self._submission(run),
            "task": {**self._task_inputs(run), "upload": _upload(session, run), "name": task.name, "type": task.task_type.value,
                     "base_model": task.base_model, "dataset": task.dataset, "definition_digest": run.task.digest,
                     "split_key": task.split_key},
            "budget_seconds": task.budget_seconds,
            "seed": task.seed,
            "sandbox": sandbox_applied(log_dir),
            "environment": environment(),
            "hardware_attestation": self.hardware.report((), nonce=hashlib.sha256(identity.encode()).hexdigest()),
            "timing": {"started_at": _iso(attempt.started_at), "finished_at": _iso(attempt.finished_at),
                       "wall_seconds": attempt.wall_seconds},
            "exit": {"status": attempt.status, "failure_reason": attempt.failure_reason},
            "artifact_sha256": attempt.artifact_digest,
            "logs": [{"name": f["name"], "sha256": f["digest"]["sha256"], "size": f["size"]} for f in logs],
        }
        # in-toto needs a subject: the artifact's files; a run without an artifact is about its logs, and
        # one that never started (an unsupported task type) about itself.
        files = artifact or logs
        subjects = [subject(f"{ARTIFACT_SUBJECT}{f['name']}" if artifact else f"logs/{f['name']}", f["digest"]["sha256"])
                    for f in files] or [subject(identity, payload_digest(predicate))]
        return make_statement(Kind.RUN, subjects, predicate)

    def _task_inputs(self, run: Run) -> dict[str, Any]:
        """Digests of what the script trained on and what it was scored on, from the prepared task."""
        prepared = run.task.prepared or {}
        return {"base_model_sha256": self._base_model_digest(run.task.definition["base_model"]),
                **split_digests(prepared), "train_rows": prepared.get("train_rows"), "hidden_rows": prepared.get("hidden_rows")}

    def _submission(self, run: Run) -> dict[str, Any]:
        """The script that ran: a registered one (a tournament's entrant, a job's champion) by its
        registration, a working tree by its snapshot, a job's house script by the digests of the code
        in its snapshot (never its path on the operator's machine)."""
        if run.competitor is not None:
            return {"kind": "registered", **_competitor_json(run.competitor)}
        if run.source_path is not None:
            return {"kind": "working tree", "path": run.source_path, "commit": run.source_commit,
                    "dirty": run.source_dirty, "snapshot_sha256": _snapshot_sha256(run.snapshot_path)}
        if run.origin == RunOrigin.JOB and run.snapshot_path is not None:
            tree_hash, source = _house_identity(self.settings, Path(run.snapshot_path))
            return {"kind": run.origin, "script": HOUSE_SCRIPT, "tree_hash": tree_hash, "source_digest": source}
        return {"kind": run.origin}

    @staticmethod
    def _base_model_digest(base_model: str) -> str | None:
        local = Path(base_model).expanduser()
        if local.is_dir():
            return folder_digest(local)
        from huggingface_hub import snapshot_download  # only for hub ids, as in the pipeline

        try:  # a hub id the run fetched is in the local cache by now; never a download from here
            return folder_digest(Path(snapshot_download(base_model, local_files_only=True)))
        except Exception:  # noqa: BLE001 - not in the local cache (or no hub library): the digest is unknown
            return None

    def evaluation_statement(self, run: Run, attempt: RunAttempt, run_statement: dict[str, Any],
                             run_index: int) -> dict[str, Any]:
        evaluation = attempt.evaluation
        assert evaluation is not None
        task = run_statement["predicate"]["task"]
        predicate = {
            "run": {"id": run.id, "attempt": attempt.number,
                    "statement": {"log_index": run_index, "payload_sha256": payload_digest(run_statement)}},
            "evaluator": {"task_type": task["type"], "trainarena": environment()["trainarena"],
                          "module": f"trainarena.tasks.{task['type']}"},
            "hidden_split_sha256": task["hidden_split_sha256"],
            "score": evaluation.score,
            "direction": evaluation.direction,
            "lead_unit": evaluation.lead_unit,
            "failure": evaluation.failure,
            "per_example_count": len(evaluation.per_example),
            "per_example_sha256": per_example_digest(evaluation.per_example),
            "details": json_safe(evaluation.details),
        }
        return make_statement(Kind.EVALUATION, run_statement["subject"], predicate)

    # --- tournaments -----------------------------------------------------------------------------

    def tournament_starting(self, session: Session, tournament: Tournament) -> None:
        """The commitment, logged before the first round is created."""
        draw = get_draw(session, tournament.id)
        tasks: list[dict[str, Any]] | None = None
        if draw is not None:
            tasks = []
            for name in draw.task_names:
                stored = get_stored_task(session, name)
                if stored is None:
                    continue
                seed, noise = self._split_seed(stored.definition.get("split_key")), self._noise_seed(stored.definition)
                tasks.append({"name": name, "type": stored.task_type, "dataset_sha256": stored.dataset_digest,
                              "base_model_sha256": stored.base_model_digest, "hidden_split_sha256": stored.hidden_digest,
                              "split_seed_commitment": commitment_hash(name, seed, self._salt(tournament, name), noise)})
        predicate = {
            "tournament": tournament_json(tournament),
            "entrants": [_competitor_json(e.competitor) for e in tournament.entrants],
            "champion_before": None if tournament.champion_before is None else tournament.champion_before.name,
            "champion_before_registration": None if tournament.champion_before is None
            else _competitor_json(tournament.champion_before),
            "tasks": tasks,
            "draw": "pool" if draw is not None else "per round from the tournament's task source",
            "public_split_seed": None if draw is not None else self.settings.data.split_seed,
        }
        self._append_tournament(session, tournament, "commitment", Kind.COMMITMENT, predicate)

    def rounds_played(self, session: Session, tournament: Tournament, rules: TournamentRules) -> None:
        """A round statement for every complete round not logged yet (in round order). Called at every
        step of a drive: when every complete round is logged already, nothing is loaded or replayed."""
        complete = [f"tournament:{tournament.id}:round:{r.index}" for r in tournament.rounds if is_round_complete(r)]
        logged = set(session.scalars(select(LogEntry.key).where(LogEntry.key.in_(complete)))) if complete else set()
        if logged == set(complete):
            return
        record = load_record(tournament, rules)
        decided = replay(record, rules)
        for played, round_row in zip(record.rounds, [r for r in tournament.rounds if is_round_complete(r)], strict=True):
            if f"tournament:{tournament.id}:round:{played.plan.index}" in logged:
                continue
            runs = {(m.match_id, t.index, run.competitor.name): run
                    for m in round_row.matches for t in m.tasks for run in t.runs}
            extra = partial(_outcome_reference, session, runs)
            decision = next((d for d in decided.rounds if d.plan.index == played.plan.index), None)
            predicate = {"tournament": tournament_json(tournament), **played_round_json(played, extra),
                         "advanced": None if decision is None else list(decision.advanced)}
            self._append_tournament(session, tournament, f"round:{played.plan.index}", Kind.ROUND, predicate)

    def tournament_finished(self, session: Session, tournament: Tournament, rules: TournamentRules,
                            weight_rules: WeightRules) -> None:
        """The decision (what the engine decided, the weights, the rules) and the reveal of the seeds."""
        tournament = load_tournament(session, tournament.id)
        self.rounds_played(session, tournament, rules)
        record = load_record(tournament, rules)
        decided = replay(record, rules)
        entrants = [e.competitor.name for e in tournament.entrants]
        if not isinstance(decided.next, Finished):
            raise ValueError(f"tournament {tournament.name!r} is being recorded as finished but its record plays on")
        weights = tournament_weights(decided.next, entrants, weight_rules)
        predicate = {
            **_played_json(session, tournament, record, rules),
            "weight_rules": weight_rules.model_dump(mode="json"),
            "decided": replay_json(decided),
            "weights": weights.weights,
            "undistributed": weights.undistributed,
        }
        self._append_tournament(session, tournament, "decision", Kind.DECISION, predicate)
        self._reveal(session, tournament)

    def tournament_cancelled(self, session: Session, tournament: Tournament, rules: TournamentRules, reason: str) -> None:
        """A started tournament's end when the operator cancels it: when and why, with the rounds it
        played (a complete one not logged yet is logged first) and what the engine needs to replay them,
        as a decision names them. It reveals nothing: nothing was decided on the committed tasks, so their
        split seeds stay secret and the tasks stay usable (a reveal would spend them)."""
        tournament = load_tournament(session, tournament.id)
        self.rounds_played(session, tournament, rules)
        predicate = {
            **_played_json(session, tournament, load_record(tournament, rules), rules),
            "cancelled_at": _iso(tournament.finished_at),
            "reason": reason,
            "commitment": _reference(_entry(session, f"tournament:{tournament.id}:commitment")),
        }
        self._append_tournament(session, tournament, "cancellation", Kind.CANCELLATION, predicate)

    def weights_published(self, session: Session, vector: WeightVector) -> None:
        session.flush()  # the vector's id and entries
        decisions = {kind: _reference(_entry(session, f"tournament:{tournament_id}:decision"))
                     for kind, tournament_id in (("text", vector.text_tournament_id), ("image", vector.image_tournament_id))
                     if tournament_id is not None}
        predicate = {"vector": vector.id, "published_at": _iso(vector.published_at), "ratio": vector.ratio,
                     "week": vector.week, "undistributed": vector.undistributed, "fallback": vector.fallback,
                     "tournaments": {"text": vector.text_tournament_id, "image": vector.image_tournament_id},
                     "decisions": decisions,
                     "weights": [{"competitor": e.competitor.name, "hotkey": e.competitor.hotkey, "weight": e.weight}
                                 for e in vector.entries]}
        statement = make_statement(Kind.WEIGHTS, [subject(f"weights/{vector.id}", payload_digest(predicate))], predicate)
        append(session, self.key, f"weights:{vector.id}", Kind.WEIGHTS, statement)

    def _reveal(self, session: Session, tournament: Tournament) -> None:
        """Open the split seeds (and image tasks' noise seeds) of the drawn tasks that were played. A task
        drawn but never played (a boss round the rule did not need) keeps its seeds secret and stays
        usable; a revealed one is spent (``revealed_task_names``): anyone holding its dataset can now
        rebuild its hidden rows."""
        draw = get_draw(session, tournament.id)
        played = {task.definition["name"] for r in tournament.rounds for m in r.matches for task in m.tasks}
        commitment = _entry(session, f"tournament:{tournament.id}:commitment")
        committed = {} if commitment is None else {t["name"]: t["split_seed_commitment"] for t in
                                                   envelope_payload(commitment.envelope)["predicate"]["tasks"] or ()}
        tasks, unplayed = [], []
        for name in [] if draw is None else draw.task_names:
            stored = get_stored_task(session, name)
            if stored is None:
                continue
            if name not in played:
                unplayed.append(name)
                continue
            opened = {"name": name, "split_seed": self._split_seed(stored.definition.get("split_key")),
                      "salt": self._salt(tournament, name)}
            noise = self._noise_seed(stored.definition)
            # An image task's noise seed is opened too, unless its commitment (made before noise seeds
            # were per task) was over the split seed alone.
            if noise is not None and committed.get(name) != commitment_hash(name, opened["split_seed"], opened["salt"]):
                opened["noise_seed"] = noise
            tasks.append(opened)
        predicate = {"tournament": tournament_json(tournament), "commitment": _reference(commitment), "tasks": tasks,
                     "unplayed": unplayed}
        self._append_tournament(session, tournament, "reveal", Kind.REVEAL, predicate)

    def _append_tournament(self, session: Session, tournament: Tournament, what: str, kind: Kind,
                           predicate: dict[str, Any]) -> None:
        name = f"tournament/{tournament.id}/{what}"
        statement = make_statement(kind, [subject(name, payload_digest(predicate))], predicate)
        append(session, self.key, f"tournament:{tournament.id}:{what}", kind, statement, Subjects(tournament_id=tournament.id))

    def _split_seed(self, split_key: str | None) -> int:
        if split_key is None:
            return self.settings.data.split_seed
        return split_seed(operator_secret(self.settings), split_key)

    def _noise_seed(self, definition: dict[str, Any]) -> int | None:
        """An image task's noise master seed, committed and revealed with its split seed (what an auditor
        needs to noise its hidden images as its evaluations did); None for other types."""
        task = definition_from_json(definition)
        return noise_master_seed(task, self.settings) if task.task_type == TaskType.IMAGE else None

    def _salt(self, tournament: Tournament, task_name: str) -> str:
        """A commitment's salt: secret until the reveal, and derived rather than stored (HMAC of the
        operator's split secret), so a restarted driver commits and reveals the same values."""
        message = f"trainarena-commitment:{tournament.id}:{tournament.name}:{task_name}".encode()
        return hmac.new(operator_secret(self.settings), message, hashlib.sha256).hexdigest()


def _played_json(session: Session, tournament: Tournament, record: TournamentRecord, rules: TournamentRules) -> dict[str, Any]:
    """What a tournament's end (its decision, or its cancellation) names of what was played: the
    tournament, what the engine replays its rounds from (entrants, seed, boss tasks, defender, rules)
    and a reference to each complete round's statement."""
    return {
        "tournament": tournament_json(tournament),
        "entrants": [e.competitor.name for e in tournament.entrants],
        "seed": tournament.seed,
        "boss_tasks": record.boss_tasks,
        "champion_before": record.champion,
        "rules": rules.model_dump(mode="json"),
        "rounds": [_reference(_entry(session, f"tournament:{tournament.id}:round:{r.plan.index}")) for r in record.rounds],
    }


def _outcome_reference(session: Session, runs: dict[tuple[str, int, str], Run], match_id: str, index: int,
                       competitor: str) -> dict[str, Any]:
    """What a round statement adds to an outcome: its run, and the evaluation statement it comes from."""
    run = runs[(match_id, index, competitor)]
    number = None if run.counted_attempt is None else run.counted_attempt.number
    evaluation = None if number is None else _entry(session, f"evaluation:{run.id}:attempt:{number}")
    return {"run_id": run.id, "attempt": number, "evaluation": _reference(evaluation)}


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _tournament_id(run: Run) -> int | None:
    match = run.task.match
    return None if match is None else match.round.tournament_id


def _place(run: Run) -> dict[str, Any] | None:
    """Where a tournament run was played."""
    match = run.task.match
    if match is None:
        return None
    round_row = match.round
    return {"tournament_id": round_row.tournament_id, "tournament": round_row.tournament.name,
            "round": round_row.index, "stage": round_row.stage, "match_id": match.match_id, "task_index": run.task.index}


def _audited(session: Session, run: Run) -> dict[str, Any] | None:
    """The run an audit run re-measures: its id, the attempt the audit compared with (its counted one)
    and that attempt's run statement (None when it has none: stored with records off)."""
    audited = None if run.audit_of_id is None else session.get(Run, run.audit_of_id)
    if audited is None:
        return None
    attempt = None if audited.counted_attempt is None else audited.counted_attempt.number
    statement = None if attempt is None else _reference(_entry(session, f"run:{audited.id}:attempt:{attempt}"))
    return {"run_id": audited.id, "attempt": attempt, "statement": statement}


def _job_id(session: Session, run: Run) -> str | None:
    return session.scalar(select(Job.id).where(Job.run_id == run.id))


def _competitor_json(competitor: Any) -> dict[str, Any]:
    return {"name": competitor.name, "repo": competitor.repo_url, "commit": competitor.commit,
            "tree_hash": competitor.tree_hash, "source_digest": competitor.source_digest,
            "entrypoint": competitor.entrypoint, "hotkey": competitor.hotkey}


def _upload(session: Session, run: Run) -> dict[str, Any] | None:
    """A job's dataset as its customer knows it: the uploaded file's id and sha256 and the job's field
    mapping (the task's ``dataset`` names the file by its place on the operator's machine); None for
    a run of no job."""
    job = session.scalar(select(Job).where(Job.run_id == run.id))
    if job is None:
        return None
    upload = session.get_one(UploadedFile, job.file_id)
    return {"file_id": upload.id, "sha256": upload.sha256, "field_mapping": job.field_mapping}


def _house_identity(settings: Settings, snapshot: Path) -> tuple[str | None, str | None]:
    """A job's house script's content digest (its snapshot's folder is named by it) and source digest,
    read from the snapshot it ran; both None when the snapshot is gone or no longer holds that tree
    (its digests would name code other than what ran)."""
    try:
        tree_hash, source = snapshot_identity(settings, snapshot)
    except OSError:
        return None, None
    return (tree_hash, source) if snapshot_problem(snapshot, tree_hash) is None else (None, None)


def _snapshot_sha256(snapshot_path: str | None) -> str | None:
    """The folder digest of a working tree's snapshot while it still holds the tree its folder is named
    by, unchanged while the digest was read (``submissions.seal``); else None. The run checked it against
    that name before its sandbox and unchanged at its end: one changed since (while the artifact was
    scored) would name code other than what ran."""
    folder = None if snapshot_path is None else Path(snapshot_path)
    if folder is None or not folder.is_dir():
        return None
    try:
        sealed = seal(folder, snapshot_digest)
    except OSError:
        return None
    digest = folder_digest(folder)
    return digest if snapshot_problem(folder, sealed.digest) is None and changes(sealed) is None else None


def tournament_json(tournament: Tournament) -> dict[str, Any]:
    """How every statement about a tournament names it."""
    return {"id": tournament.id, "name": tournament.name, "kind": tournament.kind}
