"""`trainarena jobs list | show | cancel`: every customer's jobs as an operator sees them, as text
and as JSON; cancelling a queued job (and removing copies of its rows); an unknown job named."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.jobs import JobRequest, create_job
from trainarena.jobs.files import store_upload
from trainarena.jobs.uploads import UploadSink, check_file
from trainarena.settings import JobRules, Settings
from trainarena.store import open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, Job, JobStatus, database_now


def _queued_job(data_dir: Path, base_model: str = "trainarena:tiny_llama", customer: str = "acme") -> str:
    settings = Settings(data_dir=data_dir, jobs=JobRules(base_models=(base_model,)))
    sink = UploadSink(settings.uploads_dir, settings.api.upload_max_bytes, "qa.jsonl")
    sink.write("".join(json.dumps({"q": f"what is {i}", "a": str(i)}) + "\n" for i in range(30)).encode())
    sha = sink.finish()
    with open_store(settings) as store, store.transaction() as session:
        owner = create_key(session, customer, ApiRole.CUSTOMER).row.id
        upload = store_upload(session, settings, owner_key_id=owner, staging=sink.path, filename="qa.jsonl",
                              checked=check_file(sink.path, "qa.jsonl", "text", "jsonl", settings), sha256=sha, size=sink.size)  # fmt: skip
        request = JobRequest("instruct", base_model, upload.id, {"field_instruction": "q", "field_output": "a"})
        return create_job(session, settings, request, owner).id


def test_list_show_and_cancel(runner: CliRunner, tmp_path: Path) -> None:
    job_id = _queued_job(tmp_path / "data")
    listed = runner.invoke(app, ["jobs", "list"], env={"COLUMNS": "80"})
    assert listed.exit_code == 0 and job_id in listed.output and "queued" in listed.output
    shown = json.loads(runner.invoke(app, ["jobs", "show", job_id, "--json"]).output)
    assert (shown["status"], shown["task_type"], [e["kind"] for e in shown["events"]]) == ("queued", "instruct", ["queued"])
    cancelled = runner.invoke(app, ["jobs", "cancel", job_id])
    assert cancelled.exit_code == 0 and f"{job_id}: cancelled" in cancelled.output
    again = runner.invoke(app, ["jobs", "cancel", job_id, "--json"])
    assert again.exit_code == 1 and "has ended (cancelled)" in json.loads(again.output)["error"]
    assert json.loads(runner.invoke(app, ["jobs", "list", "--status", "queued", "--json"]).output)["jobs"] == []


def test_show_names_the_owner_key_by_its_name(runner: CliRunner, tmp_path: Path) -> None:
    """`jobs show` printed `owner key id 1`, a number no other command takes; `keys list` and `keys revoke`
    name keys by their name."""
    job_id = _queued_job(tmp_path / "data")
    shown = json.loads(runner.invoke(app, ["jobs", "show", job_id, "--json"]).output)
    key_id = shown["owner_key_id"]
    assert shown["owner_key_name"] == "acme" and isinstance(key_id, int)
    text = runner.invoke(app, ["jobs", "show", job_id], env={"COLUMNS": "80"}).output
    assert re.search(rf"^owner key +acme \(id {key_id}\)$", text, re.MULTILINE) and "owner key id" not in text, text
    assert json.loads(runner.invoke(app, ["jobs", "list", "--json"]).output)["jobs"][0]["owner_key_name"] == "acme"


def test_show_gives_the_budget_in_seconds_and_yes_or_no(runner: CliRunner, tmp_path: Path) -> None:
    """`jobs show` named the tier alone ("small"), the seconds it buys nowhere, though `jobs list` sends
    the reader there for the budget; and it printed Python's `False` (QA)."""
    job_id = _queued_job(tmp_path / "data")
    text = runner.invoke(app, ["jobs", "show", job_id], env={"COLUMNS": "80"}).output
    assert re.search(r"^budget tier +small$", text, re.MULTILINE) and re.search(r"^budget +60 s$", text, re.MULTILINE), text
    assert re.search(r"^cancel requested +no$", text, re.MULTILINE) and "False" not in text, text
    shown = json.loads(runner.invoke(app, ["jobs", "show", job_id, "--json"]).output)
    assert (shown["budget_tier"], shown["budget_seconds"], shown["cancel_requested"]) == ("small", 60.0, False)


def test_show_wraps_each_event_under_its_message_at_80_columns(runner: CliRunner, tmp_path: Path) -> None:
    """An event's line (time, kind, message) ran past 80 columns, so the terminal carried its message on
    at column 0 (QA): it wraps within the width, its continuation under the message."""
    job_id = _queued_job(tmp_path / "data")
    text = runner.invoke(app, ["jobs", "show", job_id], env={"COLUMNS": "80"}).output
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, text
    queued = next(i for i, line in enumerate(lines) if re.match(r"^  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d  queued +queued: ", line))
    message_column = lines[queued].index("queued: ")
    assert lines[queued + 1].startswith(" " * message_column) and lines[queued + 1].strip(), text
    joined = " ".join([lines[queued][message_column:], lines[queued + 1].strip()])
    assert joined == "queued: instruct on trainarena:tiny_llama, budget small (60 s)", text


def test_list_keeps_the_base_model_whole_at_80_columns(runner: CliRunner, tmp_path: Path) -> None:
    """The base model (a name typed back into POST /v1/jobs) was cut to 'trainar…' while the creation time
    kept its width; the help promised a tier column the table does not have."""
    job_id = _queued_job(tmp_path / "data")
    listed = runner.invoke(app, ["jobs", "list"], env={"COLUMNS": "80"})
    assert listed.exit_code == 0 and f"│ {job_id} │ queued │ instruct │ trainarena:tiny_llama │" in listed.output, listed.output
    assert max(len(line) for line in listed.output.splitlines()) <= 80 and "left out at this width: created" in listed.output
    wide = runner.invoke(app, ["jobs", "list"], env={"COLUMNS": "120"})
    assert "┃ created     ┃" in wide.output and "left out" not in wide.output
    described = runner.invoke(app, ["jobs", "--help"], env={"COLUMNS": "200"}).output
    assert "base model, score, when created (`jobs show` has the tier)" in described


def test_list_shows_the_creation_time_whole_or_leaves_it_out_before_the_ids_fold(runner: CliRunner, tmp_path: Path) -> None:
    """With a long local base model the id and the path folded onto several lines while `created` kept
    its width, and at some widths `created` showed cut ("12-02 …")."""
    model = tmp_path / "models" / "an-organisation" / "a-rather-long-local-base-model-folder"
    model.mkdir(parents=True)
    job_id = _queued_job(tmp_path / "data", str(model))
    assert len(str(model)) > 60
    listed = runner.invoke(app, ["jobs", "list"], env={"COLUMNS": "80"}).output
    assert f"│ {job_id} │ queued │ instruct │" in listed and "left out at this width: created" in listed, listed
    for width in range(80, 2 * len(str(model)) + 1):
        listed = runner.invoke(app, ["jobs", "list"], env={"COLUMNS": str(width)}).output
        assert max(len(line) for line in listed.splitlines()) <= width and "…" not in listed, listed
        shown_whole = re.search(r"│ \d\d-\d\d \d\d:\d\d │", listed) is not None
        assert shown_whole != ("left out at this width: created" in listed), listed
        if shown_whole:  # only where nothing folds: the base model on the id's line, whole
            assert str(model) in listed, listed


def test_cancel_removes_the_copies_of_an_attempt_the_job_made(runner: CliRunner, tmp_path: Path) -> None:
    """A job queued again after a try still has that try's copies of its file's rows; cancelling it ends
    it, and the cancel removes them (``jobs.copies``)."""
    job_id = _queued_job(tmp_path / "data")
    inputs = Settings(data_dir=tmp_path / "data").work_dir / "jobs" / job_id / "attempt-1" / "inputs"
    inputs.mkdir(parents=True)
    (inputs / "train.jsonl").write_text('{"q": "what is 1", "a": "1"}\n')
    cancelled = runner.invoke(app, ["jobs", "cancel", job_id])
    assert cancelled.exit_code == 0 and f"{job_id}: cancelled" in cancelled.output
    assert not inputs.exists() and inputs.parent.is_dir()  # the attempt's logs and output folder stay


def test_an_unknown_job_is_named(runner: CliRunner) -> None:
    result = runner.invoke(app, ["jobs", "show", "job-missing"])
    assert result.exit_code == 1 and "no job job-missing" in result.output


def _scored(data_dir: Path, job_id: str, task_type: str, score: float) -> None:
    with open_store(Settings(data_dir=data_dir)) as store, store.transaction() as session:
        job = session.get_one(Job, job_id)
        job.task_type, job.score = task_type, score


def test_the_score_column_says_which_way_is_better(runner: CliRunner, tmp_path: Path) -> None:
    """A job's score is a loss (lower is better) or a GRPO reward (higher), and the column said neither
    (QA): its heading carries the task type's arrow, or each score does where the jobs' types differ."""
    data = tmp_path / "data"
    loss_job = _queued_job(data)
    _scored(data, loss_job, "instruct", 1.25)
    listed = runner.invoke(app, ["jobs", "list"], env={"COLUMNS": "80"}).output
    assert "┃ score↓ ┃" in listed and "│   1.25 │" in listed, listed
    reward_job = _queued_job(data, customer="globex")
    _scored(data, reward_job, "grpo", 0.75)
    mixed = runner.invoke(app, ["jobs", "list"], env={"COLUMNS": "80"}).output
    assert "┃ score ┃" in mixed and "│ 1.25↓ │" in mixed and "│ 0.75↑ │" in mixed, mixed
    assert max(len(line) for line in mixed.splitlines()) <= 80


def _running(data_dir: Path, job_id: str, beat_seconds_ago: float) -> None:
    with open_store(Settings(data_dir=data_dir)) as store, store.transaction() as session:
        job = session.get_one(Job, job_id)
        job.status, job.worker_id = JobStatus.RUNNING, "host-1"
        job.heartbeat_at = database_now(session) - timedelta(seconds=beat_seconds_ago)


def test_show_says_a_running_job_whose_worker_stopped_beating_waits_for_a_service(runner: CliRunner, tmp_path: Path) -> None:
    """A job whose worker died showed `running` with no hint until a service ran again (QA): past
    jobs.stale_seconds (60 s by default) without a heartbeat, its waiting reason says so."""
    data = tmp_path / "data"
    job_id = _queued_job(data)
    _running(data, job_id, beat_seconds_ago=5)
    assert json.loads(runner.invoke(app, ["jobs", "show", job_id, "--json"]).output)["waiting_reason"] is None
    _running(data, job_id, beat_seconds_ago=600)
    shown = json.loads(runner.invoke(app, ["jobs", "show", job_id, "--json"]).output)
    assert shown["status"] == "running"
    assert re.fullmatch(r"its worker stopped beating at \S+( \S+)? UTC; a running `trainarena serve` or "
                        r"`trainarena api` queues it again", shown["waiting_reason"]), shown["waiting_reason"]
    text = " ".join(runner.invoke(app, ["jobs", "show", job_id], env={"COLUMNS": "80"}).output.split())
    assert "its worker stopped beating at" in text and "queues it again" in text, text
