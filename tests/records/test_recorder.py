"""What the recorder signs and logs as a tournament and customers' jobs run (scripted executors, no
training): every field the run and evaluation statements promise (issue #14, part 1), a failed run's
statement, job statements naming their job, nothing logged twice when a driver resumes or drives a
finished tournament again, nothing logged with records off, and a log whose every signed tree head
verifies and is consistent with the next."""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from recorded_store import (
    CRASH_REASON,
    ENTRANTS,
    FAILING,
    FIELD_MAPPING,
    FINISHED,
    SANDBOX_LINES,
    STARTED,
    RecordedExecutor,
    add_entrants,
    base_model,
    drive_recorded,
    run_jobs,
    settings_for,
)
from sqlalchemy import func, select

import trainarena
from trainarena.contract import Direction, RunStatus
from trainarena.records.engine_json import per_example_digest
from trainarena.records.log import TREE_HEAD_TYPE, entry_leaf_hash
from trainarena.records.merkle import consistency_proof, root_hash, verify_consistency
from trainarena.records.recorder import Recorder, operator_key
from trainarena.records.signing import open_envelope
from trainarena.records.statements import PAYLOAD_TYPE, Kind, kind_of, payload_digest
from trainarena.runs import RunReport, RunRequest
from trainarena.settings import RecordsRules, Settings
from trainarena.store import Store, open_store
from trainarena.store.log_tables import LogEntry, TreeHead
from trainarena.store.models import Job, Run
from trainarena.store.records import load_tournament
from trainarena.tasks.base import Evaluation
from trainarena.tasks.digests import path_digest

LOCK_FILE = Path(trainarena.__file__).resolve().parents[2] / "requirements.lock"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with open_store(settings) as opened:
        yield opened


@pytest.fixture
def tournament(settings: Settings, store: Store, tmp_path: Path) -> int:
    """A finished tournament, recorded as it ran."""
    tournament_id = add_entrants(store)
    assert drive_recorded(settings, store, tournament_id, RecordedExecutor(tmp_path)) is not None
    return tournament_id


def statements(store: Store, settings: Settings) -> dict[str, dict]:
    """Every entry's statement by entry key, each envelope's signature checked with the operator's key."""
    public = operator_key(settings).public
    with store.session() as session:
        entries = session.scalars(select(LogEntry).order_by(LogEntry.index)).all()
        return {e.key: open_envelope(e.envelope, public, PAYLOAD_TYPE) for e in entries}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class RunFacts:
    """What the store says of a run's counted attempt (read while its session was open)."""

    id: int
    attempt: int
    artifact_path: str | None
    log_path: str
    prepared: dict
    definition: dict
    score: float | None

    @property
    def key(self) -> str:
        return f"run:{self.id}:attempt:{self.attempt}"


def runs_by_competitor(store: Store) -> dict[str, RunFacts]:
    """Each competitor's first tournament run."""
    found: dict[str, RunFacts] = {}
    with store.session() as session:
        for run in session.scalars(select(Run).where(Run.competitor_id.is_not(None)).order_by(Run.id)):
            attempt = run.counted_attempt
            evaluation = attempt.evaluation
            found.setdefault(run.competitor.name, RunFacts(
                run.id, attempt.number, attempt.artifact_path, attempt.log_path, run.task.prepared, run.task.definition,
                None if evaluation is None else evaluation.score))  # fmt: skip
    return found


def test_a_scored_runs_statement_holds_every_field_the_issue_lists(settings: Settings, store: Store, tournament: int,
                                                                    tmp_path: Path) -> None:
    run = runs_by_competitor(store)["alpha"]
    statement = statements(store, settings)[run.key]
    assert kind_of(statement) is Kind.RUN
    predicate = statement["predicate"]
    artifact, logs = Path(run.artifact_path), Path(run.log_path)
    # Subjects: the artifact's files with their sha256.
    assert statement["subject"] == [{"name": f"artifact/{p.name}", "digest": {"sha256": sha256(p)}}
                                    for p in sorted(artifact.iterdir())]
    # The submission as registered.
    registration = ENTRANTS["alpha"]
    assert {key: predicate["submission"][key] for key in ("repo", "commit", "tree_hash", "source_digest")} == {
        "repo": registration["repo_url"], "commit": registration["commit"], "tree_hash": registration["tree_hash"],
        "source_digest": registration["source_digest"]}  # fmt: skip
    # The task: type, base model digest, the train and hidden splits' digests, the field mapping.
    task = predicate["task"]
    prepared = run.prepared
    assert task["type"] == "instruct" and task["name"] == run.definition["name"]
    assert task["base_model_sha256"] == path_digest(base_model(settings.data_dir.parent))
    assert task["train_split_sha256"] == sha256(Path(prepared["train_file"]))
    assert task["hidden_split_sha256"] == path_digest(Path(prepared["hidden_file"]).parent)
    assert {k: task["dataset"][k] for k in FIELD_MAPPING} == FIELD_MAPPING
    assert (task["train_rows"], task["hidden_rows"]) == (9, 1)
    # Budget and seed, as the task defined them.
    assert predicate["budget_seconds"] == 30.0 and predicate["seed"] == run.definition["seed"]
    # The sandbox backend and the limits it applied (its sandbox.txt).
    assert predicate["sandbox"] == {"backend": "bwrap", "applied": SANDBOX_LINES[1:]}
    # The environment: the lock file's digest, the interpreter, the library versions.
    environment = predicate["environment"]
    assert environment["lock_file_sha256"] == sha256(LOCK_FILE)
    assert environment["python"] == ".".join(map(str, __import__("sys").version_info[:3]))
    assert environment["libraries"]["torch"] == importlib.metadata.version("torch")
    assert environment["trainarena"] == trainarena.__version__
    # Timings and exit status; the logs' digests.
    assert predicate["timing"]["wall_seconds"] == FINISHED - STARTED
    assert predicate["timing"]["started_at"].startswith("2023-11-14T22:13:20")
    assert predicate["exit"] == {"status": "succeeded", "failure_reason": None}
    assert predicate["logs"] == [{"name": p.name, "sha256": sha256(p), "size": p.stat().st_size}
                                 for p in sorted(logs.iterdir())]
    assert predicate["hardware_attestation"]["available"] is False
    assert predicate["run"]["place"]["tournament_id"] == tournament and predicate["run"]["job_id"] is None


def test_the_evaluation_statement_names_its_run_split_score_and_per_example_digest(settings: Settings, store: Store,
                                                                                  tournament: int) -> None:
    run = runs_by_competitor(store)["alpha"]
    logged = statements(store, settings)
    run_statement = logged[run.key]
    evaluation = logged[f"evaluation:{run.id}:attempt:{run.attempt}"]
    assert kind_of(evaluation) is Kind.EVALUATION
    predicate = evaluation["predicate"]
    assert evaluation["subject"] == run_statement["subject"]  # the same artifact files
    assert predicate["evaluator"] == {"task_type": "instruct", "trainarena": trainarena.__version__,
                                      "module": "trainarena.tasks.instruct"}
    assert predicate["hidden_split_sha256"] == run_statement["predicate"]["task"]["hidden_split_sha256"] is not None
    assert predicate["score"] == run.score == pytest.approx(1.4)
    assert predicate["direction"] == "lower" and predicate["per_example_count"] == 2
    assert predicate["per_example_sha256"] == per_example_digest([0.9, 1.9])
    with store.session() as session:
        run_index = session.scalar(select(LogEntry.index).where(LogEntry.key == run.key))
    assert predicate["run"]["statement"] == {"log_index": run_index, "payload_sha256": payload_digest(run_statement)}


def test_a_failed_runs_statement_is_about_its_logs(settings: Settings, store: Store, tournament: int) -> None:
    run = runs_by_competitor(store)[FAILING]
    logged = statements(store, settings)
    statement = logged[run.key]
    logs = Path(run.log_path)
    assert statement["subject"] == [{"name": f"logs/{p.name}", "digest": {"sha256": sha256(p)}}
                                    for p in sorted(logs.iterdir())]
    assert statement["predicate"]["exit"] == {"status": "failed", "failure_reason": CRASH_REASON}
    assert statement["predicate"]["artifact_sha256"] is None
    assert f"evaluation:{run.id}:attempt:{run.attempt}" not in logged


def test_every_stored_run_and_the_tournaments_decisions_are_logged_once(settings: Settings, store: Store,
                                                                        tournament: int) -> None:
    logged = statements(store, settings)
    with store.session() as session:
        runs = [(r.id, r.counted_attempt.number, r.counted_attempt.evaluation is not None) for r in session.scalars(select(Run))]
        expected_runs = {f"run:{run}:attempt:{number}" for run, number, _ in runs}
        scored = {f"evaluation:{run}:attempt:{number}" for run, number, evaluated in runs if evaluated}
        rounds = len(load_tournament(session, tournament).rounds)
    tournament_keys = {f"tournament:{tournament}:{what}" for what in
                       ("commitment", "decision", "reveal", *(f"round:{i}" for i in range(rounds)))}
    assert set(logged) == expected_runs | scored | tournament_keys
    decision = logged[f"tournament:{tournament}:decision"]["predicate"]
    assert decision["decided"]["end"]["champion"] == "alpha"
    assert set(decision["weights"]) <= set(ENTRANTS)


def test_driving_again_or_resuming_appends_nothing_twice(
    settings: Settings, store: Store, tmp_path: Path, store_of_its_own: Callable[[Path], str]
) -> None:
    tournament_id = add_entrants(store)
    executor = RecordedExecutor(tmp_path)
    steps = 0
    while drive_recorded(settings, store, tournament_id, executor, max_steps=1) is None:  # a driver stopping after each step
        steps += 1
    assert steps > 3
    with store.session() as session:
        runs = session.scalar(select(func.count()).select_from(Run))
        size = session.scalar(select(func.count()).select_from(LogEntry))
        keys = set(session.scalars(select(LogEntry.key)))
    assert executor.calls == runs
    assert drive_recorded(settings, store, tournament_id, executor) is not None  # a finished tournament driven again
    recorder = Recorder(settings)
    with store.transaction() as session:  # and every recording step called again
        tournament = load_tournament(session, tournament_id)
        for run in session.scalars(select(Run)):
            recorder.run_stored(session, run.id)
        recorder.rounds_played(session, tournament, settings.rules)
        recorder.tournament_finished(session, tournament, settings.rules, settings.weights)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(LogEntry)) == size
        assert session.scalar(select(func.count()).select_from(TreeHead)) == size
        assert set(session.scalars(select(LogEntry.key))) == keys
    assert executor.calls == runs
    # Resumed step by step, the log holds what one uninterrupted drive logs.
    straight = settings_for(tmp_path / "other", database_url=store_of_its_own(tmp_path / "other"))
    with open_store(straight) as other:
        other_id = add_entrants(other)
        drive_recorded(straight, other, other_id, RecordedExecutor(tmp_path / "straight"))
        with other.session() as session:
            assert set(session.scalars(select(LogEntry.key))) == keys


def test_every_tree_head_verifies_and_is_consistent_with_the_next(settings: Settings, store: Store, tournament: int) -> None:
    run_jobs(settings, store)
    public = operator_key(settings).public
    with store.session() as session:
        entries = session.scalars(select(LogEntry).order_by(LogEntry.index)).all()
        heads = session.scalars(select(TreeHead).order_by(TreeHead.size)).all()
    leaves = [entry_leaf_hash(entry.envelope) for entry in entries]  # recomputed from the envelopes
    assert [entry.index for entry in entries] == list(range(len(entries)))
    assert [entry.leaf_hash for entry in entries] == [leaf.hex() for leaf in leaves]
    assert [head.size for head in heads] == list(range(1, len(entries) + 1))
    previous = None
    for head in heads:
        payload = open_envelope(head.envelope, public, TREE_HEAD_TYPE)
        root = root_hash(leaves[:head.size])
        assert payload["tree_size"] == head.size and payload["log_id"] == public.keyid
        assert payload["root_hash"] == head.root_hash == root.hex()
        if previous is not None:
            verify_consistency(previous.size, head.size, bytes.fromhex(previous.root_hash), root,
                               consistency_proof(leaves[:head.size], previous.size))
        previous = head
    for entry in entries:
        assert kind_of(open_envelope(entry.envelope, public, PAYLOAD_TYPE)).value == entry.kind


def test_a_customers_job_run_is_recorded_with_its_job_id(settings: Settings, store: Store) -> None:
    jobs = run_jobs(settings, store)
    logged = statements(store, settings)
    with store.session() as session:
        job = session.get_one(Job, jobs.mine)
        score = job.score
        artifact = Path(session.get_one(Run, job.run_id).counted_attempt.artifact_path)
        entries = session.scalars(select(LogEntry).where(LogEntry.run_id == job.run_id).order_by(LogEntry.index)).all()
    assert [(e.kind, e.job_id, e.tournament_id) for e in entries] == [("run", jobs.mine, None), ("evaluation", jobs.mine, None)]
    statement = logged[entries[0].key]
    assert statement["predicate"]["run"]["job_id"] == jobs.mine and statement["predicate"]["run"]["origin"] == "job"
    assert statement["predicate"]["run"]["place"] is None
    assert statement["subject"] == [{"name": f"artifact/{p.name}", "digest": {"sha256": sha256(p)}}
                                    for p in sorted(artifact.iterdir())]
    assert logged[entries[1].key]["predicate"]["score"] == score == 1.25


def test_records_off_logs_nothing_and_makes_no_key(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data", records=RecordsRules(enabled=False))
    with open_store(settings) as store:
        tournament_id = add_entrants(store)
        assert drive_recorded(settings, store, tournament_id, RecordedExecutor(tmp_path)) is not None
        run_jobs(settings, store)
        with store.session() as session:
            assert session.scalar(select(func.count()).select_from(Run)) > 0
            assert session.scalar(select(func.count()).select_from(LogEntry)) == 0
            assert session.scalar(select(func.count()).select_from(TreeHead)) == 0
    assert not settings.operator_key_path.exists()


class DivergedExecutor(RecordedExecutor):
    """``beta``'s model diverged: its evaluation fails with NaN in its details, as a DPO evaluation's
    reward margin is then."""

    def execute(self, request: RunRequest) -> RunReport:
        report = super().execute(request)
        if request.competitor.name != "beta":
            return report
        failure = "the DPO loss is not finite (NaN or inf)"
        evaluation = Evaluation(None, Direction.LOWER, failure=failure,
                                details={"reward_margin": math.nan, "chosen_reward": [math.inf, -math.inf, 1.5]})
        return replace(report, status=RunStatus.INVALID, failure_reason=f"evaluation: {failure}", evaluation=evaluation)


def test_an_evaluation_with_non_finite_details_is_recorded_instead_of_stopping_the_tournament(
        settings: Settings, store: Store, tmp_path: Path) -> None:  # fmt: skip
    tournament_id = add_entrants(store)
    assert drive_recorded(settings, store, tournament_id, DivergedExecutor(tmp_path)) is not None
    run = runs_by_competitor(store)["beta"]
    evaluation = statements(store, settings)[f"evaluation:{run.id}:attempt:{run.attempt}"]["predicate"]
    assert evaluation["score"] is None and "not finite" in evaluation["failure"]
    assert evaluation["details"] == {"reward_margin": "nan", "chosen_reward": ["inf", "-inf", 1.5]}
