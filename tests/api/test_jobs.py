"""POST/GET /v1/jobs, cancel, and the events stream: every field checked at creation (422 naming it),
a job run by the worker service beside the API (a fake executor: no training), its events read as
server-sent events and resumed with Last-Event-ID, cancellation, and customers never seeing each
other's jobs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trainarena.api import create_app
from trainarena.contract import Direction, RunStatus
from trainarena.execution.supervise import current_stop_event
from trainarena.jobs import JobWorker
from trainarena.jobs.copies import job_copies
from trainarena.runs import CompetitorInfo, RunReport
from trainarena.settings import JobRules, Settings
from trainarena.store import Store
from trainarena.store.models import Job, JobStatus, database_now
from trainarena.tasks.base import Evaluation, TaskDefinition

MAPPING = {"field_instruction": "q", "field_output": "a"}
ROWS = "".join(json.dumps({"q": f"What is {i} plus {i}?", "a": str(2 * i)}) + "\n" for i in range(30)).encode()


class QuickExecutor:
    """Prints two loss lines and a progress bar and leaves an artifact at once (no training), scored
    0.75; scores the base model 1.0 (lower is better)."""

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        (run_dir / "logs").mkdir(parents=True)
        (run_dir / "output").mkdir()
        (run_dir / "logs" / "stdout.log").write_text("step 1 loss 2.00\nstep 2 loss 1.50\n")
        (run_dir / "logs" / "stderr.log").write_text("\r 50%|#####     | 1/2 [00:00<00:00,  2.10it/s]\r100%|##########| 2/2 [00:00<00:00,  2.10it/s]\n")
        (run_dir / "output" / "adapter_config.json").write_text('{"peft_type": "LORA"}')
        (run_dir / "output" / "adapter_model.safetensors").write_bytes(b"weights")
        time.sleep(0.3)  # long enough for a progress event
        return RunReport(RunStatus.SUCCEEDED, time.time(), time.time(), log_path=run_dir / "logs", artifact_path=run_dir / "output",
                         artifact_digest="ab" * 32, evaluation=Evaluation(0.75, Direction.LOWER))  # fmt: skip

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        return RunReport(RunStatus.SUCCEEDED, time.time(), time.time(), evaluation=Evaluation(1.0, Direction.LOWER))


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    model = tmp_path / "model"
    model.mkdir()
    rules = JobRules(base_models=(str(model), "trainarena:tiny_sd"), poll_seconds=0.05, heartbeat_seconds=0.1, progress_seconds=0.05)
    return Settings(data_dir=tmp_path / "data", jobs=rules, api={"sse_poll_seconds": 0.05})


@pytest.fixture
def working_client(api_settings: Settings, api_store: Store) -> Iterator[TestClient]:
    """The API with a job worker beside it (the fake executor)."""
    worker = JobWorker(api_settings, store=api_store, executor=QuickExecutor())
    with TestClient(create_app(api_settings, store=api_store, services=(worker,))) as test_client:
        yield test_client


def upload(jobs_client: TestClient, headers: dict, name: str = "qa.jsonl", data: bytes = ROWS) -> str:
    response = jobs_client.post("/v1/files", headers=headers, files={"file": (name, data)})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def job_body(settings: Settings, file_id: str, **fields: object) -> dict:
    return {"task_type": "instruct", "base_model": settings.jobs.base_models[0], "file_id": file_id, "field_mapping": MAPPING, **fields}


def sse_events(jobs_client: TestClient, headers: dict, job_id: str, last_event_id: int | None = None) -> list[dict]:
    """Every event of the stream until the server ends it, parsed from the text/event-stream lines."""
    extra = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    events, current = [], {}
    with jobs_client.stream("GET", f"/v1/jobs/{job_id}/events", headers={**headers, **extra}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if current:
                    events.append(current)
                current = {}
                continue
            field, _, value = line.partition(": ")
            current[field] = value
    return [{"id": int(e["id"]), "event": e["event"], **json.loads(e["data"])} for e in events]


def test_a_last_event_id_that_is_no_event_id_is_a_422(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    """A 23-digit id broke the stream mid-response (OverflowError in SQLite) and '²' (str.isdigit is true
    for it) was a plain-text 500; now each is 422 in the error shape, before the stream starts."""
    created = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, upload(jobs_client, auth["customer"])))
    assert created.status_code == 201, created.text
    for value in (b"99999999999999999999999", b"2147483648", "²".encode("latin-1"), b"-1", b"1e3", b"abc"):
        refused = jobs_client.get(f"/v1/jobs/{created.json()['id']}/events", headers={**auth["customer"], "Last-Event-ID": value})
        assert refused.status_code == 422, (value, refused.text)
        error = refused.json()["error"]
        assert error["code"] == "invalid_request" and error["message"].startswith("Last-Event-ID must be the id of an event")


def test_a_job_streams_its_events_to_the_end(working_client: TestClient, auth: dict, api_settings: Settings) -> None:
    jobs_client = working_client
    created = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, upload(jobs_client, auth["customer"]),
                                                                             validation_share=0.2))  # fmt: skip
    assert created.status_code == 201, created.text
    job = created.json()
    assert (job["status"], job["budget_tier"], job["object"]) == ("queued", "small", "job")
    events = sse_events(jobs_client, auth["customer"], job["id"])
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["queued", "started"] and kinds[-1] == "finished" and "progress" in kinds
    assert events[0]["message"].endswith("budget small (60 s)")  # the tier's seconds, not its name alone
    assert [e["id"] for e in events] == sorted(e["id"] for e in events) and all(e["kind"] == e["event"] for e in events)
    progress = next(e for e in events if e["event"] == "progress")
    assert "step 2 loss 1.50" in progress["data"]["lines"]
    assert progress["message"] == "step 2 loss 1.50"  # the loss line, not the bar drawn after it
    assert any(e["data"]["lines"][-1] == "2/2 (100%)" for e in events if e["event"] == "progress")  # the bar as its counts
    done = jobs_client.get(f"/v1/jobs/{job['id']}", headers=auth["customer"]).json()
    assert (done["status"], done["score"], done["script"]) == ("succeeded", 0.75, "house script")
    assert done["model_id"] == events[-1]["data"]["model_id"]
    assert "; score 0.75 on the validation share (lower is better); " in events[-1]["message"]  # a loss: which way is better
    # Beside the untrained base model's score on the same validation rows, in the job and its finished event alike.
    assert (done["base_score"], done["improvement"]) == (1.0, 0.25) and done["base_comparison"].startswith("better than the untrained")
    assert {k: events[-1]["data"][k] for k in ("base_score", "improvement", "base_comparison")} == {
        k: done[k] for k in ("base_score", "improvement", "base_comparison")}  # fmt: skip

    started = next(e["id"] for e in events if e["event"] == "started")
    resumed = sse_events(jobs_client, auth["customer"], job["id"], last_event_id=started)
    assert [e["id"] for e in resumed] == [e["id"] for e in events if e["id"] > started]
    assert sse_events(jobs_client, auth["customer"], job["id"], last_event_id=events[-1]["id"]) == []  # ended: nothing more


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"task_type": "poetry"}, "task_type", "is not one of"),
        ({"base_model": "gpt-99"}, "base_model", "not on the operator's list"),
        ({"base_model": "trainarena:tiny_sd"}, "base_model", "is a built-in image model, not a text model"),
        # The tiers with their seconds: a customer reads the budget it may ask for nowhere else.
        ({"budget_tier": "huge"}, "budget_tier", "'huge' is not one of the tiers (jobs.budget_tiers): small (60 s), medium (600 s), large (3600 s)"),
        ({"validation_share": 0.9}, "validation_share", "between 0 and 0.5 (jobs.validation_share_max)"),
        # A share so small it holds out one row: the score on it says nothing (and the card read "0%").
        ({"validation_share": 1e-300}, "validation_share", "holds out 1 row of 30, fewer than 5 (jobs.validation_rows_min)"),
        ({"field_mapping": {"field_instruction": "question", "field_output": "a"}}, "field_mapping", "missing column 'question'"),
        ({"field_mapping": {"field_instruction": "q", "field_output": "a", "source": "/etc/passwd"}}, "field_mapping", "without 'source'"),
        ({"file_id": "file-000"}, "file_id", "no file file-000"),
        # Chosen and rejected from one column: every row the same text twice, every model scores ln 2.
        ({"task_type": "dpo", "field_mapping": {"field_prompt": "q", "field_chosen": "a", "field_rejected": "a"}}, "field_mapping",
         "'field_chosen' and 'field_rejected' both name the column 'a'"),
        # The answer column as the prompt: the hidden answer printed in its own prompt scores copying.
        ({"field_mapping": {"field_instruction": "q", "field_output": "q"}}, "field_mapping",
         "'field_output' and 'field_instruction' both name the column 'q'"),
    ],
)
def test_every_field_is_checked_at_creation(jobs_client: TestClient, auth: dict, api_settings: Settings, change: dict, field: str,
                                            words: str) -> None:  # fmt: skip
    body = {**job_body(api_settings, upload(jobs_client, auth["customer"])), **change}
    response = jobs_client.post("/v1/jobs", headers=auth["customer"], json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == field and words in error["message"], error
    assert jobs_client.get("/v1/jobs", headers=auth["customer"]).json()["data"] == []


def test_a_job_cannot_use_another_customers_or_a_deleted_file(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    theirs = upload(jobs_client, auth["other"])
    refused = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, theirs))
    assert refused.status_code == 422 and refused.json()["error"]["message"].startswith(f"no file {theirs}")
    mine = upload(jobs_client, auth["customer"])
    jobs_client.delete(f"/v1/files/{mine}", headers=auth["customer"])
    assert jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, mine)).status_code == 422


def test_cancel_a_queued_job_and_keep_others_out(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    job_id = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, upload(jobs_client, auth["customer"]))).json()["id"]
    for method, path in (("get", ""), ("post", "/cancel"), ("get", "/events")):
        response = getattr(jobs_client, method)(f"/v1/jobs/{job_id}{path}", headers=auth["other"])
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert jobs_client.get("/v1/jobs", headers=auth["other"]).json()["data"] == []
    assert [j["id"] for j in jobs_client.get("/v1/jobs", headers=auth["operator"]).json()["data"]] == [job_id]
    assert jobs_client.post("/v1/jobs", headers=auth["competitor"], json={}).status_code == 403

    cancelled = jobs_client.post(f"/v1/jobs/{job_id}/cancel", headers=auth["customer"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert [e["event"] for e in sse_events(jobs_client, auth["customer"], job_id)] == ["queued", "cancelled"]
    again = jobs_client.post(f"/v1/jobs/{job_id}/cancel", headers=auth["customer"])
    assert again.status_code == 409 and "has ended (cancelled)" in again.json()["error"]["message"]


class UntilStopped:
    """Runs until its try is asked to stop (the worker stopping): the job is then queued again."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        self.started.set()
        stop = current_stop_event()
        assert stop is not None and stop.wait(30)
        return RunReport(RunStatus.FAILED, time.time(), time.time(), failure_reason="stopped")


def copies_left(settings: Settings, store: Store, job_id: str) -> list[Path]:
    with store.session() as session:
        return [path for path in job_copies(session, settings, session.get_one(Job, job_id)) if path.is_dir()]


def test_cancelling_a_job_queued_again_removes_its_copies(jobs_client: TestClient, auth: dict, api_settings: Settings,
                                                          api_store: Store) -> None:  # fmt: skip
    job_id = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, upload(jobs_client, auth["customer"]))).json()["id"]
    executor = UntilStopped()
    worker = JobWorker(api_settings, store=api_store, executor=executor)
    worker.start()
    try:
        assert executor.started.wait(20)
        assert copies_left(api_settings, api_store, job_id)  # its task was prepared for the try
    finally:
        worker.stop()  # queued again: the copies stay for its next try
    assert jobs_client.get(f"/v1/jobs/{job_id}", headers=auth["customer"]).json()["status"] == "queued"
    assert copies_left(api_settings, api_store, job_id)
    cancelled = jobs_client.post(f"/v1/jobs/{job_id}/cancel", headers=auth["customer"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert copies_left(api_settings, api_store, job_id) == []


def test_a_job_keeps_its_record_when_its_file_is_deleted(working_client: TestClient, auth: dict, api_settings: Settings) -> None:
    jobs_client = working_client
    file_id = upload(jobs_client, auth["customer"])
    job_id = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, file_id)).json()["id"]
    assert sse_events(jobs_client, auth["customer"], job_id)[-1]["event"] == "finished"
    assert jobs_client.delete(f"/v1/files/{file_id}", headers=auth["customer"]).status_code == 200
    job = jobs_client.get(f"/v1/jobs/{job_id}", headers=auth["customer"]).json()
    assert (job["status"], job["file_id"]) == ("succeeded", file_id) and job["model_id"] is not None


def test_a_customer_reads_its_own_jobs_run_and_no_one_elses(working_client: TestClient, auth: dict, api_settings: Settings) -> None:
    """The run endpoints hide job runs from competitors and refused customer keys, so a customer could
    not see its own job's tries, timings or stderr (QA): GET /v1/jobs/{id}/run shows them to the owner
    (and operators), without the platform's paths and hosts."""
    jobs_client = working_client
    job_id = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, upload(jobs_client, auth["customer"]),
                                                                                validation_share=0.2)).json()["id"]  # fmt: skip
    assert sse_events(jobs_client, auth["customer"], job_id)[-1]["event"] == "finished"
    job = jobs_client.get(f"/v1/jobs/{job_id}", headers=auth["customer"]).json()

    run = jobs_client.get(f"/v1/jobs/{job_id}/run", headers=auth["customer"])
    assert run.status_code == 200, run.text
    body = run.json()
    assert (body["run_id"], body["origin"], body["status"], body["attempts"]) == (job["run_id"], "job", "succeeded", 1)
    assert body["competitor"] == job["script"] == "house script" and body["not_scored"] is None
    assert (body["score"], body["direction"], body["artifact_digest"]) == (0.75, "lower", "ab" * 32)
    assert body["started_at"] and body["finished_at"] and body["wall_seconds"] is not None
    assert [(a["number"], a["status"], a["counts"]) for a in body["attempt_history"]] == [(1, "succeeded", True)]
    operator_only = {"log_path", "artifact_path", "snapshot_path", "stderr_tail_from", "references", "driver", "tournament"}
    assert operator_only.isdisjoint(body) and "driver" not in body["attempt_history"][0]
    assert jobs_client.get(f"/v1/jobs/{job_id}/run", headers=auth["operator"]).json() == body
    # The job's model names the base model as the job does (the customer named it: a path here), in both views.
    model = jobs_client.get(f"/v1/models/{job['model_id']}", headers=auth["customer"]).json()
    listed = jobs_client.get("/v1/models", headers=auth["customer"]).json()["data"]
    assert model["base_model"] == job["base_model"] == body["base_model"] and [m["base_model"] for m in listed] == [job["base_model"]]

    refused = jobs_client.get(f"/v1/jobs/{job_id}/run", headers=auth["other"])
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert jobs_client.get(f"/v1/jobs/{job_id}/run", headers=auth["competitor"]).status_code == 403
    assert jobs_client.get(f"/v1/runs/{job['run_id']}", headers=auth["customer"]).status_code == 403  # the run routes stay competitors'


def test_a_customer_reads_its_jobs_whole_log_and_no_one_elses(api_settings: Settings, api_store: Store, auth: dict) -> None:
    """The run's 20-line stderr tail was all a customer could read of its job's log: the log route
    gives the last api.log_tail_lines lines, the whole file, or stdout, to the job's owner alone."""
    lines = [f"step {step} loss {1 / (step + 1):.3f}" for step in range(500)]
    worker = JobWorker(api_settings, store=api_store, executor=LoggingExecutor(lines))
    with TestClient(create_app(api_settings, store=api_store, services=(worker,))) as client:
        job_id = client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, upload(client, auth["customer"]))).json()["id"]
        assert sse_events(client, auth["customer"], job_id)[-1]["event"] == "finished"
        tail = client.get(f"/v1/jobs/{job_id}/run/logs", headers=auth["customer"])
        whole = client.get(f"/v1/jobs/{job_id}/run/logs?full=true", headers=auth["customer"])
        stdout = client.get(f"/v1/jobs/{job_id}/run/logs?stream=stdout", headers=auth["customer"])
        other = client.get(f"/v1/jobs/{job_id}/run/logs", headers=auth["other"])
        competitor = client.get(f"/v1/jobs/{job_id}/run/logs", headers=auth["competitor"])
    assert tail.headers["content-type"].startswith("text/plain"), tail.text
    assert tail.text.splitlines() == lines[-api_settings.api.log_tail_lines:] and whole.text.splitlines() == lines
    assert stdout.status_code == 404 and "has no stdout.log" in stdout.json()["error"]["message"]
    assert other.status_code == 404 and competitor.status_code == 403


class LoggingExecutor(QuickExecutor):
    """As QuickExecutor, its stderr log holding ``lines`` and no stdout log."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        report = super().run_task(competitor, task, run_dir, run_name)
        (run_dir / "logs" / "stderr.log").write_text("".join(f"{line}\n" for line in self._lines))
        (run_dir / "logs" / "stdout.log").unlink()
        return report


class ServerPathExecutor:
    """Fails as a platform text that names the run's folder on the server would (an OSError's, a traceback's)."""

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        (run_dir / "logs").mkdir(parents=True)
        (run_dir / "logs" / "stderr.log").write_text(f"writing {run_dir}/output/model.safetensors\n")
        return RunReport(RunStatus.INVALID, time.time(), time.time(), log_path=run_dir / "logs",
                         failure_reason=f"artifact: the output could not be read ({run_dir}/output/model.safetensors: Permission denied)")  # fmt: skip


def test_a_customer_reads_its_jobs_failure_without_the_servers_paths(api_settings: Settings, api_store: Store, auth: dict) -> None:
    """The job, its events and its run name the file as the script saw it; an operator reads the whole text."""
    worker = JobWorker(api_settings, store=api_store, executor=ServerPathExecutor())
    with TestClient(create_app(api_settings, store=api_store, services=(worker,))) as client:
        job_id = client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, upload(client, auth["customer"]))).json()["id"]
        events = sse_events(client, auth["customer"], job_id)
        seen = [client.get(f"/v1/jobs/{job_id}{tail}", headers=auth["customer"]) for tail in ("", "/run", "/run/logs")]
        seen.append(client.get("/v1/jobs", headers=auth["customer"]))
        operator = client.get(f"/v1/jobs/{job_id}", headers=auth["operator"]).json()
    shown = "artifact: the output could not be read (/output/model.safetensors: Permission denied)"
    assert events[-1]["event"] == "failed" and shown in events[-1]["message"]
    assert seen[0].json()["failure_reason"] == shown and seen[1].json()["stderr_tail"] == "writing /output/model.safetensors"
    assert seen[2].text == "writing /output/model.safetensors\n"  # the whole log, as the tail hides paths
    assert all(str(api_settings.data_dir) not in text for text in [*(r.text for r in seen), json.dumps(events)])
    assert str(api_settings.work_dir / "jobs" / job_id) in operator["failure_reason"]


def test_a_job_that_kept_no_validation_rows_shows_its_run_unscored_and_why(working_client: TestClient, auth: dict,
                                                                          api_settings: Settings) -> None:  # fmt: skip
    job_id = working_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, upload(working_client, auth["customer"]))).json()["id"]
    assert sse_events(working_client, auth["customer"], job_id)[-1]["event"] == "finished"
    run = working_client.get(f"/v1/jobs/{job_id}/run", headers=auth["customer"]).json()
    assert (run["score"], run["direction"], [a["score"] for a in run["attempt_history"]]) == (None, None, [None])
    assert run["not_scored"].startswith("not scored: the job kept no validation rows")


def test_a_job_not_started_has_no_run(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    job_id = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, upload(jobs_client, auth["customer"]))).json()["id"]
    response = jobs_client.get(f"/v1/jobs/{job_id}/run", headers=auth["customer"])
    assert response.status_code == 404 and "has no run yet" in response.json()["error"]["message"]


def test_a_running_job_whose_worker_stopped_beating_says_it_waits(jobs_client: TestClient, auth: dict, api_settings: Settings,
                                                                  api_store: Store) -> None:
    job_id = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, upload(jobs_client, auth["customer"]))).json()["id"]
    with api_store.transaction() as session:  # a worker took it, then died: no heartbeat since
        job = session.get_one(Job, job_id)
        job.status, job.worker_id = JobStatus.RUNNING, "host-1"
        job.heartbeat_at = database_now(session) - timedelta(seconds=10 * api_settings.jobs.stale_seconds)
    shown = jobs_client.get(f"/v1/jobs/{job_id}", headers=auth["customer"]).json()
    assert shown["status"] == "running" and shown["waiting_reason"].startswith("its worker stopped beating at ")
    assert shown["waiting_reason"].endswith("a running `trainarena serve` or `trainarena api` queues it again")
