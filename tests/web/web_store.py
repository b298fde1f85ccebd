"""The dashboard tests' store: the CLI tests' finished tournament (week-1), a second one won by a
challenger in the boss round (week-2), and a third one running (week-3), all played by a scripted
executor; and the visible words of a page."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from html import unescape
from pathlib import Path

from cli_store import LONG_NAME, ScriptedExecutor, build_finished_store, fake_task
from fastapi.testclient import TestClient
from httpx import Response

from trainarena.contract import Direction
from trainarena.orchestrator import create_tournament, drive
from trainarena.runs import RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.store import Store, add_competitor, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, Job, JobEvent, RegisteredModel, UploadedFile
from trainarena.tasks.base import Evaluation

CHALLENGER = "challenger"


class ChallengerExecutor(ScriptedExecutor):
    """The scripted outcomes, plus a challenger whose loss is half the honest baseline's on every task:
    it takes the boss round from the reigning champion by a clear margin."""

    def execute(self, request: RunRequest) -> RunReport:
        if request.competitor.name != CHALLENGER:
            return super().execute(request)
        report = super().execute(replace(request, competitor=replace(request.competitor, name=LONG_NAME)))
        assert report.evaluation is not None
        return replace(report, evaluation=Evaluation(report.evaluation.score / 2, Direction.LOWER))


@dataclass(frozen=True)
class DashboardStore:
    data_dir: Path
    finished_id: int  # week-1: no defender, the honest baseline wins
    boss_id: int  # week-2: three entrants (a bye), the challenger beats the baseline in the boss round
    running_id: int  # week-3: its first round created, one run done

    def drive_running(self, store: Store, steps: int = 1) -> None:
        """Play ``steps`` more runs of the running tournament (what a serve process does meanwhile)."""
        _drive(store, self.running_id, max_steps=steps)


def _drive(store: Store, tournament_id: int, **options: object) -> object:
    settings = Settings()
    return drive(store, tournament_id, task_source=fake_task, executor=ChallengerExecutor(), rules=settings.rules,
                 weight_rules=settings.weights, work_dir=settings.work_dir, **options)  # fmt: skip


def build_dashboard_store(data_dir: Path) -> DashboardStore:
    """The three tournaments in ``data_dir`` (``TRAINARENA_DATA_DIR`` must name it)."""
    finished = build_finished_store(data_dir)
    with open_store(Settings()) as store:
        with store.transaction() as session:
            add_competitor(session, name=CHALLENGER, repo_url="https://github.com/example/challenger.git", commit="c" * 40,
                           tree_hash=CHALLENGER, source_digest=CHALLENGER, entrypoint="train.py")  # fmt: skip
            boss_id = create_tournament(session, name="week-2", kind="text", seed=2, entrants=[CHALLENGER, "crasher", "slowpoke"]).id
        assert _drive(store, boss_id) is not None
        with store.transaction() as session:
            running_id = create_tournament(session, name="week-3", kind="text", seed=3,
                                           entrants=[LONG_NAME, "crasher", "slowpoke", "hostile"]).id  # fmt: skip
        assert _drive(store, running_id, max_steps=2) is None
    return DashboardStore(data_dir, finished.tournament_id, boss_id, running_id)


def customer_with_a_job(name: str) -> str:
    """A customer key with one job (two events) and one model; its secret."""
    with open_store(Settings()) as store, store.transaction() as session:
        key = create_key(session, name, ApiRole.CUSTOMER)
        owner = key.row.id
        session.add(UploadedFile(id=f"file-{name}", owner_key_id=owner, filename="data.jsonl", kind="text", format="jsonl",
                                 size_bytes=10, sha256="0" * 64, rows=30, path="/nowhere"))  # fmt: skip
        session.flush()
        job = Job(id=f"job-{name}", owner_key_id=owner, file_id=f"file-{name}", task_type="instruct", base_model="trainarena:tiny_llama",
                  budget_tier="small", budget_seconds=60.0, status="succeeded", score=1.25, model_id=f"model-{name}")  # fmt: skip
        job.events = [JobEvent(kind="queued", message="queued behind 0 jobs"), JobEvent(kind="finished", message=f"model model-{name} registered")]
        session.add(job)
        session.flush()
        session.add(RegisteredModel(id=f"model-{name}", owner_key_id=owner, source="job", job_id=job.id, task_type="instruct",
                                    base_model="trainarena:tiny_llama", dataset_digest="0" * 64, path="/nowhere", digest="1" * 64))  # fmt: skip
        return key.secret


def text_of(html: str) -> str:
    """The page's visible words, one space apart (tags, scripts and styles removed)."""
    html = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def form_token(html: str) -> str:
    """The double-submit token of a page's sign-in or sign-out form, as a browser would post it."""
    found = re.search(r'<input type="hidden" name="form_token" value="([^"]+)">', html)
    assert found, "the page has no form token"
    return found.group(1)


def sign_in(client: TestClient, secret: str, **options: object) -> Response:
    """Post the sign-in form as a browser would: with the token of the page ``GET /signin`` served."""
    return client.post("/signin", data={"key": secret, "form_token": form_token(client.get("/signin").text)}, **options)
