from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from trainarena.contract import TaskType
from trainarena.runs import task_key
from trainarena.settings import Settings
from trainarena.store import (
    Base,
    EvaluationRow,
    Run,
    Store,
    add_competitor,
    make_engine,
    open_store,
    open_store_url,
    upgrade_schema,
)
from trainarena.store.adhoc import start_adhoc_run
from trainarena.store.api_keys import create_key
from trainarena.store.database import alembic_config
from trainarena.store.locks import migration_connection
from trainarena.store.models import ApiRole, ChampionHistory, Job, UploadedFile
from trainarena.tasks.base import TaskDefinition

HEAD = "0019"  # the newest migration: a fresh store is at it

EXPECTED_TABLES = {
    "competitor", "tournament", "tournament_entrant", "round", "match", "task", "run", "evaluation",
    "champion_history", "weight", "alembic_version", "run_attempt", "tournament_lease",
    "task_pool", "stored_task", "tournament_draw", "weight_vector", "weight_vector_entry",
    "api_key", "uploaded_file", "job", "job_event", "registered_model", "log_state", "log_entry", "tree_head",
}


def test_fresh_sqlite_file_is_migrated_to_head(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "nested" / "data", database_url=None)  # the default, whatever the environment
    with open_store(settings) as store:
        assert (tmp_path / "nested" / "data" / "trainarena.db").is_file()
        assert set(inspect(store.engine).get_table_names()) == EXPECTED_TABLES
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD


def test_opening_twice_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    open_store_url(url).close()
    with open_store_url(url) as store, store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def _drift(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_models_match_the_migrations(tmp_path: Path) -> None:
    with open_store_url(f"sqlite:///{tmp_path / 'drift.db'}") as store:
        assert _drift(store.engine) == []


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'down.db'}")
    try:
        with migration_connection(engine) as connection:
            command.upgrade(alembic_config(connection), "head")
            command.downgrade(alembic_config(connection), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        with migration_connection(engine) as connection:
            command.upgrade(alembic_config(connection), "head")
        assert set(inspect(engine).get_table_names()) == EXPECTED_TABLES
    finally:
        engine.dispose()


def test_migrations_on_postgresql(postgres_url: str) -> None:
    with open_store_url(postgres_url) as store:
        assert set(inspect(store.engine).get_table_names()) == EXPECTED_TABLES
        assert _drift(store.engine) == []


# --- 0002: attempts as rows, leases ------------------------------------------------------------------

_0001_ROWS = """
INSERT INTO competitor VALUES (1, 'a', 'u', 'c', 't', 'd', 'train.py', NULL, '2026-01-01 00:00:00.000000');
INSERT INTO tournament VALUES (1, 't', 'text', 'running', 1, '2026-01-01 00:00:00.000000', NULL, NULL, NULL, NULL, NULL);
INSERT INTO round VALUES (1, 1, 0, 'knockout', '[]');
INSERT INTO match VALUES (1, 1, 'k0', 0, '["a"]', 6, 1);
INSERT INTO task VALUES (1, 1, 0, '{}', NULL), (2, 1, 1, '{}', NULL), (3, 1, 2, '{}', NULL),
                        (4, 1, 3, '{}', NULL), (5, 1, 4, '{}', NULL), (6, 1, 5, '{}', NULL);
INSERT INTO run (id, task_id, competitor_id, status, attempts, started_at, finished_at, wall_seconds,
                 log_path, artifact_path, artifact_digest, failure_reason) VALUES
  (1, 1, 1, 'succeeded', 1, '2026-01-01 00:00:00.000000', '2026-01-01 00:01:00.000000', 60.0, '/l1', '/a1', 'd1', NULL),
  (2, 2, 1, 'succeeded', 2, '2026-01-01 00:00:00.000000', '2026-01-01 00:01:00.000000', 61.0, '/l2', '/a2', 'd2', NULL),
  (3, 3, 1, 'pending', 1, '2026-01-01 00:00:00.000000', NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 4, 1, 'pending', 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (5, 5, 1, 'running', 1, '2026-01-01 00:00:00.000000', NULL, NULL, NULL, NULL, NULL, NULL),
  (6, 6, 1, 'failed', 2, '2026-01-01 00:00:00.000000', NULL, NULL, NULL, NULL, NULL, 'interrupted 2 times');
INSERT INTO evaluation (id, run_id, score, direction, failure, per_example, details, evaluated_at) VALUES
  (1, 1, 1.5, 'lower', NULL, '[]', '{}', '2026-01-01 00:01:00.000000'),
  (2, 2, 2.5, 'lower', NULL, '[]', '{}', '2026-01-01 00:01:00.000000');
"""


def _store_at_0001(path: Path):
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine, "0001")
    with engine.begin() as connection:
        for statement in _0001_ROWS.split(";"):
            if statement.strip():
                connection.exec_driver_sql(statement)
    return engine


def test_0002_gives_every_claimed_run_one_attempt_from_its_own_fields(tmp_path: Path) -> None:
    engine = _store_at_0001(tmp_path / "old.db")
    upgrade_schema(engine)
    store = Store(engine)
    try:
        with store.session() as session:
            runs = {run.id: run for run in session.scalars(select(Run))}
            assert [(a.number, a.status) for a in runs[1].attempt_records] == [(1, "succeeded")]
            assert runs[1].counted_attempt is runs[1].attempt_records[0]
            assert (runs[1].evaluation.score, runs[1].artifact_path, runs[1].log_path) == (1.5, "/a1", "/l1")
            assert runs[1].started_at == datetime(2026, 1, 1, tzinfo=UTC) and runs[1].wall_seconds == 60.0
            # A run tried twice keeps its count; its score and artifact belong to the one attempt kept.
            assert (runs[2].attempts, runs[2].evaluation.score, runs[2].artifact_digest) == (2, 2.5, "d2")
            assert runs[2].counted_attempt.evaluation is runs[2].evaluation
            # Claimed, then reset by a restarted driver: an interrupted attempt, nothing counted.
            assert [(a.number, a.status) for a in runs[3].attempt_records] == [(1, "interrupted")]
            assert (runs[3].status, runs[3].counted_attempt, runs[3].evaluation) == ("pending", None, None)
            assert runs[4].attempt_records == [] and runs[4].attempts == 0
            assert [a.status for a in runs[5].attempt_records] == ["running"] and runs[5].counted_attempt is None
            assert (runs[6].status, runs[6].failure_reason) == ("failed", "interrupted 2 times")
    finally:
        store.close()


def test_0002_downgrades_back_to_the_run_columns(tmp_path: Path) -> None:
    engine = _store_at_0001(tmp_path / "old.db")
    try:
        with engine.connect() as connection:
            before = connection.exec_driver_sql("SELECT * FROM run ORDER BY id").fetchall()
            evaluations = connection.exec_driver_sql("SELECT run_id, score FROM evaluation ORDER BY id").fetchall()
        upgrade_schema(engine)
        with migration_connection(engine) as connection:
            command.downgrade(alembic_config(connection), "0001")
        with engine.connect() as connection:
            after = connection.exec_driver_sql("SELECT * FROM run ORDER BY id").fetchall()
            assert connection.exec_driver_sql("SELECT run_id, score FROM evaluation ORDER BY id").fetchall() == evaluations
        # Unfinished runs had no counted attempt: their per-try columns come back empty.
        unfinished = {3, 5}
        assert [row for row in after if row[0] not in unfinished] == [row for row in before if row[0] not in unfinished]
    finally:
        engine.dispose()


# --- 0003: ad-hoc runs beside tournament runs ----------------------------------------------------

_DEFINITION = {"name": "units", "task_type": "instruct", "base_model": "tiny", "dataset": {"source": "u.jsonl"},
               "budget_seconds": 30.0, "seed": 1234}  # fmt: skip


def test_0003_keys_existing_tasks_and_marks_their_runs_as_tournament_runs(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade_schema(engine, "0002")
    with engine.begin() as connection:
        for statement in _0001_ROWS.split(";")[:4]:
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql("INSERT INTO task VALUES (1, 1, 0, ?, NULL)", (json.dumps(_DEFINITION),))
        connection.exec_driver_sql("INSERT INTO run (id, task_id, competitor_id, status) VALUES (1, 1, 1, 'pending')")
    upgrade_schema(engine)
    store = Store(engine)
    try:
        with store.session() as session:
            [run] = session.scalars(select(Run))
            definition = TaskDefinition(**{**_DEFINITION, "task_type": TaskType.INSTRUCT})
            assert run.origin == "tournament" and run.task.digest == task_key(definition)
            assert task_key(definition) == task_key(replace(definition, seed=7)) != task_key(replace(definition, budget_seconds=31.0))
        with store.transaction() as session:  # an ad-hoc run with its attempt and evaluation: gone when downgrading
            adhoc = start_adhoc_run(session, origin="adhoc", definition=_DEFINITION, digest="d" * 24)
            adhoc.attempt_records[0].evaluation = EvaluationRow(score=1.0, direction="lower")
        with migration_connection(engine) as connection:
            command.downgrade(alembic_config(connection), "0002")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT id, status FROM run").fetchall() == [(1, "pending")]
            assert connection.exec_driver_sql("SELECT count(*) FROM run_attempt").scalar() == 0
            assert connection.exec_driver_sql("SELECT count(*) FROM evaluation").scalar() == 0
            assert connection.exec_driver_sql("SELECT id FROM task").fetchall() == [(1,)]
    finally:
        store.close()


# --- 0014: audit runs --------------------------------------------------------------------------------


def test_0014_finds_the_audits_stored_as_ad_hoc_runs_by_their_folder(tmp_path: Path) -> None:
    """Before 0014 an audit's re-run was an ad-hoc run; its folder audits/run-N-M names the audited run N."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade_schema(engine, "0013")
    folders = {1: "/d/runs/adhoc/run-1/logs", 2: "/d/runs/audits/run-1-2/logs", 3: "/d/runs/audits/run-9-3/logs",
               4: "/d/runs/audits/run-1-2/logs"}  # 3 audits a run that is gone, 4 is in another run's folder
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO task (id, \"index\", definition) VALUES (1, 0, ?)", (json.dumps(_DEFINITION),))
        for run_id, logs in folders.items():
            connection.exec_driver_sql("INSERT INTO run (id, task_id, status, origin) VALUES (?, 1, 'succeeded', 'adhoc')", (run_id,))
            connection.exec_driver_sql("INSERT INTO run_attempt (run_id, number, status, log_path) VALUES (?, 1, 'succeeded', ?)",
                                       (run_id, logs))  # fmt: skip
    upgrade_schema(engine)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT id, origin, audit_of_id FROM run ORDER BY id").fetchall()
        assert rows == [(1, "adhoc", None), (2, "audit", 1), (3, "adhoc", None), (4, "adhoc", None)]
        with migration_connection(engine) as connection:
            command.downgrade(alembic_config(connection), "0013")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT DISTINCT origin FROM run").scalars().all() == ["adhoc"]
    finally:
        engine.dispose()


# --- 0015: play order indexes ------------------------------------------------------------------------

_0015_INDEXES = {("match", "ix_match_round_id_position"), ("run", "ix_run_task_id_id")}


def _play_order_indexes(engine) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    found = {(table, index["name"]) for table in ("match", "run") for index in inspect(engine).get_indexes(table)}
    return found & _0015_INDEXES


def test_0015_adds_and_drops_the_play_order_indexes_on_each_backend(url_on_each_backend: str) -> None:
    with open_store_url(url_on_each_backend) as store:
        with store.transaction() as session:  # a stored run, kept through both ways
            start_adhoc_run(session, origin="house", definition=_DEFINITION, digest="e" * 24)
        assert _play_order_indexes(store.engine) == _0015_INDEXES
        with migration_connection(store.engine) as connection:
            command.downgrade(alembic_config(connection), "0014")
        assert _play_order_indexes(store.engine) == set()
        upgrade_schema(store.engine)
        assert _play_order_indexes(store.engine) == _0015_INDEXES and _drift(store.engine) == []
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM run").scalar() == 1


# --- 0016: a queued job's wait ----------------------------------------------------------------------


def _job_columns(engine) -> set[str]:  # type: ignore[no-untyped-def]
    return {column["name"] for column in inspect(engine).get_columns("job")}


def test_0016_adds_and_drops_the_jobs_not_before_on_each_backend(url_on_each_backend: str) -> None:
    waits_until = datetime(2026, 12, 3, 10, 42, 5, tzinfo=UTC)
    with open_store_url(url_on_each_backend) as store:
        with store.transaction() as session:  # a job waiting after a platform fault, kept through both ways
            owner = create_key(session, "acme", ApiRole.CUSTOMER).row.id
            session.add(UploadedFile(id="file-1", owner_key_id=owner, filename="qa.jsonl", kind="text", format="jsonl",
                                     size_bytes=1, sha256="0" * 64, rows=1, path="/d/qa.jsonl"))  # fmt: skip
            session.flush()
            session.add(Job(id="job-1", owner_key_id=owner, file_id="file-1", task_type="instruct", base_model="m",
                            budget_tier="small", budget_seconds=60.0, not_before=waits_until))  # fmt: skip
        with migration_connection(store.engine) as connection:
            command.downgrade(alembic_config(connection), "0015")
        assert "not_before" not in _job_columns(store.engine)
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT id, status FROM job").fetchall() == [("job-1", "queued")]
        upgrade_schema(store.engine)
        assert "not_before" in _job_columns(store.engine) and _drift(store.engine) == []
        with store.session() as session:  # claimable at once, as every queued job was before 0016
            assert session.get_one(Job, "job-1").not_before is None

# --- 0017: a crowning's models due -------------------------------------------------------------------


def _crownings(store: Store) -> list[tuple]:
    with store.engine.connect() as connection:
        return connection.exec_driver_sql("SELECT id, models_due FROM champion_history ORDER BY id").fetchall()


def test_0017_marks_no_crowning_stored_before_as_owing_its_models_on_each_backend(url_on_each_backend: str) -> None:
    """Whether the setting was on when they were crowned is unknown: the heal takes the reigning ones only, as before."""
    with open_store_url(url_on_each_backend) as store:
        with store.transaction() as session:
            add_competitor(session, name="a", repo_url="u", commit="c" * 40, tree_hash="t", source_digest="d", entrypoint="train.py")
            session.add(ChampionHistory(kind="text", competitor_id=1, models_due=True))
        with migration_connection(store.engine) as connection:
            command.downgrade(alembic_config(connection), "0016")
        with store.engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO champion_history (kind, competitor_id, crowned_at) "
                                       "VALUES ('text', 1, '2026-12-01 00:00:00')")
        upgrade_schema(store.engine)
        assert _crownings(store) == [(1, False), (2, False)] and _drift(store.engine) == []


# --- 0018: a model's size and deletion ---------------------------------------------------------------


def _models(store: Store) -> list[tuple]:
    with store.engine.connect() as connection:
        return connection.exec_driver_sql("SELECT id, size_bytes, deleted_at, deleted_by_key_id FROM registered_model ORDER BY id").fetchall()


def test_0018_sizes_the_models_stored_before_from_their_cards_on_each_backend(url_on_each_backend: str) -> None:
    """The registry stored each file's size in the card: their sum is the model's size, and every model is alive."""
    files = [{"path": "README.md", "size": 300, "sha256": "a" * 64}, {"path": "adapter_model.safetensors", "size": 5000, "sha256": "b" * 64}]
    with open_store_url(url_on_each_backend) as store:
        with migration_connection(store.engine) as connection:
            command.downgrade(alembic_config(connection), "0017")
        with store.engine.begin() as connection:
            for model_id, card in (("model-a", {"files": files}), ("model-b", {"license": "mit"}), ("model-c", None)):
                connection.execute(text(
                    "INSERT INTO registered_model (id, source, task_type, base_model, dataset_digest, path, digest, created_at, card) "
                    "VALUES (:id, 'job', 'instruct', 'm', 'e', '/d/models/x', 'f', '2026-12-01 00:00:00', :card)"
                ), {"id": model_id, "card": None if card is None else json.dumps(card)})  # fmt: skip
        upgrade_schema(store.engine)
        assert _models(store) == [("model-a", 5300, None, None), ("model-b", 0, None, None), ("model-c", 0, None, None)]
        assert _drift(store.engine) == []
        with migration_connection(store.engine) as connection:
            command.downgrade(alembic_config(connection), "0017")
        assert "size_bytes" not in {column["name"] for column in inspect(store.engine).get_columns("registered_model")}


# --- 0019: a competitor's owner and retirement ------------------------------------------------------


def test_0019_leaves_the_competitors_stored_before_active_and_ownerless_on_each_backend(url_on_each_backend: str) -> None:
    """A row the downgrade stripped of the columns comes back with them null: active, and only an operator's to retire."""
    with open_store_url(url_on_each_backend) as store:
        with store.transaction() as session:
            key = create_key(session, "alice", ApiRole.COMPETITOR).row
            retired = add_competitor(session, name="old", repo_url="u", commit="c" * 40, tree_hash="t", source_digest="d",
                                     entrypoint="train.py", owner_key_id=key.id)  # fmt: skip
            retired.retired_at, retired.retired_by_key_id = datetime(2026, 12, 2, tzinfo=UTC), key.id
        with migration_connection(store.engine) as connection:
            command.downgrade(alembic_config(connection), "0018")
        upgrade_schema(store.engine)
        with store.engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT name, owner_key_id, retired_at, retired_by_key_id FROM competitor").fetchall()
        assert rows == [("old", None, None, None)] and _drift(store.engine) == []


def test_0003_downgrades_and_upgrades_on_postgresql(postgres_url: str) -> None:
    with open_store_url(postgres_url) as store:
        with store.transaction() as session:
            start_adhoc_run(session, origin="house", definition=_DEFINITION, digest="e" * 24)
        with migration_connection(store.engine) as connection:
            command.downgrade(alembic_config(connection), "0002")
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM run").scalar() == 0
        upgrade_schema(store.engine)
        assert _drift(store.engine) == []


_OPEN_AT_THE_GATE = """
import sys, time
from pathlib import Path
from trainarena.store import open_store_url
gate = Path(sys.argv[2])
Path(sys.argv[3]).touch()
while not gate.exists():
    time.sleep(0.001)
open_store_url(sys.argv[1]).close()
print("opened")
"""


def open_at_once(url: str, tmp_path: Path, processes: int) -> list[subprocess.CompletedProcess[str]]:
    """Start ``processes`` interpreters that open the store at ``url`` at the same moment."""
    gate = tmp_path / "gate"
    ready = [tmp_path / f"ready-{i}" for i in range(processes)]
    procs = [
        subprocess.Popen([sys.executable, "-c", _OPEN_AT_THE_GATE, url, str(gate), str(flag)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for flag in ready
    ]
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.touch()
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return results


def _assert_all_opened(results: list[subprocess.CompletedProcess[str]]) -> None:
    for result in results:
        assert result.returncode == 0 and result.stdout.strip() == "opened", result.stderr
        assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_opening_a_fresh_store_at_once_all_succeed(backend: str, tmp_path: Path, request) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    _assert_all_opened(open_at_once(url, tmp_path, processes=4))
    with open_store_url(url, migrate=False) as store, store.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
        assert _drift(store.engine) == []
