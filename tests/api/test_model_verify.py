"""A customer checks the model it downloaded against the signed record of the run that trained it
(QA: the record hashes the run's whole output folder, the download is another folder, and nothing
linked the two). The job runs beside the API (test_jobs' fake executor); the customer saves the
model's answer, its run's record and the operator's public key, unpacks the download and runs
`trainarena models verify`: equal; one byte of the weights changed: each mismatch named."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_jobs import ROWS, QuickExecutor, job_body, sse_events, upload
from typer.testing import CliRunner

from trainarena.api import create_app
from trainarena.cli import app
from trainarena.jobs import JobWorker
from trainarena.settings import JobRules, Settings
from trainarena.store import Store
from trainarena.tasks.digests import path_digest


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    model = tmp_path / "model"
    model.mkdir()
    (model / "tokenizer.json").write_text("{}")  # copied into the model folder from the base model: not from the artifact
    rules = JobRules(base_models=(str(model),), poll_seconds=0.05, heartbeat_seconds=0.1, progress_seconds=0.05)
    return Settings(data_dir=tmp_path / "data", jobs=rules, api={"sse_poll_seconds": 0.05})


@pytest.fixture
def finished_job(api_settings: Settings, api_store: Store, auth: dict) -> Iterator[tuple[TestClient, str]]:
    worker = JobWorker(api_settings, store=api_store, executor=QuickExecutor())
    with TestClient(create_app(api_settings, store=api_store, services=(worker,))) as client:
        job_id = client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, upload(client, auth["customer"]))).json()["id"]
        assert sse_events(client, auth["customer"], job_id)[-1]["event"] == "finished"
        yield client, job_id


def _download(client: TestClient, headers: dict, model_id: str, into: Path) -> tuple[Path, dict]:
    response = client.get(f"/v1/models/{model_id}/download", headers=headers)
    assert response.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
        archive.extractall(into, filter="data")
    return into / model_id, dict(response.headers)


def _verify(*args: str, exit_code: int) -> dict:
    result = CliRunner().invoke(app, ["models", "verify", *args, "--json"])
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def test_a_download_checks_out_against_the_signed_record_and_one_changed_byte_does_not(
    finished_job: tuple[TestClient, str], auth: dict, tmp_path: Path
) -> None:
    client, job_id = finished_job
    customer = auth["customer"]
    job = client.get(f"/v1/jobs/{job_id}", headers=customer).json()
    model = client.get(f"/v1/models/{job['model_id']}", headers=customer).json()
    entries = client.get("/v1/records/entries", headers=customer, params={"job_id": job_id, "kind": "run"}).json()["data"]
    assert len(entries) == 1
    record = entries[0]
    assert record["statement"]["predicate"]["artifact_sha256"] == model["artifact_digest"] == "ab" * 32
    weights = next(f for f in model["files"] if f["path"] == "adapter_model.safetensors")
    assert weights["artifact_path"] == "adapter_model.safetensors"
    assert {s["name"]: s["digest"]["sha256"] for s in record["statement"]["subject"]}["artifact/adapter_model.safetensors"] == weights["sha256"]
    assert {f["path"]: f["artifact_path"] for f in model["files"]}["tokenizer.json"] is None  # the base model's
    folder, headers = _download(client, customer, model["id"], tmp_path / "download")
    # The headers carry the model folder's digest, which the records' artifact-digest function recomputes.
    assert headers["x-trainarena-model-digest"] == model["digest"] == path_digest(folder)
    assert headers["x-trainarena-artifact-digest"] == model["artifact_digest"]

    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "model.json").write_text(json.dumps(model))
    (saved / "record.json").write_text(json.dumps(record))
    (saved / "key.pem").write_text(client.get("/v1/records/public-key", headers=customer).text)
    offline = ("--model-json", str(saved / "model.json"), "--record", str(saved / "record.json"), "--key", str(saved / "key.pem"))
    checked = _verify(str(folder), *offline, exit_code=0)
    assert checked["ok"] and checked["problems"] == [] and checked["linked_to_record"] == ["adapter_model.safetensors"]
    assert checked["folder_digest"] == model["digest"] and checked["signed_by"] is not None
    unsigned = CliRunner().invoke(app, ["models", "verify", str(folder), *offline[:4]])  # no --key: nothing authenticated
    assert unsigned.exit_code == 0 and unsigned.stdout.rstrip().endswith("consistent, but no signature checked (give --record and --key)")

    weights_file = folder / "adapter_model.safetensors"
    tampered = bytearray(weights_file.read_bytes())
    tampered[-1] ^= 1
    weights_file.write_bytes(bytes(tampered))
    refused = _verify(str(folder), *offline, exit_code=1)
    assert not refused["ok"] and refused["linked_to_record"] == []
    assert [p.split(" ")[0] for p in refused["problems"]] == ["the", "adapter_model.safetensors", "adapter_model.safetensors"]
    assert "the folder's digest is" in refused["problems"][0] and "the signed record" in refused["problems"][2]


def _statuses(checked: dict) -> dict[str, str]:
    return {claim["name"]: claim["status"] for claim in checked["checks"]}


def _saved_records(client: TestClient, headers: dict, job_id: str, into: Path) -> tuple[Path, dict[str, Path]]:
    """The customer's download, and its model, run record, evaluation, tree head and key saved from the API."""
    model = client.get(f"/v1/models/{client.get(f'/v1/jobs/{job_id}', headers=headers).json()['model_id']}", headers=headers).json()
    record, evaluation = (client.get("/v1/records/entries", headers=headers, params={"job_id": job_id, "kind": kind}).json()["data"][0]
                          for kind in ("run", "evaluation"))  # fmt: skip
    head = client.get("/v1/records/tree-head", headers=headers, params={"size": record["tree_size"]}).json()
    folder, _ = _download(client, headers, model["id"], into / "download")
    saved = {"model": model, "record": record, "evaluation": evaluation, "tree-head": head}
    paths = {name: into / f"{name}.json" for name in saved}
    for name, value in saved.items():
        paths[name].write_text(json.dumps(value))
    paths["key"] = into / "key.pem"
    paths["key"].write_text(client.get("/v1/records/public-key", headers=headers).text)
    paths["dataset"] = into / "qa.jsonl"
    paths["dataset"].write_bytes(ROWS)
    return folder, paths


def _given(paths: dict[str, Path]) -> list[str]:
    return ["--model-json", str(paths["model"]), "--record", str(paths["record"]), "--evaluation", str(paths["evaluation"]),
            "--tree-head", str(paths["tree-head"]), "--key", str(paths["key"]), "--dataset", str(paths["dataset"])]


def test_the_customer_checks_the_dataset_the_score_and_the_log_and_each_failure_is_named(
    finished_job: tuple[TestClient, str], auth: dict, tmp_path: Path
) -> None:
    """The signed records tie the model to the customer's file (its sha256), to the signed score and to
    the public log (the entries' inclusion proofs under a signed tree head): each is checked on its own
    line, and each breaks alone when its input is not the genuine one."""
    client, job_id = finished_job
    folder, paths = _saved_records(client, auth["customer"], job_id, tmp_path)
    checked = _verify(str(folder), *_given(paths), exit_code=0)
    assert checked["ok"] and _statuses(checked) == {"dataset": "passed", "score": "passed", "inclusion": "passed"}
    record = json.loads(paths["record"].read_text())
    assert record["statement"]["predicate"]["task"]["upload"]["sha256"] == hashlib.sha256(ROWS).hexdigest()
    text = CliRunner().invoke(app, ["models", "verify", str(folder), *_given(paths)], env={"COLUMNS": "100"})
    assert text.exit_code == 0 and text.stdout.rstrip().endswith("verified"), text.output

    paths["dataset"].write_bytes(ROWS + b"{}\n")  # another file than the one uploaded
    refused = _verify(str(folder), *_given(paths), exit_code=1)
    assert _statuses(refused) == {"dataset": "failed", "score": "passed", "inclusion": "passed"} and refused["problems"] == []
    assert "the model was not trained on this file" in refused["checks"][0]["detail"]
    paths["dataset"].write_bytes(ROWS)

    model = json.loads(paths["model"].read_text())
    paths["model"].write_text(json.dumps({**model, "score": 0.5}))  # the signed evaluation says 0.75
    refused = _verify(str(folder), *_given(paths), exit_code=1)
    assert _statuses(refused) == {"dataset": "passed", "score": "failed", "inclusion": "passed"}
    assert refused["checks"][1]["detail"] == "the model's score is 0.5, the signed evaluation's 0.75"
    text = CliRunner().invoke(app, ["models", "verify", str(folder), *_given(paths)])
    assert text.exit_code == 1 and text.stdout.rstrip().endswith("NOT verified: 0 difference(s), score failed"), text.output
    paths["model"].write_text(json.dumps(model))

    proof = record["inclusion_proof"]
    paths["record"].write_text(json.dumps({**record, "inclusion_proof": [("0" if proof[0][0] != "0" else "1") + proof[0][1:], *proof[1:]]}))
    refused = _verify(str(folder), *_given(paths), exit_code=1)
    assert _statuses(refused) == {"dataset": "passed", "score": "passed", "inclusion": "failed"}
    assert refused["checks"][2]["detail"].startswith(f"the run record (entry {record['index']}) is not in the log the tree head signs")


def test_a_record_signed_by_another_key_or_of_another_run_is_refused(finished_job: tuple[TestClient, str], auth: dict,
                                                                     tmp_path: Path) -> None:  # fmt: skip
    from trainarena.records.signing import init_key

    client, job_id = finished_job
    customer = auth["customer"]
    model = client.get(f"/v1/models/{client.get(f'/v1/jobs/{job_id}', headers=customer).json()['model_id']}", headers=customer).json()
    record = client.get("/v1/records/entries", headers=customer, params={"job_id": job_id, "kind": "run"}).json()["data"][0]
    folder, _ = _download(client, customer, model["id"], tmp_path / "download")
    (tmp_path / "model.json").write_text(json.dumps(model))
    (tmp_path / "record.json").write_text(json.dumps(record))
    (tmp_path / "other.pem").write_text(init_key(tmp_path / "other-key.pem").public_pem())
    result = CliRunner().invoke(app, ["models", "verify", str(folder), "--model-json", str(tmp_path / "model.json"),
                                      "--record", str(tmp_path / "record.json"), "--key", str(tmp_path / "other.pem")])  # fmt: skip
    assert result.exit_code == 1 and "the record cannot be trusted: not signed by key" in result.output
    (tmp_path / "model.json").write_text(json.dumps({**model, "run_id": model["run_id"] + 1}))
    other_run = _verify(str(folder), "--model-json", str(tmp_path / "model.json"), "--record", str(tmp_path / "record.json"), exit_code=1)
    assert other_run["problems"] == [f"the record is of run {model['run_id']}, the model was trained by run {model['run_id'] + 1}"]
    assert other_run["signed_by"] is None  # no --key: read, not checked


def test_the_operator_verifies_against_the_registry_and_its_own_log(finished_job: tuple[TestClient, str], auth: dict,
                                                                    api_settings: Settings, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    client, job_id = finished_job
    model_id = client.get(f"/v1/jobs/{job_id}", headers=auth["customer"]).json()["model_id"]
    folder, _ = _download(client, auth["operator"], model_id, tmp_path / "download")
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(api_settings.data_dir))
    checked = _verify(str(folder), "--model", model_id, exit_code=0)
    assert checked["linked_to_record"] == ["adapter_model.safetensors"] and checked["signed_by"] is not None
    assert _statuses(checked) == {"dataset": "not checked", "score": "passed", "inclusion": "passed"}
    (tmp_path / "qa.jsonl").write_bytes(ROWS)
    text = CliRunner().invoke(app, ["models", "verify", str(folder), "--model", model_id, "--dataset", str(tmp_path / "qa.jsonl")],
                              env={"COLUMNS": "80"})  # fmt: skip
    assert text.exit_code == 0 and text.stdout.rstrip().endswith("verified"), text.output
    assert "verified, but" not in text.stdout and "dataset         passed: qa.jsonl is the signed" in text.stdout
    assert max(len(line) for line in text.stdout.splitlines()) <= 80


def test_a_model_registered_before_its_copies_were_named_verifies_on_the_operators_machine(
    finished_job: tuple[TestClient, str], auth: dict, api_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model registered before the registry kept `artifact_path` and `artifact_digest`: `--model` takes
    the artifact digest from its run in the store and links its weights to the run's record by content;
    nothing is written (the registry's row stays as it was)."""
    from trainarena.store import open_store
    from trainarena.store.models import RegisteredModel, Run

    client, job_id = finished_job
    model_id = client.get(f"/v1/jobs/{job_id}", headers=auth["customer"]).json()["model_id"]
    folder, _ = _download(client, auth["operator"], model_id, tmp_path / "download")
    with open_store(api_settings) as store, store.transaction() as session:
        row = session.get_one(RegisteredModel, model_id)
        old = {key: value for key, value in row.card.items() if key != "artifact_digest"}
        row.card = {**old, "files": [{k: v for k, v in file.items() if k != "artifact_path"} for file in old["files"]]}
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(api_settings.data_dir))
    checked = _verify(str(folder), "--model", model_id, exit_code=0)
    assert checked["linked_to_record"] == ["adapter_model.safetensors"] and checked["linked_by_content"] is True
    with open_store(api_settings) as store, store.session() as session:
        card = session.get_one(RegisteredModel, model_id).card
        assert "artifact_digest" not in card and all("artifact_path" not in file for file in card["files"])
    # The run's artifact digest (its counted attempt's) is compared with the record's: one that differs is named.
    with open_store(api_settings) as store, store.transaction() as session:
        session.get_one(Run, session.get_one(RegisteredModel, model_id).run_id).counted_attempt.artifact_digest = "cd" * 32
    refused = _verify(str(folder), "--model", model_id, exit_code=1)
    assert refused["problems"] == [f"the model names artifact digest {'cd' * 32}, the record {'ab' * 32}"]


def test_a_model_registered_before_its_artifact_digest_was_kept_reads_its_runs(
    finished_job: tuple[TestClient, str], auth: dict, api_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every read view names the artifact digest as `models verify` takes it: from the model's run in the
    store, without writing it into the registry's row."""
    from trainarena.store import open_store
    from trainarena.store.models import RegisteredModel

    client, job_id = finished_job
    model_id = client.get(f"/v1/jobs/{job_id}", headers=auth["customer"]).json()["model_id"]
    with open_store(api_settings) as store, store.transaction() as session:
        row = session.get_one(RegisteredModel, model_id)
        row.card = {key: value for key, value in row.card.items() if key != "artifact_digest"}
    answered = client.get(f"/v1/models/{model_id}", headers=auth["customer"]).json()
    [listed] = client.get("/v1/models", headers=auth["customer"]).json()["data"]
    _, headers = _download(client, auth["customer"], model_id, tmp_path / "download")
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(api_settings.data_dir))
    shown = CliRunner().invoke(app, ["models", "show", model_id, "--json"])
    assert shown.exit_code == 0, shown.output
    assert answered["artifact_digest"] == listed["artifact_digest"] == headers["x-trainarena-artifact-digest"] == "ab" * 32
    assert json.loads(shown.stdout)["artifact_digest"] == "ab" * 32
    with open_store(api_settings) as store, store.session() as session:
        assert "artifact_digest" not in session.get_one(RegisteredModel, model_id).card
