"""A model folder as a customer saves it to check with `trainarena models verify`, built offline: the
folder, the model JSON (GET /v1/models/{id}), its run's record signed with a key of the test's own
(GET /v1/records/entries/{index}) and that key's public half (GET /v1/records/public-key)."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from trainarena.records.signing import init_key, sign_payload
from trainarena.records.statements import PAYLOAD_TYPE, Kind, make_statement, subject
from trainarena.tasks.digests import folder_and_file_digests

RUN_ID = 7
WEIGHTS = "adapter_model.safetensors"


class Saved:
    """A model folder and what verifies it: the model JSON, its run's signed record, the public key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / "model-1"
        self.folder.mkdir(parents=True)
        (self.folder / WEIGHTS).write_bytes(b"weights")
        (self.folder / "README.md").write_text("card")
        digest, files = folder_and_file_digests(self.folder)
        self.model = {"id": "model-1", "digest": digest, "run_id": RUN_ID, "artifact_digest": "ab" * 32,
                      "files": [{"path": f.name, "size": f.size, "sha256": f.sha256,
                                 "artifact_path": WEIGHTS if f.name == WEIGHTS else None} for f in files]}  # fmt: skip
        weights_sha = next(f.sha256 for f in files if f.name == WEIGHTS)
        self.statement = make_statement(Kind.RUN, [subject(f"artifact/{WEIGHTS}", weights_sha)],
                                        {"run": {"id": RUN_ID}, "artifact_sha256": "ab" * 32})  # fmt: skip
        key = init_key(root / "operator.key")
        self.entry = {"index": 3, "envelope": sign_payload(key, PAYLOAD_TYPE, self.statement)}
        self.key_pem = key.public_pem()
        self.write("key.pem", self.key_pem)

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def args(self, model: Any = None, entry: Any = None, *, key: bool = True) -> list[str]:
        """`models verify` of the folder with the model and record given (each JSON-encoded unless bytes)."""
        model_file = self.write("model.json", _encoded(self.model if model is None else model))
        record_file = self.write("record.json", _encoded(self.entry if entry is None else entry))
        return ["models", "verify", str(self.folder), "--model-json", str(model_file), "--record", str(record_file),
                *(["--key", str(self.root / "key.pem")] if key else [])]  # fmt: skip

    def unsigned(self, statement: Any) -> dict[str, Any]:
        """A log entry whose envelope carries ``statement`` (read without --key: its signature unchecked)."""
        payload = base64.b64encode(json.dumps(statement).encode()).decode()
        return {"envelope": {**self.entry["envelope"], "payload": payload}}


def without(document: dict, *path: str | int) -> dict:
    """A copy of ``document`` without the member at ``path`` (keys and indexes)."""
    changed = copy.deepcopy(document)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return changed


def with_change(document: dict, value: Any, *path: str | int) -> dict:
    """A copy of ``document`` with ``value`` at ``path`` (keys and indexes)."""
    changed = copy.deepcopy(document)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return changed


def _encoded(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()
