"""Customers' pages: signing in with an API key, and each key seeing its own jobs and models only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from web_store import text_of

from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, Job, JobEvent, RegisteredModel, UploadedFile


def _customer_with_a_job(name: str) -> str:
    """A customer key with one job (two events) and one model; its secret."""
    with open_store(Settings()) as store, store.transaction() as session:
        key = create_key(session, name, ApiRole.CUSTOMER)
        owner = key.row.id
        session.add(UploadedFile(id=f"file-{name}", owner_key_id=owner, filename="data.jsonl", kind="text", format="jsonl",
                                 size_bytes=10, sha256="0" * 64, rows=30, path="/nowhere"))  # fmt: skip
        session.flush()
        job = Job(id=f"job-{name}", owner_key_id=owner, file_id=f"file-{name}", task_type="instruct", base_model="trainarena:tiny_llama",
                  budget_tier="small", budget_seconds=60.0, status="succeeded", score=1.25)  # fmt: skip
        job.events = [JobEvent(kind="queued", message="queued behind 0 jobs"), JobEvent(kind="finished", message=f"model model-{name} registered")]
        session.add(job)
        session.flush()
        session.add(RegisteredModel(id=f"model-{name}", owner_key_id=owner, source="job", job_id=job.id, task_type="instruct",
                                    base_model="trainarena:tiny_llama", dataset_digest="0" * 64, path="/nowhere", digest="1" * 64))  # fmt: skip
        return key.secret


def test_a_customer_signs_in_and_sees_its_own_jobs_and_models_only(client: TestClient) -> None:
    alice, _bob = _customer_with_a_job("alice"), _customer_with_a_job("bob")
    assert client.get("/account", follow_redirects=False).headers["location"] == "/signin"
    refused = client.post("/signin", data={"key": "ta_not-a-key"})
    assert refused.status_code == 401 and "unknown or revoked" in refused.text
    signed_in = client.post("/signin", data={"key": alice}, follow_redirects=False)
    assert signed_in.status_code == 303 and "httponly" in signed_in.headers["set-cookie"].lower()
    words = text_of(client.get("/account").text)
    assert "Signed in as alice" in words and "job-alice instruct trainarena:tiny_llama succeeded 1.2500" in words
    assert "model-alice job instruct" in words and "job-bob" not in words and "model-bob" not in words
    home = text_of(client.get("/").text)
    assert "Your recent jobs job-alice instruct succeeded" in home and "job-bob" not in home
    job = text_of(client.get("/account/jobs/job-alice").text)
    assert "queued queued behind 0 jobs" in job and "finished model model-alice registered" in job
    assert client.get("/account/jobs/job-bob").status_code == 404  # another customer's job is not found
    assert client.get("/account/jobs/job-bob/live").status_code == 404
    client.post("/signout")
    assert client.get("/account", follow_redirects=False).status_code == 303
    assert "Your recent jobs" not in client.get("/").text


def test_a_running_jobs_page_follows_its_events(client: TestClient) -> None:
    secret = _customer_with_a_job("carol")
    with open_store(Settings()) as store, store.transaction() as session:
        job = session.get_one(Job, "job-carol")
        job.status, job.events = "running", job.events[:1]
    client.post("/signin", data={"key": secret})
    page = client.get("/account/jobs/job-carol")
    assert 'data-live="/account/jobs/job-carol/live" data-live-state="running"' in page.text
    with open_store(Settings()) as store, store.transaction() as session:
        session.add(JobEvent(job_id="job-carol", kind="progress", message="step 10 loss 2.1"))
    live = client.get("/account/jobs/job-carol/live")
    assert live.headers["X-Live"] == "running" and "progress step 10 loss 2.1" in text_of(live.text)
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(Job, "job-carol").status = "succeeded"
    assert client.get("/account/jobs/job-carol/live").headers["X-Live"] == "idle"


def test_a_signed_in_customer_downloads_its_model_and_only_its_own(client: TestClient, tmp_path) -> None:  # noqa: ANN001
    import io
    import tarfile

    alice, _bob = _customer_with_a_job("alice"), _customer_with_a_job("bob")
    folder = tmp_path / "model-alice"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlibrary_name: peft\n---\n")
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(RegisteredModel, "model-alice").path = str(folder)
    assert client.get("/account/models/model-alice/download", follow_redirects=False).status_code == 303  # signed out
    client.post("/signin", data={"key": alice})
    assert 'href="/account/models/model-alice/download"' in client.get("/account").text
    download = client.get("/account/models/model-alice/download")
    assert download.status_code == 200 and download.headers["content-disposition"] == 'attachment; filename="model-alice.tar"'
    with tarfile.open(fileobj=io.BytesIO(download.content)) as tar:
        assert tar.getnames() == ["model-alice/README.md"]
    assert client.get("/account/models/model-bob/download").status_code == 404


def test_the_sign_in_cookie_is_secure_over_https_or_when_the_settings_say_so(client: TestClient) -> None:
    from trainarena.api import create_app

    alice = _customer_with_a_job("alice")

    def cookie(test_client: TestClient, base: str) -> str:
        answer = test_client.post(f"{base}/signin", data={"key": alice}, follow_redirects=False)
        assert answer.status_code == 303
        return answer.headers["set-cookie"].lower()

    assert "secure" not in cookie(client, "http://testserver") and "secure" in cookie(client, "https://testserver")
    behind_proxy = Settings().model_copy(update={"dashboard": Settings().dashboard.model_copy(update={"secure_cookie": True})})
    with open_store(behind_proxy) as store, TestClient(create_app(behind_proxy, store=store)) as proxied:
        assert "secure" in cookie(proxied, "http://testserver")  # TLS ended at the proxy: the API sees http
