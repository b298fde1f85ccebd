"""Every link the dashboard renders leads somewhere: crawled from the home page as a visitor, a
customer and an operator, each page and asset it links to answers without an error; a customer's
crawl never reaches another customer's job or model; and no page but an operator's names the data dir."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from web_store import DashboardStore, customer_with_a_job, sign_in

from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, Job, JobEvent, RegisteredModel, RunAttempt

LINK = re.compile(r'(?:href|src|action|data-live)="([^"]+)"')
ORIGIN = "http://testserver"


def crawl(client: TestClient) -> dict[str, Response]:
    """Each same-site address reachable from ``/`` by GET (forms' actions are posts: listed, not followed),
    with what it answered."""
    answers: dict[str, Response] = {}
    todo = ["/"]
    while todo:
        path = todo.pop()
        if path in answers:
            continue
        response = client.get(path, follow_redirects=False)
        answers[path] = response
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        for link in LINK.findall(response.text):
            target = urlsplit(urljoin(ORIGIN + path, link.replace("&amp;", "&")))
            if f"{target.scheme}://{target.netloc}" == ORIGIN and f'action="{link}"' not in response.text:
                todo.append(target.path + (f"?{target.query}" if target.query else ""))
    return answers


def _with_server_paths(data_dir: Path) -> None:
    """A run's failure and a job's failure and event naming files under the data dir, as the platform's
    texts may (an OSError's, a traceback's)."""
    with open_store(Settings()) as store, store.transaction() as session:
        attempt = session.scalars(select(RunAttempt).where(RunAttempt.failure_reason.is_not(None))).first()
        assert attempt is not None
        attempt.failure_reason = f"artifact: the output could not be read ({data_dir}/runs/tournament-1/x/output/w.safetensors: EIO)"
        for name in ("alice", "bob"):
            job = session.get_one(Job, f"job-{name}")
            job.failure_reason = f"task: {data_dir}/uploads/file-{name}/data.jsonl: not valid JSON"
            job.events.append(JobEvent(kind="progress", message=f"reading {data_dir}/uploads/file-{name}/data.jsonl"))


def _with_model_folders(tmp_path: Path, names: list[str]) -> None:
    """Give each customer's model a folder, so its download link has files to send."""
    with open_store(Settings()) as store, store.transaction() as session:
        for name in names:
            folder = tmp_path / f"model-{name}"
            folder.mkdir()
            (folder / "README.md").write_text("---\nlibrary_name: peft\n---\n")
            session.get_one(RegisteredModel, f"model-{name}").path = str(folder)


@pytest.mark.parametrize("visitor", ["nobody", "alice", "operator"])
def test_every_link_a_page_renders_answers_without_an_error(client: TestClient, dashboard_store: DashboardStore, tmp_path: Path,
                                                             visitor: str) -> None:  # fmt: skip
    secrets = {"alice": customer_with_a_job("alice"), "bob": customer_with_a_job("bob")}
    _with_model_folders(tmp_path, ["alice", "bob"])
    with open_store(Settings()) as store, store.transaction() as session:
        secrets["operator"] = create_key(session, "ops", ApiRole.OPERATOR).secret
    _with_server_paths(dashboard_store.data_dir)
    if visitor != "nobody":
        sign_in(client, secrets[visitor])
    answers = crawl(client)
    broken = {path: response.status_code for path, response in answers.items() if response.status_code >= 400}
    assert not broken, f"links that answer an error: {broken}"
    # The crawl reached every kind of page, so a page that stops linking one is noticed here.
    for page in ("/tournaments/", "/runs/", "/competitors/", "/tasks/", "/static/", "/runs/1/logs/"):
        assert any(path.startswith(page) for path in answers), f"no page links {page}"
    reached = {path.removesuffix("/live") for path in answers if path.startswith("/account/")}  # a page and its live fragment
    expected = {
        "nobody": set(),
        "alice": {"/account/jobs/job-alice", "/account/models/model-alice/download"},
        "operator": {f"/account/{what}" for name in ("alice", "bob") for what in (f"jobs/job-{name}", f"models/model-{name}/download")},
    }
    assert reached == expected[visitor]
    # The server's paths are an operator's to read: no other visitor's page names the data dir.
    naming = {path for path, response in answers.items() if str(dashboard_store.data_dir) in response.text}
    assert bool(naming) == (visitor == "operator"), f"pages naming the data dir: {sorted(naming)}"
