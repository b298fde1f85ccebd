"""Finished tournaments with signed records, built in seconds without training: an executor that writes
real artifact files, logs and hidden/train split files, and reports per-example scores (so artifacts,
hidden-split digests and the bootstrap gate are all exercised); a defending champion plays a boss round."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.model import Finished, Stage
from trainarena.operations.tournaments import pool_task_source
from trainarena.orchestrator import drive
from trainarena.records.bundle import export_bundle
from trainarena.records.log import TREE_HEAD_TYPE, tree_head_payload
from trainarena.records.merkle import consistency_proof, inclusion_proof, leaf_hash, root_hash
from trainarena.records.recorder import Recorder
from trainarena.records.signing import OperatorKey, canonical_json, envelope_payload, sign_payload
from trainarena.runs import RunReport, RunRequest, definition_json
from trainarena.settings import Settings
from trainarena.store import (
    TournamentDraw,
    add_competitor,
    add_stored_task,
    create_tournament,
    get_pool,
    open_store,
    open_store_url,
)
from trainarena.tasks.base import Evaluation, TaskDefinition
from trainarena.tasks.digests import path_digest

# Lower is better; None crashes. "reigning" defends the title in the boss round.
SKILLS: dict[str, float | None] = {"alpha": 1.0, "bravo": 1.3, "charlie": 1.6, "delta": 1.9, "crasher": None}
CHAMPION = "reigning"
CHAMPION_SKILL = 1.5
POOL_TASKS = ("sums-a", "sums-b", "sums-c")
EXAMPLES = 8  # per-example scores per evaluation


def task_source(kind: str, stage: Stage, match_id: str, index: int, seed: int) -> TaskDefinition:
    return TaskDefinition(f"instruct-{match_id}-{index}", TaskType.INSTRUCT, "tiny", {"source": "rows.jsonl"}, 1.0, seed)


def write_split(folder: Path, name: str, rows: str) -> Path:
    """A split file whose content follows from the task's name (the same task, the same split)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    if not path.exists():
        path.write_text(rows)
    return path


class ArtifactExecutor:
    """Writes what a sandboxed run and its evaluation leave behind, without training: logs, an artifact
    folder, the task's train and hidden split files, and per-example scores around the competitor's skill."""

    def __init__(self, splits: Path, changed_hidden: frozenset[str] = frozenset()) -> None:
        self.splits = splits
        self.changed_hidden = changed_hidden  # tasks whose hidden split differs from the one committed

    def prepared(self, task: TaskDefinition) -> dict[str, Any]:
        hidden_root = self.splits / ("changed" if task.name in self.changed_hidden else "hidden") / task.name
        rows = "".join(json.dumps({"question": f"{task.name} {i}", "answer": str(i)}) + "\n" for i in range(EXAMPLES))
        if task.name in self.changed_hidden:
            rows = rows.replace('"0"', '"zero"')
        return {"train_file": str(write_split(self.splits / "train" / task.name, "train", rows * 2)),
                "hidden_file": str(write_split(hidden_root, "hidden", rows)), "train_rows": 2 * EXAMPLES, "hidden_rows": EXAMPLES}

    def execute(self, request: RunRequest) -> RunReport:
        logs = request.run_dir / "logs"
        logs.mkdir(parents=True)
        (logs / "stdout.log").write_text("training\n")
        (logs / "sandbox.txt").write_text("backend=scripted\nnetwork=none\n")
        name = request.competitor.name
        skill = CHAMPION_SKILL if name == CHAMPION else SKILLS[name]
        times = {"started_at": 1_700_000_000.0, "finished_at": 1_700_000_010.0, "log_path": logs,
                 "prepared_paths": self.prepared(request.task)}
        if skill is None:
            return RunReport(RunStatus.FAILED, failure_reason="exited with code 1", **times)
        artifact = request.run_dir / "output"
        artifact.mkdir()
        (artifact / "model.safetensors").write_bytes(hashlib.sha256(f"{name}:{request.task.name}".encode()).digest() * 64)
        (artifact / "config.json").write_text(json.dumps({"trained_by": name}))
        per_example = tuple(round(skill + (request.task.seed * 31 + i * 7) % 10 / 100, 6) for i in range(EXAMPLES))
        return RunReport(RunStatus.SUCCEEDED, artifact_path=artifact, artifact_digest=path_digest(artifact),
                         evaluation=Evaluation(sum(per_example) / EXAMPLES, Direction.LOWER, per_example=per_example), **times)


@dataclass(frozen=True)
class RecordedStore:
    data_dir: Path
    tournament_id: int
    finished: Finished | None  # None: driven part of the way (build_pool_store's max_steps)
    database_url: str  # SQLite in data_dir, or the PostgreSQL database of tests run with --store postgresql

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, database_url=self.database_url)

    def copy(self, destination: Path, database_url: str | None = None) -> RecordedStore:
        """A copy to tamper with (the artifact paths in it still name the original's files): the data
        directory, with the SQLite file in it, or the copy of a PostgreSQL database at ``database_url``."""
        shutil.copytree(self.data_dir, destination)
        if database_url is None:
            database_url = Settings(data_dir=destination, database_url=None).db_url
        return replace(self, data_dir=destination, database_url=database_url)

    def export(self, directory: Path) -> Path:
        with open_store(self.settings) as store:
            export_bundle(store, self.settings, self.tournament_id, directory)
        return directory

    def query(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        """Run SQL with ``?`` placeholders on the store directly, as someone with the database would."""
        with open_store_url(self.database_url, migrate=False) as store, store.engine.begin() as connection:
            if connection.dialect.paramstyle != "qmark":
                sql = sql.replace("?", "%s")
            result = connection.exec_driver_sql(sql, tuple(parameters))
            return [tuple(row) for row in result] if result.returns_rows else []


def _register(settings: Settings, names: list[str]) -> None:
    with open_store(settings) as store, store.transaction() as session:
        for number, name in enumerate(names):
            add_competitor(session, name=name, repo_url=f"https://example.org/{name}.git", commit=f"{number:x}" * 40,
                           tree_hash=f"tree-{name}", source_digest=f"source-{name}", entrypoint="train.py")


def build_recorded_store(data_dir: Path, recorder: type[Recorder] = Recorder) -> RecordedStore:
    """Five entrants (one crashes) and a defending champion: knockout rounds, a boss round with the
    bootstrap gate on (the majority rule, its only rule), the decision and the reveal, all in the log."""
    settings = Settings(data_dir=data_dir)
    _register(settings, [*SKILLS, CHAMPION])
    rules = settings.rules.model_copy(update={"boss_rule": "majority", "bootstrap_gate": True, "bootstrap_resamples": 200})
    with open_store(settings) as store:
        with store.transaction() as session:
            tournament_id = create_tournament(session, name="week-1", kind="text", seed=7, entrants=list(SKILLS), champion=CHAMPION).id
        finished = drive(store, tournament_id, task_source=task_source, executor=ArtifactExecutor(data_dir / "splits"),
                         rules=rules, weight_rules=settings.weights, work_dir=settings.work_dir, recorder=recorder(settings))
    assert finished is not None
    return RecordedStore(data_dir, tournament_id, finished, settings.db_url)


def build_pool_store(data_dir: Path, recorder: type[Recorder] = Recorder, changed_hidden: frozenset[str] = frozenset(),
                     task_type: TaskType = TaskType.INSTRUCT, max_steps: int | None = None) -> RecordedStore:
    """Four entrants on tasks drawn from a pool: the commitment names each task's hidden split and a
    salted hash of its split seed (and an image task's noise seed); ``changed_hidden`` tasks are then
    played on another hidden split. With ``max_steps``, driven that many steps only (not finished)."""
    settings = Settings(data_dir=data_dir)
    kind = "image" if task_type == TaskType.IMAGE else "text"
    entrants = ["alpha", "bravo", "charlie", "crasher"]
    _register(settings, entrants)
    executor = ArtifactExecutor(data_dir / "splits", changed_hidden)
    with open_store(settings) as store:
        with store.transaction() as session:
            for name in POOL_TASKS:
                definition = TaskDefinition(name, task_type, "tiny", {"source": "rows.jsonl"}, 1.0, 0, split_key=f"{name}:0123abcd")
                hidden = Path(ArtifactExecutor(data_dir / "splits").prepared(definition)["hidden_file"]).parent
                add_stored_task(session, name=name, pool="weekly", kind=kind, definition=definition_json(definition),
                                base_model_digest="0" * 64, dataset_digest="1" * 64, hidden_digest=path_digest(hidden),
                                train_rows=2 * EXAMPLES, hidden_rows=EXAMPLES)
            tournament_id = create_tournament(session, name=f"{kind}-weekly-1", kind=kind, seed=3, entrants=entrants).id
            session.add(TournamentDraw(tournament_id=tournament_id, pool_id=get_pool(session, "weekly").id,
                                       task_names=list(POOL_TASKS), entry_closes_at=datetime.now(UTC)))
        finished = drive(store, tournament_id, task_source=pool_task_source(store, tournament_id), executor=executor,
                         rules=settings.rules, weight_rules=settings.weights, work_dir=settings.work_dir,
                         recorder=recorder(settings), max_steps=max_steps)
    assert (finished is None) == (max_steps is not None)
    return RecordedStore(data_dir, tournament_id, finished, settings.db_url)


# --- Rewriting a bundle as an attacker holding some key would -------------------------------------


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))


def resign_bundle(directory: Path, key: OperatorKey, edit: Any = None) -> None:
    """Re-sign every entry with ``key`` (after ``edit(statement)`` where given) and rebuild the whole log
    on them: leaves, signed tree heads, inclusion and consistency proofs. Needs the bundle to hold the
    entire log (one tournament in the store), as a forger rewriting history would."""
    entries = read_lines(directory / "entries.jsonl")
    assert [e["index"] for e in entries] == list(range(len(entries))), "the bundle must hold the whole log"
    for entry in entries:
        statement = envelope_payload(entry["envelope"])
        if edit is not None:
            edit(statement)
        entry["envelope"] = sign_payload(key, entry["envelope"]["payloadType"], statement)
    leaves = [leaf_hash(canonical_json(e["envelope"])) for e in entries]
    for entry in entries:
        entry["inclusion_proof"] = [h.hex() for h in inclusion_proof(leaves, entry["index"])]
    heads = []
    for size in range(1, len(leaves) + 1):
        payload = tree_head_payload(key, size, root_hash(leaves[:size]), datetime.now(UTC))
        proof = [] if size == 1 else consistency_proof(leaves[:size], size - 1)
        heads.append({"size": size, "envelope": sign_payload(key, TREE_HEAD_TYPE, payload), "consistency_proof": [h.hex() for h in proof]})
    write_lines(directory / "entries.jsonl", entries)
    write_lines(directory / "tree_heads.jsonl", heads)
    manifest = json.loads((directory / "bundle.json").read_text())
    (directory / "bundle.json").write_text(json.dumps({**manifest, "log_id": key.keyid}))
