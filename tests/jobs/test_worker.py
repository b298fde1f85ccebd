"""The job worker with a fake executor (no training): a job's life cycle and events, the script it
runs (the champion's, else the house script), cancellation, two workers on one store (SQLite and
PostgreSQL) running each job once, jobs surviving a worker that stops or is killed, a worker that
lost its job stopping its run, and no ended job leaving its run running."""

from __future__ import annotations

import errno
import json
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from job_support import (
    FakeExecutor,
    customer,
    fast_settings,
    lose_running_try,
    queued_job,
    uploaded,
    wait_for,
    worker_killed_mid_job,
)
from sqlalchemy import select, update
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.contract import RunStatus, TaskType
from trainarena.jobs import JobWorker, cancel_job
from trainarena.jobs.files import delete_file
from trainarena.jobs.queue import beat, claim_next, requeue, requeue_stale, still_mine
from trainarena.jobs.runner import JobRunner, StopRequest
from trainarena.records.signing import envelope_payload
from trainarena.reporting.run_detail import NO_VALIDATION_ROWS
from trainarena.runs import CompetitorInfo, RunInterrupted, RunReport, definition_digest, definition_from_json
from trainarena.settings import Settings
from trainarena.store import Store, add_competitor, open_store
from trainarena.store.log_tables import LogEntry
from trainarena.store.models import (
    AttemptStatus,
    ChampionHistory,
    Job,
    JobEvent,
    JobStatus,
    RegisteredModel,
    Run,
    RunOrigin,
    UploadedFile,
)
from trainarena.submissions import checkout_path
from trainarena.task_preparation import TaskPreparer
from trainarena.tasks.base import TaskDefinition
from trainarena.workbench import house_script_dir, worktree_script


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fast_settings(tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with open_store(settings) as opened:
        yield opened


def job_row(store: Store, job_id: str) -> Job:
    with store.session() as session:
        return session.get_one(Job, job_id)


def kinds(store: Store, job_id: str) -> list[str]:
    with store.session() as session:
        return [e.kind for e in session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))]


def life_cycle(store: Store, job_id: str) -> list[str]:
    """The job's events but its progress lines, which come as the log grows (how many depends on timing)."""
    return [kind for kind in kinds(store, job_id) if kind != "progress"]


def finished(store: Store, job_id: str) -> bool:
    return job_row(store, job_id).status in JobStatus.FINISHED


@pytest.fixture
def worker_of(settings: Settings, store: Store) -> Iterator:
    started: list[JobWorker] = []

    def make(executor: FakeExecutor, **kwargs: object) -> JobWorker:
        worker = JobWorker(settings, store=store, executor=executor, **kwargs)
        worker.start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()


def test_a_job_trains_registers_its_model_and_reports_its_score(settings: Settings, store: Store, worker_of) -> None:  # noqa: ANN001
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner), validation_share=0.2, seed=7)
    executor = FakeExecutor()
    worker_of(executor)
    wait_for(lambda: finished(store, job_id), what="the job to finish")
    job = job_row(store, job_id)
    assert (job.status, job.score, job.competitor_id) == (JobStatus.SUCCEEDED, 1.25, None)
    assert kinds(store, job_id)[:2] == ["queued", "started"] and kinds(store, job_id)[-1] == "finished"
    with store.session() as session:
        model = session.get_one(RegisteredModel, job.model_id)
        assert (model.owner_key_id, model.job_id, model.score, model.source) == (owner, job_id, 1.25, "job")
        assert (Path(model.path) / "adapter_model.safetensors").read_bytes().startswith(b"weights of")
        run = session.get_one(Run, job.run_id)
        assert (run.origin, run.status, run.attempts) == (RunOrigin.JOB, RunStatus.SUCCEEDED.value, 1)
        progress = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.kind == "progress")).all()
    assert progress and "step 2 loss 1.50" in [line for event in progress for line in event.data["lines"]]
    competitor, task, _run_dir = executor.calls[0]
    assert competitor.name == "house script" and competitor.submission_dir is not None
    assert (task.name, task.seed, task.budget_seconds) == (job_id, 7, settings.jobs.budget_tiers["small"])
    shown, text = _runs_show(settings, job.run_id)
    assert (shown["score"], shown["not_scored"]) == (1.25, None) and "score 1.250000 (lower is better)" in text
    # The script that trained it, as the job names it; no reference runs on a customer's data, so no
    # "house script: not run on this seed" line (it read as noise, with the competitor labelled "job").
    assert (shown["origin"], shown["competitor"], shown["references"]) == ("job", "house script", [])
    assert "competitor house script " in text and "not run on this seed" not in text
    # Its signed record names the customer's file and the code that trained it, by digests, not by paths.
    signed = _signed_run(store, job.run_id)
    with store.session() as session:
        upload = session.get_one(UploadedFile, job.file_id)
    assert signed["task"]["upload"] == {"file_id": upload.id, "sha256": upload.sha256, "field_mapping": job.field_mapping}
    house = worktree_script(settings, house_script_dir(settings, TaskType.INSTRUCT)).info
    assert signed["submission"] == {"kind": "job", "script": "house script", "tree_hash": signed["submission"]["tree_hash"],
                                    "source_digest": house.tree_hash}  # fmt: skip
    assert signed["submission"]["tree_hash"].startswith(Path(str(house.submission_dir)).name)
    assert str(settings.data_dir) not in json.dumps([signed["task"]["upload"], signed["submission"]])


def _signed_run(store: Store, run_id: int) -> dict:
    """The predicate of the run statement the log holds for ``run_id``."""
    with store.session() as session:
        entry = session.scalars(select(LogEntry).where(LogEntry.run_id == run_id, LogEntry.kind == "run")).one()
        return envelope_payload(entry.envelope)["predicate"]


def _runs_show(settings: Settings, run_id: int) -> tuple[dict, str]:
    """``runs show RUN_ID``, as --json and as its text with the blanks squeezed."""
    env = {"TRAINARENA_DATA_DIR": str(settings.data_dir), "COLUMNS": "80"}
    shown = CliRunner().invoke(app, ["runs", "show", str(run_id), "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.stdout), " ".join(CliRunner().invoke(app, ["runs", "show", str(run_id)], env=env).stdout.split())


def test_without_a_validation_share_no_score_is_reported(settings: Settings, store: Store, worker_of) -> None:  # noqa: ANN001
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    worker_of(FakeExecutor())
    wait_for(lambda: finished(store, job_id))
    job = job_row(store, job_id)
    assert job.status == JobStatus.SUCCEEDED and job.score is None and job.model_id is not None
    # Its run's evaluation measured rows the script trained on: `runs show` printed that number as a score.
    shown, text = _runs_show(settings, job.run_id)
    assert (shown["score"], shown["direction"], shown["not_scored"]) == (None, None, NO_VALIDATION_ROWS)
    assert [line["score"] for line in shown["attempt_history"]] == [None]
    assert f"score {NO_VALIDATION_ROWS}" in text and "1.25" not in text


def _champion(settings: Settings, store: Store, task_types: str) -> int:
    commit = "c" * 40
    checkout = checkout_path(settings, commit)
    checkout.mkdir(parents=True)
    (checkout / "trainarena.toml").write_text(f'[trainarena]\ncontract = 1\nentrypoint = "train.py"\ntask_types = {task_types}\n')
    (checkout / "train.py").write_text("print('champion')\n")
    with store.transaction() as session:
        champion = add_competitor(session, name="reigning", repo_url="https://example.org/r.git", commit=commit,
                                  tree_hash="t" * 40, source_digest="s" * 64, entrypoint="train.py", kind="text")  # fmt: skip
        session.add(ChampionHistory(kind="text", competitor=champion, crowned_at=datetime.now(UTC)))
        session.flush()
        return champion.id


def test_the_reigning_champion_trains_the_job(settings: Settings, store: Store, worker_of) -> None:  # noqa: ANN001
    champion = _champion(settings, store, '["instruct", "dpo"]')
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    executor = FakeExecutor()
    worker_of(executor)
    wait_for(lambda: finished(store, job_id))
    assert executor.calls[0][0].name == "reigning"
    job = job_row(store, job_id)
    assert job.competitor_id == champion
    with store.session() as session:
        assert session.get_one(RegisteredModel, job.model_id).competitor_id == champion
        started = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.kind == "started")).one()
    assert started.data["script"] == "reigning" and "reigning trains instruct" in started.message
    shown, text = _runs_show(settings, job.run_id)
    assert (shown["competitor"], shown["repo_url"], shown["references"]) == ("reigning", "https://example.org/r.git", [])
    assert "competitor reigning (https://example.org/r.git at " in text and "house script" not in text
    # The record names the champion's code as a tournament's records name an entrant's.
    assert _signed_run(store, job.run_id)["submission"] == {
        "kind": "registered", "name": "reigning", "repo": "https://example.org/r.git", "commit": "c" * 40,
        "tree_hash": "t" * 40, "source_digest": "s" * 64, "entrypoint": "train.py", "hotkey": None}  # fmt: skip


def test_a_champion_that_does_not_train_the_type_leaves_it_to_the_house_script(settings: Settings, store: Store, worker_of) -> None:  # noqa: ANN001
    _champion(settings, store, '["dpo"]')
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    executor = FakeExecutor()
    worker_of(executor)
    wait_for(lambda: finished(store, job_id))
    assert executor.calls[0][0].name == "house script" and job_row(store, job_id).competitor_id is None


def test_a_failed_run_fails_the_job_with_its_reason(settings: Settings, store: Store, worker_of) -> None:  # noqa: ANN001
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    worker_of(FakeExecutor(status=RunStatus.FAILED))
    wait_for(lambda: finished(store, job_id))
    job = job_row(store, job_id)
    assert job.status == JobStatus.FAILED and "exited with code 1" in job.failure_reason and job.model_id is None
    assert kinds(store, job_id)[-1] == "failed"


def test_a_queued_job_is_cancelled_at_once_and_never_runs(settings: Settings, store: Store, worker_of) -> None:  # noqa: ANN001
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    with store.transaction() as session:
        assert cancel_job(session, job_id, owner).status == JobStatus.CANCELLED
    executor = FakeExecutor()
    worker_of(executor)
    other = queued_job(settings, store, owner, uploaded(settings, store, owner))
    wait_for(lambda: finished(store, other))
    assert [call[1].name for call in executor.calls] == [other]
    assert kinds(store, job_id) == ["queued", "cancelled"]


def test_a_running_job_is_stopped_when_cancelled(settings: Settings, store: Store, worker_of) -> None:  # noqa: ANN001
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    release = threading.Event()
    executor = FakeExecutor(release=release)
    worker = worker_of(executor)
    wait_for(executor.started.is_set)
    with store.transaction() as session:
        assert cancel_job(session, job_id, None).cancel_requested
    # The worker passes the cancellation to the run's stop request (the sandbox then kills the run;
    # tests/jobs/test_sandboxed_job.py shows that with a real sandbox); this fake ends when released.
    wait_for(lambda: worker._running[job_id][1].cancelled, what="the worker to pass the cancellation on")
    release.set()
    wait_for(lambda: finished(store, job_id))
    assert job_row(store, job_id).status == JobStatus.CANCELLED and kinds(store, job_id)[-1] == "cancelled"


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return request.getfixturevalue("postgres_url")


def test_two_workers_on_one_store_run_each_job_once(tmp_path: Path, shared_url: str) -> None:
    settings = fast_settings(tmp_path / "data", shared_url, concurrency=2)
    with open_store(settings) as store_a, open_store(settings) as store_b:
        owner = customer(store_a)
        file_id = uploaded(settings, store_a, owner)
        jobs = [queued_job(settings, store_a, owner, file_id, seed=i) for i in range(8)]
        executors = (FakeExecutor(), FakeExecutor())
        workers = [JobWorker(settings, store=s, executor=e, worker_id=f"w{i}") for i, (s, e) in enumerate(zip((store_a, store_b), executors, strict=True))]
        for worker in workers:
            worker.start()
        try:
            wait_for(lambda: all(finished(store_a, job_id) for job_id in jobs), timeout=60)
        finally:
            for worker in workers:
                worker.stop()
        ran = sorted(call[1].name for executor in executors for call in executor.calls)
        assert ran == sorted(jobs)
        assert {job_row(store_a, job_id).status for job_id in jobs} == {JobStatus.SUCCEEDED}


def test_a_stopped_worker_queues_its_job_again_for_the_next_one(settings: Settings, store: Store) -> None:
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    first = JobWorker(settings, store=store, executor=FakeExecutor(release=threading.Event()), worker_id="first")
    first.start()
    wait_for(lambda: job_row(store, job_id).status == JobStatus.RUNNING)
    first.stop()  # the service stops: the run is stopped, its try withdrawn and the job queued again
    assert job_row(store, job_id).status == JobStatus.QUEUED
    second = JobWorker(settings, store=store, executor=FakeExecutor(), worker_id="second")
    second.start()
    try:
        wait_for(lambda: finished(store, job_id))
    finally:
        second.stop()
    assert job_row(store, job_id).status == JobStatus.SUCCEEDED
    assert run_of(store, job_id)[:2] == (RunStatus.SUCCEEDED.value, [AttemptStatus.WITHDRAWN, RunStatus.SUCCEEDED.value])
    assert life_cycle(store, job_id) == ["queued", "started", "queued", "started", "finished"]


def test_a_job_claimed_while_the_worker_stops_is_stopped_and_queued_again_too(settings: Settings, store: Store,
                                                                             monkeypatch) -> None:  # noqa: ANN001
    """stop() comes between the loop's check of the stop and its claim: the job it claims then is
    launched after stop() began, and must be stopped and queued again like the others, not left running
    on a store stop() closes."""
    from trainarena.jobs import worker as worker_module

    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    claiming, real_claim = threading.Event(), worker_module.claim_next
    worker = JobWorker(settings, store=store, executor=FakeExecutor(release=threading.Event()), worker_id="first")

    def claim_once_stop_began(session, worker_id, **kwargs):  # noqa: ANN001, ANN003
        claiming.set()
        worker._stopping.wait(10)
        return real_claim(session, worker_id, **kwargs)

    monkeypatch.setattr(worker_module, "claim_next", claim_once_stop_began)
    worker.start()
    assert claiming.wait(10)
    worker.stop()
    assert worker.running() == [] and job_row(store, job_id).status == JobStatus.QUEUED
    assert not [t for t in threading.enumerate() if t.name == f"job-{job_id}"]


def _assert_second_attempt_counted(store: Store, job_id: str, reason: str) -> None:
    job = job_row(store, job_id)
    assert job.status == JobStatus.SUCCEEDED
    with store.session() as session:
        attempts = session.get_one(Run, job.run_id).attempt_records
        assert [a.status for a in attempts] == [AttemptStatus.INTERRUPTED, RunStatus.SUCCEEDED.value]
        assert reason in attempts[0].failure_reason
    assert life_cycle(store, job_id)[:4] == ["queued", "started", "queued", "started"]


class NodeLosingExecutor(FakeExecutor):
    """Loses the first try as the Ray executor does when the run's node dies."""

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        if not self.calls:
            self.calls.append((competitor, task, run_dir))
            raise RunInterrupted("lost on the Ray cluster (NodeDiedError: node 7 died); tried again")
        return super().run_task(competitor, task, run_dir, run_name)


def test_a_job_whose_run_is_lost_with_its_node_is_queued_again_and_finished(settings: Settings, store: Store, worker_of) -> None:  # noqa: ANN001
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    executor = NodeLosingExecutor()
    worker_of(executor)
    wait_for(lambda: finished(store, job_id), what="the job to finish")
    _assert_second_attempt_counted(store, job_id, "NodeDiedError: node 7 died")
    assert len(executor.calls) == 2


def test_a_killed_workers_job_is_queued_again_and_finished_by_another(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data", stale_seconds=0.5)
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    worker_killed_mid_job(tmp_path / "data", job_id)
    with open_store(settings) as store:
        assert job_row(store, job_id).worker_id == "doomed"
        survivor = JobWorker(settings, store=store, executor=FakeExecutor(), worker_id="survivor")
        survivor.start()
        try:
            wait_for(lambda: finished(store, job_id))
        finally:
            survivor.stop()
        _assert_second_attempt_counted(store, job_id, "its worker (doomed) stopped beating")


def test_a_job_that_keeps_losing_its_worker_fails_after_its_last_try(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data", max_attempts=2)
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        worker = JobWorker(settings, store=store, executor=FakeExecutor(release=threading.Event()), worker_id="first")
        worker.start()
        try:
            lose_running_try(settings, store, job_id, 1)
            lose_running_try(settings, store, job_id, 2)  # the next try, once the lost one returned
        finally:
            worker.stop()
        job = job_row(store, job_id)
        assert job.status == JobStatus.FAILED and "on each of its 2 tries; not tried again" in job.failure_reason
        assert life_cycle(store, job_id) == ["queued", "started", "queued", "started", "failed"]


def run_of(store: Store, job_id: str) -> tuple[str, list[str], str | None]:
    """The job's run: its status, its attempts' statuses and its failure reason."""
    with store.session() as session:
        run = session.get_one(Run, session.get_one(Job, job_id).run_id)
        return run.status, [a.status for a in run.attempt_records], run.failure_reason


def test_a_job_failed_after_its_last_try_fails_its_run_too(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data", max_attempts=1)
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        worker = JobWorker(settings, store=store, executor=FakeExecutor(release=threading.Event()))
        worker.start()
        try:
            lose_running_try(settings, store, job_id)  # its one try ends without a report: the job fails, and so does its run
        finally:
            worker.stop()
        assert job_row(store, job_id).status == JobStatus.FAILED
        status, attempts, reason = run_of(store, job_id)
        assert (status, attempts) == (RunStatus.FAILED.value, [AttemptStatus.INTERRUPTED])
        assert "on each of its 1 tries; not tried again" in reason


def test_a_job_whose_end_cannot_be_recorded_fails_with_its_run(settings: Settings, store: Store, worker_of, monkeypatch) -> None:  # noqa: ANN001
    from trainarena.registry import layout

    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(layout.shutil, "copyfile", disk_full)  # registering the model fails: _finish rolls back
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    worker_of(FakeExecutor())
    wait_for(lambda: finished(store, job_id))
    assert job_row(store, job_id).status == JobStatus.FAILED and "No space left" in job_row(store, job_id).failure_reason
    status, attempts, reason = run_of(store, job_id)
    assert (status, attempts) == (RunStatus.FAILED.value, [AttemptStatus.INTERRUPTED]) and "No space left" in reason


def test_a_job_queued_again_then_cancelled_closes_its_run(settings: Settings, store: Store) -> None:
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    worker = JobWorker(settings, store=store, executor=FakeExecutor(release=threading.Event()))
    worker.start()
    wait_for(lambda: job_row(store, job_id).status == JobStatus.RUNNING and job_row(store, job_id).run_id)
    worker.stop()  # queued again, its run waiting for a next try
    assert run_of(store, job_id)[:2] == (RunStatus.PENDING.value, [AttemptStatus.WITHDRAWN])
    with store.transaction() as session:
        assert cancel_job(session, job_id, owner).status == JobStatus.CANCELLED
    assert run_of(store, job_id)[:2] == (RunStatus.FAILED.value, [AttemptStatus.WITHDRAWN])
    assert kinds(store, job_id)[-1] == "cancelled"


def test_a_job_cancelled_while_its_worker_was_dead_ends_cancelled_not_queued(settings: Settings, store: Store) -> None:
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    with store.transaction() as session:
        assert claim_next(session, "dead-worker") == job_id
    with store.transaction() as session:
        cancel_job(session, job_id, owner)  # flagged; nobody is alive to pass it on
        session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=datetime.now(UTC) - timedelta(hours=1)))
    with store.transaction() as session:
        assert requeue_stale(session, settings.jobs) == [job_id]
    with store.transaction() as session:
        assert claim_next(session, "next-worker") is None
    assert job_row(store, job_id).status == JobStatus.CANCELLED and kinds(store, job_id)[-1] == "cancelled"


def test_a_worker_late_with_its_beat_does_not_requeue_its_own_run(settings: Settings, store: Store) -> None:
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    with store.transaction() as session:
        assert claim_next(session, "slow-loop") == job_id
        session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=datetime.now(UTC) - timedelta(hours=1)))
    with store.transaction() as session:  # the worker itself, alive: it beats for its run next
        assert requeue_stale(session, settings.jobs, running_here=[job_id]) == []
    with store.transaction() as session:  # any other worker: it died
        assert requeue_stale(session, settings.jobs, running_here=["job-of-its-own"]) == [job_id]


def test_a_queued_job_flagged_cancelled_is_never_claimed(settings: Settings, store: Store) -> None:
    """The flag came while the job ran and its requeue committed after the cancel looked at it: it
    sits queued with the flag, and the next claim ends it instead of running it."""
    owner = customer(store)
    flagged = queued_job(settings, store, owner, uploaded(settings, store, owner))
    other = queued_job(settings, store, owner, uploaded(settings, store, owner))
    with store.transaction() as session:
        session.execute(update(Job).where(Job.id == flagged).values(cancel_requested=True))
    with store.transaction() as session:
        assert claim_next(session, "w") == other
    assert job_row(store, flagged).status == JobStatus.CANCELLED and kinds(store, flagged) == ["queued", "cancelled"]


def test_a_worker_whose_job_was_taken_kills_its_run_at_once(tmp_path: Path) -> None:
    slow = fast_settings(tmp_path / "data")
    quick = fast_settings(tmp_path / "data", stale_seconds=0.5)
    with open_store(slow) as store:
        owner = customer(store)
        job_id = queued_job(slow, store, owner, uploaded(slow, store, owner))
        first_release, second_executor = threading.Event(), FakeExecutor(release=threading.Event())
        first = JobWorker(slow, store=store, executor=FakeExecutor(release=first_release), worker_id="first")
        real_beat = first._beat

        def stalled_beat() -> None:  # a store write that stalls until another worker has taken the job
            if first.running():
                second_executor.started.wait(20)
            real_beat()

        first._beat = stalled_beat  # type: ignore[method-assign]
        first.start()
        wait_for(lambda: job_row(store, job_id).status == JobStatus.RUNNING)
        second = JobWorker(quick, store=store, executor=second_executor, worker_id="second")
        second.start()
        try:
            wait_for(second_executor.started.is_set, what="the second worker to start the job")
            stop = first._running[job_id][1]
            wait_for(stop.event.is_set, timeout=5, what="the first worker to stop its run")
            assert stop.event.at_once() and not stop.cancelled  # killed at once: nothing of it is kept
            first_release.set()
            wait_for(lambda: first.running() == [], what="the first worker's run to end")
            second_executor.release.set()  # type: ignore[union-attr]
            wait_for(lambda: finished(store, job_id), what="the second worker to finish the job")
        finally:
            first_release.set()
            second_executor.release.set()  # type: ignore[union-attr]
            second.stop()
            first.stop()
        job = job_row(store, job_id)
        assert (job.status, job.worker_id) == (JobStatus.SUCCEEDED, None)
        assert run_of(store, job_id)[:2] == (RunStatus.SUCCEEDED.value, [AttemptStatus.INTERRUPTED, RunStatus.SUCCEEDED.value])


class OneReleasePerCall(FakeExecutor):
    """Each call waits for its own release (``releases[n]`` for the n-th call), even once stopped: a lost
    try still running when the claim loop has room again."""

    def __init__(self) -> None:
        super().__init__(stoppable=False)
        self.releases = [threading.Event() for _ in range(4)]

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        self.release = self.releases[len(self.calls)]
        return super().run_task(competitor, task, run_dir, run_name)


def test_a_worker_does_not_claim_again_a_job_it_lost_until_the_lost_try_returns(tmp_path: Path) -> None:
    """With room for two jobs, the job a worker lost (queued again after its late beats) is not handed
    back to it while the lost try still runs: once it returns (recording nothing), the next try runs
    tracked and is the one that counts."""
    settings = fast_settings(tmp_path / "data", concurrency=2)
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        executor = OneReleasePerCall()
        worker = JobWorker(settings, store=store, executor=executor, worker_id="A")
        worker.start()
        try:
            wait_for(lambda: len(executor.calls) == 1)
            lost = worker._running[job_id][1]
            with store.transaction() as session:  # what another worker's requeue_stale does after A's late beats
                assert requeue(session, job_id, None, "simulated: heartbeats late", settings.jobs.max_attempts)
            wait_for(lost.event.at_once, timeout=5, what="the lost try to be killed")
            time.sleep(10 * settings.jobs.poll_seconds)  # ticks in which the claim loop has room
            assert len(executor.calls) == 1 and job_row(store, job_id).status == JobStatus.QUEUED
            executor.releases[0].set()  # the lost try returns
            wait_for(lambda: len(executor.calls) == 2, what="the next try")
            assert worker.running() == [job_id] and worker._running[job_id][1] is not lost  # tracked: beats, cancel, stop
            executor.releases[1].set()
            wait_for(lambda: finished(store, job_id), what="the next try to finish the job")
        finally:
            for release in executor.releases:
                release.set()
            worker.stop()
        assert job_row(store, job_id).status == JobStatus.SUCCEEDED
        assert run_of(store, job_id)[:2] == (RunStatus.SUCCEEDED.value, [AttemptStatus.INTERRUPTED, RunStatus.SUCCEEDED.value])
        assert life_cycle(store, job_id) == ["queued", "started", "queued", "started", "finished"]


def test_the_end_of_a_lost_try_leaves_the_next_try_of_the_job_alone(settings: Settings, store: Store) -> None:
    """A try that returns after its job was queued again and claimed again by the same worker neither
    records nor requeues anything: only the running attempt's own try may."""
    owner = customer(store)
    job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    with store.transaction() as session:
        assert claim_next(session, "A") == job_id
    runner = JobRunner(settings, store, FakeExecutor())
    first = runner._start(job_id, "A")
    with store.transaction() as session:
        assert requeue(session, job_id, "A", "heartbeats late", settings.jobs.max_attempts)
    with pytest.raises(RuntimeError, match="no longer this worker's job"):  # a try of a job taken back records no attempt
        runner._start(job_id, "A")
    with store.transaction() as session:
        assert claim_next(session, "A") == job_id
    second = runner._start(job_id, "A")
    assert (first.number, second.number) == (1, 2)
    with store.session() as session:
        assert not still_mine(session, "A", job_id, first.number) and still_mine(session, "A", job_id, second.number)
    runner._withdraw_stopped(first, "A")  # the lost try ends as if its service stopped: it must not queue the job again
    stopped = StopRequest()
    stopped.cancel()  # nor, ending as cancelled, store its report or end the job
    runner._finish(first, "A", RunReport(RunStatus.FAILED, time.time(), time.time(), failure_reason="killed"), stopped)
    with store.transaction() as session:
        assert not requeue(session, job_id, "A", "the lost try's node died", settings.jobs.max_attempts, attempt=first.number)
    assert job_row(store, job_id).status == JobStatus.RUNNING
    assert run_of(store, job_id)[:2] == (RunStatus.RUNNING.value, [AttemptStatus.INTERRUPTED, AttemptStatus.RUNNING])


def test_on_postgresql_heartbeats_and_staleness_follow_the_database_clock(tmp_path: Path, postgres_url: str, monkeypatch) -> None:  # noqa: ANN001
    """A worker whose host clock runs an hour ahead neither takes the jobs of live workers nor has its
    own taken: beats and the cutoff are the PostgreSQL server's times. (A SQLite store's clock is its
    one host's: test_store_clock.)"""
    from trainarena.jobs import queue

    settings = fast_settings(tmp_path / "data", postgres_url)
    ahead = lambda: datetime.now(UTC) + timedelta(hours=1)  # noqa: E731
    with open_store(settings) as store:
        owner = customer(store)
        file_id = uploaded(settings, store, owner)
        jobs = [queued_job(settings, store, owner, file_id, seed=i) for i in range(2)]
        with store.transaction() as session:
            assert claim_next(session, "on-time") == jobs[0]
        monkeypatch.setattr(queue, "utcnow", ahead)
        with store.transaction() as session:
            assert claim_next(session, "ahead") == jobs[1]
            assert beat(session, "ahead", jobs) == {jobs[1]}  # only its own
            assert requeue_stale(session, settings.jobs) == []  # the on-time worker's beat is fresh
        monkeypatch.undo()
        with store.transaction() as session:
            assert requeue_stale(session, settings.jobs) == []  # and so is the one of the worker ahead
            beats = dict(session.execute(select(Job.id, Job.heartbeat_at).where(Job.id.in_(jobs))).all())
    assert all(abs(beats[job_id] - datetime.now(UTC)) < timedelta(minutes=1) for job_id in jobs), beats


class StagingExecutor(FakeExecutor):
    """A fake that lays out its attempt's inputs as the pipeline does: the prepared train split copied in."""

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        prepared = TaskPreparer(self.settings).prepare(task)  # the job prepared it: found in the cache
        (run_dir / "inputs").mkdir(parents=True)
        shutil.copy2(prepared.train_file, run_dir / "inputs" / prepared.train_file.name)
        return super().run_task(competitor, task, run_dir, run_name)

    def __init__(self, settings: Settings, release: threading.Event | None = None) -> None:
        super().__init__(release)
        self.settings = settings


SECRET_ROWS = [{"q": f"secret-{i} plus {i}?", "a": str(2 * i)} for i in range(30)]


def files_with_rows(settings: Settings) -> list[str]:
    """The files under the data dir (the store aside) holding a row of SECRET_ROWS."""
    return sorted(str(p.relative_to(settings.data_dir)) for p in settings.data_dir.rglob("*")
                  if p.is_file() and p.suffix != ".db" and b"secret-" in p.read_bytes())  # fmt: skip


def test_an_ended_job_leaves_no_copy_of_its_file_and_deleting_the_file_removes_the_upload(
    settings: Settings, store: Store, worker_of  # noqa: ANN001
) -> None:
    owner = customer(store)
    file_id = uploaded(settings, store, owner, SECRET_ROWS)
    job_id = queued_job(settings, store, owner, file_id, validation_share=0.2)
    executor = StagingExecutor(settings)
    worker_of(executor)
    wait_for(lambda: finished(store, job_id))
    assert job_row(store, job_id).status == JobStatus.SUCCEEDED
    # The prepared splits and the inputs go right after the end is stored.
    wait_for(lambda: files_with_rows(settings) == [f"uploads/{file_id}.jsonl"], what="only the upload to hold its rows")
    run_dir = executor.calls[0][2]
    assert (run_dir / "logs" / "stdout.log").is_file() and (run_dir / "output").is_dir()  # logs and output stay
    with store.transaction() as session:
        delete_file(session, file_id, owner, settings=settings)
    assert files_with_rows(settings) == []


def test_deleting_a_file_removes_every_copy_of_its_rows_an_ended_job_left(settings: Settings, store: Store, worker_of) -> None:  # noqa: ANN001
    """A job that ended before its copies were removed at its end (or whose audit prepared the task
    again): deleting the file removes the cached splits, a killed preparation's staging folders, every
    attempt's inputs and the audit's."""
    owner = customer(store)
    file_id = uploaded(settings, store, owner, SECRET_ROWS)
    job_id = queued_job(settings, store, owner, file_id, validation_share=0.2)
    worker_of(FakeExecutor())
    wait_for(lambda: finished(store, job_id) and files_with_rows(settings) == [f"uploads/{file_id}.jsonl"])
    with store.session() as session:
        run = session.get_one(Run, job_row(store, job_id).run_id)
        task, run_id = definition_from_json(run.task.definition), run.id
    prepared = TaskPreparer(settings).prepare(task)  # what an audit of the job's run prepares again
    leftovers = [settings.work_dir / "jobs" / job_id / "attempt-1" / "inputs", settings.work_dir / "audits" / f"run-{run_id}-9" / "inputs",
                 settings.cache_dir / "tasks" / f".staging-{definition_digest(task)}-x1"]  # fmt: skip
    for folder in leftovers:
        folder.mkdir(parents=True)
        shutil.copy2(prepared.train_file, folder / "train.jsonl")
    assert len(files_with_rows(settings)) == 6
    with store.transaction() as session:
        delete_file(session, file_id, owner, settings=settings)
    assert files_with_rows(settings) == []
    assert (settings.work_dir / "audits" / f"run-{run_id}-9").is_dir()  # only the inputs of the audit's run went


def test_a_running_job_keeps_its_copies_until_it_ends_after_its_file_is_deleted(settings: Settings, store: Store, worker_of) -> None:  # noqa: ANN001
    owner = customer(store)
    file_id = uploaded(settings, store, owner, SECRET_ROWS)
    job_id = queued_job(settings, store, owner, file_id, validation_share=0.2)
    release = threading.Event()
    executor = StagingExecutor(settings, release)
    worker_of(executor)
    wait_for(executor.started.is_set)
    with store.transaction() as session:
        delete_file(session, file_id, owner, settings=settings)
    still = files_with_rows(settings)
    assert f"uploads/{file_id}.jsonl" not in still and any(name.startswith("hidden/") for name in still)  # it still scores
    release.set()
    wait_for(lambda: finished(store, job_id))
    assert job_row(store, job_id).status == JobStatus.SUCCEEDED
    wait_for(lambda: files_with_rows(settings) == [], what="the ended job's copies to go")
