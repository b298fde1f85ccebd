"""A customer's path as the README shows it, on SQLite and on PostgreSQL: `trainarena api` started as a
process on a loopback port, keys made with `trainarena keys create`, then over HTTP only: upload a
dataset, create a job, follow its server-sent events to the end, download the model as a tar stream,
load it with transformers (and PEFT when it is an adapter) and generate. The job is real: the house
script trains the offline tiny model in the bubblewrap sandbox."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROWS = 120
BUDGET_SECONDS = 20
JOB_TIMEOUT_SECONDS = 600

pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e,
    pytest.mark.sandbox,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="the job's sandbox needs bubblewrap"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cli(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "trainarena.cli", *args, "--json"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.fixture(params=["sqlite", "postgresql"])
def service_env(request: pytest.FixtureRequest, tmp_path: Path, assets) -> dict[str, str]:  # noqa: ANN001
    data = tmp_path / "data"
    # The session's built assets where the service looks for them, so `trainarena:tiny_llama` (the
    # README's base model) resolves without building them again.
    (data / "cache").mkdir(parents=True)
    (data / "cache" / "assets").symlink_to(assets.tiny_llama.parents[1], target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINARENA_")}
    env |= {
        "TRAINARENA_DATA_DIR": str(data),
        "TRAINARENA_JOBS__BASE_MODELS": json.dumps([str(assets.tiny_llama), "trainarena:tiny_llama"]),
        "TRAINARENA_JOBS__BUDGET_TIERS": json.dumps({"quick": BUDGET_SECONDS}),
        "TRAINARENA_JOBS__DEFAULT_TIER": "quick",
        "TRAINARENA_JOBS__POLL_SECONDS": "0.2",
        "TRAINARENA_API__SSE_POLL_SECONDS": "0.2",
    }
    if request.param == "postgresql":
        env["TRAINARENA_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return env


@pytest.fixture
def service(service_env: dict[str, str]) -> Iterator[str]:
    """`trainarena api` on a free loopback port; its base URL. Stopped with SIGTERM, as an operator would:
    uvicorn finishes the requests in flight, runs the app's shutdown (the job worker stops), then exits
    by the signal it caught (status -15), as it documents."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "trainarena.cli", "api", "--port", str(port)], env=service_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, server.stdout.read() if server.stdout else ""
        time.sleep(0.3)
    try:
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
            raise
        assert server.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in output, output[-3000:]


def _events(base: str, job_id: str, headers: dict[str, str]) -> list[dict]:
    """The job's event stream read to its end (the stream closes after the final event)."""
    events = []
    with httpx.stream("GET", f"{base}/v1/jobs/{job_id}/events", headers=headers, timeout=JOB_TIMEOUT_SECONDS) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    return events


def test_customer_trains_downloads_and_generates(service: str, service_env: dict[str, str], assets, tmp_path: Path) -> None:  # noqa: ANN001
    customer = _cli(service_env, "keys", "create", "--role", "customer", "acme")["key"]
    other = _cli(service_env, "keys", "create", "--role", "customer", "globex")["key"]
    headers = {"Authorization": f"Bearer {customer}"}

    rows = "\n".join(assets.datasets["units"].read_text().splitlines()[:ROWS]).encode()
    uploaded = httpx.post(f"{service}/v1/files", headers=headers, files={"file": ("units.jsonl", rows)}, timeout=60)
    assert uploaded.status_code == 201, uploaded.text
    body = {"task_type": "instruct", "base_model": str(assets.tiny_llama), "file_id": uploaded.json()["id"],
            "field_mapping": assets.dataset_fields["units"], "budget_tier": "quick", "validation_share": 0.2}  # fmt: skip
    created = httpx.post(f"{service}/v1/jobs", headers=headers, json=body, timeout=60)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]

    events = _events(service, job_id, headers)
    kinds = [event["kind"] for event in events]
    assert kinds[0] == "queued" and "started" in kinds and kinds[-1] == "finished", events[-3:]
    assert "progress" in kinds  # the house script's own log lines, while it trained
    job = httpx.get(f"{service}/v1/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "succeeded" and job["script"] == "house script" and job["model_id"]
    assert job["score"] is not None and job["score"] > 0  # eval loss on the held-out 20%
    model = httpx.get(f"{service}/v1/models/{job['model_id']}", headers=headers).json()
    assert (model["job_id"], model["score"], model["source"]) == (job_id, job["score"], "job")
    assert model["measurement"]["validation_share"] == 0.2
    # The untrained tiny model scored on the same held-out rows: the job's score has something to be read against.
    assert job["base_score"] is not None and job["improvement"] == pytest.approx(job["base_score"] - job["score"])
    assert (model["base_score"], model["base_comparison"]) == (job["base_score"], job["base_comparison"])
    hidden = httpx.get(f"{service}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {other}"})
    assert hidden.status_code == 404  # another customer cannot tell the job exists

    folder = tmp_path / "downloaded"
    with httpx.stream("GET", f"{service}/v1/models/{job['model_id']}/download", headers=headers, timeout=120) as download:
        assert download.status_code == 200
        archive = io.BytesIO(b"".join(download.iter_bytes()))
    with tarfile.open(fileobj=archive) as tar:
        tar.extractall(folder, filter="data")
    [model_dir] = {path.parent for path in folder.rglob("README.md")}
    card = (model_dir / "README.md").read_text()
    assert card.startswith("---\n") and "trainarena" in card and "instruct" in card

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if (model_dir / "adapter_config.json").is_file():
        from peft import PeftModel

        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(assets.tiny_llama), model_dir)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True)
    prompt = tokenizer("How many cm in 3 m?", return_tensors="pt")
    generated = model.generate(**prompt, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id or 0)
    assert generated.shape[1] > prompt["input_ids"].shape[1]


def _readme_python() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## For customers"):]
    return section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python\n") + 10)]


@pytest.mark.parametrize("service_env", ["sqlite"], indirect=True)
def test_the_readmes_python_path_runs_as_written(service: str, service_env: dict[str, str], assets, tmp_path: Path) -> None:  # noqa: ANN001
    """The README's httpx example, run as written (its key, its rows.jsonl with columns q and a, its
    base model `trainarena:tiny_llama`, the default budget tier) against the service."""
    key = _cli(service_env, "keys", "create", "--role", "customer", "readme")["key"]
    rows = [json.loads(line) for line in assets.datasets["units"].read_text().splitlines()[:ROWS]]
    workdir = tmp_path / "customer"
    workdir.mkdir()
    (workdir / "rows.jsonl").write_text("".join(json.dumps({"q": f"{r['instruction']} {r['input']}", "a": r["output"]}) + "\n" for r in rows))
    code = _readme_python().replace("http://127.0.0.1:8000", service).replace('KEY = "ta_..."', f"KEY = {key!r}")
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True,
                          timeout=JOB_TIMEOUT_SECONDS, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "finished" in done.stdout.splitlines()[-1]
    [card] = (workdir / "my-model").glob("*/README.md")
    assert (card.parent / "config.json").is_file() or (card.parent / "adapter_config.json").is_file()
