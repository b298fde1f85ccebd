"""POST /v1/tasks and /v1/tasks/check judge a dataset source before anything reads it: the spec first
(a dataset without `source` was a plain-text 500, a KeyError in dataset_digest), then the path. A source
in the data directory's own state is refused: hashing `"source": "."` opened and closed every file of
the data dir, trainarena.db included, which dropped the server's SQLite locks, so the next CLI command
deleted -wal and -shm under the live server. A text folder must be a save_to_disk folder, told by its
marker files, and is refused unhashed otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_client import Api
from operator_data import write_operator_data

from trainarena.operations import pools
from trainarena.tasks import check as task_check


def _task(model: Path, source: str | None, task_type: str = "instruct") -> dict:
    dataset = {"field_instruction": "q", "field_output": "a"} if task_type != "image" else {"model_type": "sd15"}
    if source is not None:
        dataset["source"] = source
    return {"name": "t", "type": task_type, "base_model": str(model), "budget_seconds": 5, "pool": "p", "dataset": dataset}


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths hashed (every file under a folder is opened to hash it) or prepared."""
    seen: list[Path] = []
    real_digest = pools.path_digest

    def digest(path: Path) -> str:
        seen.append(Path(path))
        return real_digest(path)

    monkeypatch.setattr(pools, "path_digest", digest)
    real_plugin = task_check.get_task_type

    def plugin(task_type):
        found = real_plugin(task_type)
        real_prepare = found.prepare

        def prepare(task, *args, **kwargs):
            seen.append(Path(str(task.dataset.get("source"))))
            return real_prepare(task, *args, **kwargs)

        found.prepare = prepare
        return found

    monkeypatch.setattr(task_check, "get_task_type", plugin)
    return seen


@pytest.mark.usefixtures("sqlite_only")  # the database file is among the data dir's state only on SQLite
def test_a_source_in_the_data_dirs_state_is_refused_unread(empty_api: Api, tmp_path: Path, hashed: list[Path]) -> None:
    data = write_operator_data(tmp_path)
    data_dir = empty_api.settings.data_dir
    (data_dir / "runs" / "1").mkdir(parents=True)
    (data_dir / "runs" / "1" / "rows.jsonl").write_bytes(data.jsonl.read_bytes())
    (data_dir / "uploads").mkdir()
    (data_dir / "uploads" / "file-1.jsonl").write_bytes(data.jsonl.read_bytes())  # a customer's, private to its jobs
    operator = empty_api.auth("operator")
    cases = {
        ".": "is the data directory", str(data_dir): "is the data directory", str(tmp_path): "holds the data directory",
        "trainarena.db": "database", str(data_dir / "trainarena.db-wal"): "database", "runs/1/rows.jsonl": "run folders",
        "split-secret.key": "split secret", "uploads/file-1.jsonl": "customers' uploads",
    }  # fmt: skip
    (data_dir / "trainarena.db-wal").touch()
    (data_dir / "split-secret.key").touch()
    with empty_api.client() as client:
        for source, what in cases.items():
            for route in ("/v1/tasks", "/v1/tasks/check"):
                for task_type in ("instruct", "image"):
                    refused = client.post(route, json=_task(data.model, source, task_type), headers=operator)
                    assert refused.status_code == 422, (source, refused.text)
                    message = refused.json()["error"]["message"]
                    assert what in message and "give a dataset file or folder of its own" in message, (source, message)
        assert client.get("/v1/tasks", headers=operator).json()["data"] == []
    assert hashed == []  # nothing was hashed or prepared: no file of the store was opened


def test_a_text_folder_not_written_by_save_to_disk_is_refused_before_it_is_hashed(empty_api: Api, tmp_path: Path,
                                                                                hashed: list[Path]) -> None:  # fmt: skip
    data = write_operator_data(tmp_path)
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "rows.jsonl").write_bytes(data.jsonl.read_bytes())
    operator = empty_api.auth("operator")
    with empty_api.client() as client:
        refused = client.post("/v1/tasks", json=_task(data.model, str(folder)), headers=operator)
        assert refused.status_code == 422 and "not one written by datasets' save_to_disk" in refused.json()["error"]["message"]
        assert hashed == []
        # A save_to_disk folder, and a file the operator keeps in the data dir, are taken.
        assert client.post("/v1/tasks", json=_task(data.model, str(data.saved)), headers=operator).status_code == 201
        (empty_api.settings.data_dir / "rows.jsonl").write_bytes(data.jsonl.read_bytes())
        kept = client.post("/v1/tasks", json={**_task(data.model, "rows.jsonl"), "name": "t2"}, headers=operator)
        assert kept.status_code == 201, kept.text


def test_a_dataset_without_a_source_is_a_422_naming_the_key(empty_api: Api, tmp_path: Path) -> None:
    data = write_operator_data(tmp_path)
    with empty_api.client() as client:
        for route in ("/v1/tasks", "/v1/tasks/check"):
            refused = client.post(route, json=_task(data.model, None), headers=empty_api.auth("operator"))
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["message"] == "dataset spec: missing required key(s) ['source']"
