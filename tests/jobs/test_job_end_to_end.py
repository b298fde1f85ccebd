"""A customer's job end to end, for real: the API with its job worker, a JSONL upload, a job the house
script trains on the tiny model in the bubblewrap sandbox, its events followed to the end, the
model registered under the customer's key with its validation score, then loaded and generating."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from trainarena.api import create_app
from trainarena.jobs import JobWorker
from trainarena.settings import JobRules, Settings
from trainarena.store import open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, RegisteredModel, Run, RunOrigin

ROWS = 120


@pytest.mark.sandbox
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
def test_a_job_trains_the_tiny_model_and_registers_it(tmp_path: Path, assets) -> None:  # noqa: ANN001
    rules = JobRules(base_models=(str(assets.tiny_llama),), budget_tiers={"test": 20.0}, default_tier="test",
                     poll_seconds=0.2, progress_seconds=1.0)  # fmt: skip
    settings = Settings(data_dir=tmp_path / "data", jobs=rules, api={"sse_poll_seconds": 0.2})
    lines = assets.datasets["units"].read_text().splitlines()[:ROWS]
    with open_store(settings) as store:
        with store.transaction() as session:
            headers = {"Authorization": f"Bearer {create_key(session, 'acme', ApiRole.CUSTOMER).secret}"}
        with TestClient(create_app(settings, store=store, services=(JobWorker(settings, store=store),))) as client:
            uploaded = client.post("/v1/files", headers=headers, files={"file": ("units.jsonl", "\n".join(lines).encode())})
            assert uploaded.status_code == 201, uploaded.text
            body = {"task_type": "instruct", "base_model": str(assets.tiny_llama), "file_id": uploaded.json()["id"],
                    "field_mapping": assets.dataset_fields["units"], "validation_share": 0.2, "seed": 1}  # fmt: skip
            created = client.post("/v1/jobs", headers=headers, json=body)
            assert created.status_code == 201, created.text
            job_id = created.json()["id"]
            with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as stream:
                events = [json.loads(line.removeprefix("data: ")) for line in stream.iter_lines() if line.startswith("data: ")]
            kinds = [event["kind"] for event in events]
            assert kinds[:2] == ["queued", "started"] and kinds[-1] == "finished", events[-1]
            assert "progress" in kinds  # the house script's own log lines
            job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        assert job["status"] == "succeeded" and job["script"] == "house script"
        assert job["score"] is not None and job["score"] > 0  # eval loss on the held-out 20%
        with store.session() as session:
            model = session.scalars(select(RegisteredModel).where(RegisteredModel.job_id == job_id)).one()
            assert (model.id, model.score, model.source) == (job["model_id"], job["score"], "job")
            assert session.get_one(Run, job["run_id"]).origin == RunOrigin.JOB
    folder = Path(model.path)
    assert folder.is_relative_to(settings.registry_dir) and any(folder.glob("*.safetensors"))

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    trained = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True)
    prompt = tokenizer("How many cm in 3 m?", return_tensors="pt")
    generated = trained.generate(**prompt, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id or 0)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
