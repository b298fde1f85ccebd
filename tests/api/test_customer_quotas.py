"""Per-customer quotas: a customer key's stored files (api.upload_quota_bytes), its stored models
(api.model_quota_bytes) and its jobs queued or running (jobs.active_quota). Each is refused with 409
quota_exceeded naming the setting, the usage and the limit; two uploads of one key at once never both
pass; GET /v1/me reports the usage; operator keys are not limited."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from model_world import register_artifact

from trainarena.api import create_app
from trainarena.api.routes.files import MULTIPART_ALLOWANCE
from trainarena.jobs.errors import QuotaExceeded
from trainarena.jobs.quotas import check_upload_bytes, quota_transaction
from trainarena.jobs.uploads import UploadSink
from trainarena.settings import Settings
from trainarena.store import Store
from trainarena.store.models import ApiKey, UploadedFile

MAPPING = {"field_instruction": "q", "field_output": "a"}


def rows(count: int = 30) -> bytes:
    return "".join(json.dumps({"q": f"What is {i} plus {i}?", "a": str(2 * i)}) + "\n" for i in range(count)).encode()


FILE = rows()
# Room for one file and a half: each upload fits alone, two do not.
QUOTA = len(FILE) * 3 // 2


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    model = tmp_path / "model"
    model.mkdir()
    return Settings(data_dir=tmp_path / "data", api={"upload_quota_bytes": QUOTA},
                    jobs={"base_models": (str(model),), "active_quota": 1})  # fmt: skip


def upload(client: TestClient, headers: dict[str, str], data: bytes = FILE) -> httpx.Response:
    return client.post("/v1/files", headers=headers, files={"file": ("qa.jsonl", data)})


def quota_refusal(response: httpx.Response, setting: str, *words: str) -> dict:
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded" and error["details"]["setting"] == setting, error
    for word in (setting, *words):
        assert word in error["message"], error
    return error


def usage(client: TestClient, headers: dict[str, str]) -> dict[str, dict]:
    return {quota["setting"]: quota for quota in client.get("/v1/me", headers=headers).json()["quotas"]}


def staged(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.uploads_dir.glob(".incoming-*"))


def test_an_upload_past_the_quota_is_refused_until_files_are_deleted(jobs_client: TestClient, auth: dict,
                                                                      api_settings: Settings) -> None:  # fmt: skip
    first = upload(jobs_client, auth["customer"])
    assert first.status_code == 201, first.text
    error = quota_refusal(upload(jobs_client, auth["customer"]), "api.upload_quota_bytes", f"{QUOTA:,} bytes",
                          f"{len(FILE):,} bytes are stored", "DELETE /v1/files/{id}")  # fmt: skip
    assert error["details"]["used_bytes"] == len(FILE) and error["details"]["limit_bytes"] == QUOTA
    assert staged(api_settings) == []  # nothing of the refused upload is kept
    assert upload(jobs_client, auth["other"]).status_code == 201  # another customer has its own quota
    jobs_client.delete(f"/v1/files/{first.json()['id']}", headers=auth["customer"])
    assert upload(jobs_client, auth["customer"]).status_code == 201


def test_an_upload_is_refused_while_it_streams(tmp_path: Path) -> None:
    # The chunk that passes the room is refused and the staging file removed: the rest is never written.
    counted: list[int] = []

    def count(size: int) -> None:
        if sum(counted) + size > 100:
            raise QuotaExceeded("over", setting="api.upload_quota_bytes")
        counted.append(size)

    sink = UploadSink(tmp_path, 10_000, "qa.jsonl", count)
    sink.write(b"x" * 60)
    with pytest.raises(QuotaExceeded):
        sink.write(b"x" * 60)
    assert not sink.path.exists() and counted == [60]


BOUNDARY = "quotaboundary"
PART_HEAD = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"qa.jsonl\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
PART_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def post_streamed(settings: Settings, store: Store, headers: dict[str, str], chunks: list[bytes],
                  sent: list[bytes]) -> httpx.Response:  # fmt: skip
    """POST /v1/files whose body is ``chunks``, each appended to ``sent`` as the app reads it, with the
    headers given (Content-Length among them: as declared, true or not)."""

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            sent.append(chunk)
            yield chunk

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(settings, store=store))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/files", headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **headers},
                                     content=body())  # fmt: skip

    return asyncio.run(post())


def test_an_upload_declared_past_the_room_is_refused_before_its_body_is_read(jobs_client: TestClient, auth: dict,
                                                                           api_settings: Settings, api_store: Store) -> None:  # fmt: skip
    """Its Content-Length, less the room for the form's framing, passes the room the key's stored files
    leave: refused at once with the streaming check's error, not a byte of the body read."""
    assert upload(jobs_client, auth["customer"]).status_code == 201
    room = QUOTA - len(FILE)
    declared = MULTIPART_ALLOWANCE + room + 1
    sent: list[bytes] = []
    refused = post_streamed(api_settings, api_store, {**auth["customer"], "Content-Length": str(declared)},
                            [PART_HEAD, b"x" * (declared - len(PART_HEAD) - len(PART_TAIL)), PART_TAIL], sent)  # fmt: skip
    error = quota_refusal(refused, "api.upload_quota_bytes", f"{QUOTA:,} bytes", "Content-Length")
    assert error["details"]["used_bytes"] == len(FILE) and error["details"]["upload_bytes"] == room + 1
    assert sent == [] and staged(api_settings) == []
    fits = post_streamed(api_settings, api_store, {**auth["other"], "Content-Length": str(declared)},
                         [PART_HEAD, FILE, PART_TAIL], [])  # fmt: skip
    assert fits.status_code == 201, fits.text  # the framing allowance: a body that may hold a file in the room is read
    operator = post_streamed(api_settings, api_store, {**auth["operator"], "Content-Length": str(declared)},
                             [PART_HEAD, FILE, PART_TAIL], [])  # fmt: skip
    assert operator.status_code == 201, operator.text


def test_an_upload_whose_content_length_lies_is_refused_while_it_streams(api_settings: Settings, api_store: Store,
                                                                         auth: dict) -> None:  # fmt: skip
    sent: list[bytes] = []
    chunks = [PART_HEAD, *[FILE[:256]] * (QUOTA // 256 + 2), PART_TAIL]
    refused = post_streamed(api_settings, api_store, {**auth["customer"], "Content-Length": "300"}, chunks, sent)
    quota_refusal(refused, "api.upload_quota_bytes", "has reached")
    assert len(sent) < len(chunks) and staged(api_settings) == []


def test_a_file_part_declared_past_the_room_is_refused_before_its_bytes_are_read(api_settings: Settings, api_store: Store,
                                                                                  auth: dict) -> None:  # fmt: skip
    head = PART_HEAD.replace(b"\r\n\r\n", f"\r\nContent-Length: {QUOTA + 1}\r\n\r\n".encode())
    sent: list[bytes] = []
    refused = post_streamed(api_settings, api_store, auth["customer"], [head, FILE[:100], FILE[100:], PART_TAIL], sent)
    error = quota_refusal(refused, "api.upload_quota_bytes", "Content-Length")
    assert error["details"]["upload_bytes"] == QUOTA + 1
    assert sent == [head] and staged(api_settings) == []


def test_two_uploads_at_once_do_not_both_pass_the_quota(api_settings: Settings, api_store: Store, auth: dict) -> None:
    """The second upload streams while the first is still under way: it is refused as it passes the room
    they share, and the first is stored."""
    head, tail = PART_HEAD, PART_TAIL
    first_streamed, second_answered = asyncio.Event(), asyncio.Event()

    async def first_body() -> AsyncIterator[bytes]:
        yield head
        yield FILE
        first_streamed.set()  # the app asked for more: the file's bytes are counted
        await second_answered.wait()
        yield tail

    async def second_body() -> AsyncIterator[bytes]:
        await first_streamed.wait()
        yield head
        for start in range(0, len(FILE), 256):
            yield FILE[start:start + 256]
        yield tail

    async def both() -> tuple[httpx.Response, httpx.Response]:
        headers = {**auth["customer"], "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        transport = httpx.ASGITransport(app=create_app(api_settings, store=api_store))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def second() -> httpx.Response:
                try:
                    return await client.post("/v1/files", headers=headers, content=second_body())
                finally:
                    second_answered.set()

            return await asyncio.gather(client.post("/v1/files", headers=headers, content=first_body()), second())

    first, second = asyncio.run(both())
    assert first.status_code == 201, first.text
    error = quota_refusal(second, "api.upload_quota_bytes", "arriving in its other uploads now")
    assert error["details"]["used_bytes"] >= len(FILE) - len(tail) and error["details"]["limit_bytes"] == QUOTA
    with api_store.session() as session:
        assert [row.size_bytes for row in session.query(UploadedFile)] == [len(FILE)]
    assert staged(api_settings) == []


def test_the_key_lock_holds_a_second_check_until_the_first_write_commits(api_settings: Settings, api_store: Store,
                                                                         auth: dict) -> None:  # fmt: skip
    """What two API processes storing one key's uploads at once rely on: the check and the write run under
    the key's lock, so the second check counts the first file."""
    with api_store.session() as session:
        key = session.query(ApiKey).filter_by(name="customer").one().id
    checked, go = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def store_one(first: bool) -> None:
        try:
            with quota_transaction(api_store, key) as session:
                check_upload_bytes(session, api_settings, key, len(FILE))
                if first:
                    checked.set()
                    go.wait(10)
                session.add(UploadedFile(id=f"file-{'a' if first else 'b'}", owner_key_id=key, filename="qa.jsonl", kind="text",
                                         format="jsonl", size_bytes=len(FILE), sha256="0" * 64, rows=30, path="/nowhere"))  # fmt: skip
            outcome["first" if first else "second"] = "stored"
        except QuotaExceeded as error:
            outcome["first" if first else "second"] = error.details

    threads = [threading.Thread(target=store_one, args=(True,)), threading.Thread(target=store_one, args=(False,))]
    threads[0].start()
    assert checked.wait(10)
    threads[1].start()
    threads[1].join(0.5)
    assert threads[1].is_alive() and outcome == {}  # waiting on the lock, not checking
    go.set()
    for thread in threads:
        thread.join(10)
    assert outcome["first"] == "stored" and outcome["second"]["used_bytes"] == len(FILE), outcome


@pytest.fixture
def file_id(jobs_client: TestClient, auth: dict) -> str:
    created = upload(jobs_client, auth["customer"])
    assert created.status_code == 201, created.text
    return created.json()["id"]


def job_body(settings: Settings, file_id: str) -> dict:
    return {"task_type": "instruct", "base_model": settings.jobs.base_models[0], "file_id": file_id, "field_mapping": MAPPING}


def test_a_job_past_the_active_quota_is_refused_until_one_ends(jobs_client: TestClient, auth: dict, api_settings: Settings,
                                                                file_id: str) -> None:  # fmt: skip
    first = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, file_id))
    assert first.status_code == 201, first.text
    refused = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, file_id))
    error = quota_refusal(refused, "jobs.active_quota", "1 job queued or running", "POST /v1/jobs/{id}/cancel")
    assert (error["details"]["used"], error["details"]["limit"]) == (1, 1)
    jobs_client.post(f"/v1/jobs/{first.json()['id']}/cancel", headers=auth["customer"])
    assert jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, file_id)).status_code == 201


def test_me_reports_a_customers_usage(jobs_client: TestClient, auth: dict, api_settings: Settings, file_id: str) -> None:
    jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, file_id))
    assert usage(jobs_client, auth["customer"]) == {
        "api.upload_quota_bytes": {"setting": "api.upload_quota_bytes", "used": len(FILE), "limit": QUOTA},
        "api.model_quota_bytes": {"setting": "api.model_quota_bytes", "used": 0, "limit": api_settings.api.model_quota_bytes},
        "jobs.active_quota": {"setting": "jobs.active_quota", "used": 1, "limit": 1},
    }
    assert usage(jobs_client, auth["other"])["api.upload_quota_bytes"]["used"] == 0
    assert jobs_client.get("/v1/me", headers=auth["operator"]).json()["quotas"] is None


def test_a_limit_of_0_is_no_limit(tmp_path: Path, api_store: Store, auth: dict) -> None:
    settings = Settings(data_dir=tmp_path / "data", api={"upload_quota_bytes": 0, "model_quota_bytes": 0}, jobs={"active_quota": 0})
    with TestClient(create_app(settings, store=api_store)) as client:
        for _ in range(3):
            assert upload(client, auth["customer"]).status_code == 201
        assert {quota["limit"] for quota in usage(client, auth["customer"]).values()} == {None}


def test_operators_are_not_limited(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    uploads = [upload(jobs_client, auth["operator"]) for _ in range(3)]
    assert [u.status_code for u in uploads] == [201] * 3
    for _ in range(2):
        created = jobs_client.post("/v1/jobs", headers=auth["operator"], json=job_body(api_settings, uploads[0].json()["id"]))
        assert created.status_code == 201, created.text
    assert upload(jobs_client, auth["customer"]).status_code == 201  # the operator's files count against no customer



def test_a_job_is_refused_while_the_keys_models_reach_their_quota(tmp_path: Path, api_settings: Settings, api_store: Store,
                                                                  auth: dict, file_id: str) -> None:  # fmt: skip
    """A model's size is known once trained, so the quota refuses the next job: here any model reaches it."""
    settings = api_settings.model_copy(update={"api": api_settings.api.model_copy(update={"model_quota_bytes": 1}),
                                               "jobs": api_settings.jobs.model_copy(update={"active_quota": 0})})  # fmt: skip
    with api_store.transaction() as session:
        key = session.query(ApiKey).filter_by(name="customer").one().id
        model_id = register_artifact(settings, session, tmp_path / "trained", key).id
    with TestClient(create_app(settings, store=api_store)) as client:
        size = client.get(f"/v1/models/{model_id}", headers=auth["customer"]).json()["bytes"]
        refused = client.post("/v1/jobs", headers=auth["customer"], json=job_body(settings, file_id))
        error = quota_refusal(refused, "api.model_quota_bytes", f"models take {size:,} bytes", "DELETE /v1/models/{id}")
        assert (error["details"]["used_bytes"], error["details"]["limit_bytes"]) == (size, 1)
        assert usage(client, auth["customer"])["api.model_quota_bytes"] == {"setting": "api.model_quota_bytes", "used": size, "limit": 1}
        other_file = upload(client, auth["other"]).json()["id"]
        assert client.post("/v1/jobs", headers=auth["other"], json=job_body(settings, other_file)).status_code == 201  # its own quota
        assert client.delete(f"/v1/models/{model_id}", headers=auth["customer"]).status_code == 200
        assert usage(client, auth["customer"])["api.model_quota_bytes"]["used"] == 0  # a deleted model counts no more
        assert client.post("/v1/jobs", headers=auth["customer"], json=job_body(settings, file_id)).status_code == 201
