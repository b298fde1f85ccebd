"""The champion's code served, not only named: `GET /v1/champions/{name}/code` and the dashboard's
champion card stream the stored tree of its commit as a tar.gz whose unpacked folder has the registered
tree hash and source digest; a stored tree that changed or is gone, a license that does not let anyone
redistribute the code and a competitor never crowned are refused, saying why."""

from __future__ import annotations

import contextlib
import importlib
import io
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from registry_data import MIT_TEXT, crown_alice

from trainarena.api import create_app
from trainarena.registry.source import tree_source_digest
from trainarena.settings import Settings
from trainarena.store import get_competitor, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, Competitor
from trainarena.submissions import checkout_path
from trainarena.submissions.tree_hash import git_tree_hash

champion_code_module = importlib.import_module("trainarena.registry.champion_code")  # the package exports its function under the name
# An executable and a link: the archive must keep both for the unpacked tree to hash as the commit's.
ALICE_FILES = {"LICENSE": MIT_TEXT, "tools/run.sh": "#!/bin/sh\necho hi\n", "link.py": "-> train.py", "pkg/util.py": "X = 1\n"}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return Settings()


class Served:
    """A client of the API over the store, with a key of each role as headers."""

    def __init__(self, client: TestClient, keys: dict[str, dict[str, str]]) -> None:
        self.client, self.keys = client, keys

    def get(self, path: str, role: str = ApiRole.COMPETITOR) -> Response:
        return self.client.get(path, headers=self.keys.get(role, {}))


@pytest.fixture
def serve(settings: Settings) -> Iterator[Callable[[Path, dict[str, str]], Served]]:
    """Crowns alice with the files given, then answers a Served over that store."""
    with contextlib.ExitStack() as stack:

        def crowned(folder: Path, alice_files: dict[str, str]) -> Served:
            crown_alice(settings, folder, alice_files)
            store = stack.enter_context(open_store(settings))
            with store.transaction() as session:
                keys = {role: {"Authorization": f"Bearer {create_key(session, role, role).secret}"}
                        for role in (ApiRole.COMPETITOR, ApiRole.CUSTOMER, ApiRole.OPERATOR)}  # fmt: skip
            return Served(stack.enter_context(TestClient(create_app(settings, store=store))), keys)

        yield crowned


def _alice(settings: Settings) -> Competitor:
    with open_store(settings) as store, store.session() as session:
        competitor = get_competitor(session, "alice")
        session.expunge(competitor)
    return competitor


def _unpacked(body: bytes, into: Path) -> Path:
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        tar.extractall(into, filter="data")
    (root,) = into.iterdir()
    return root


def test_the_champions_code_downloads_as_its_registered_tree(settings: Settings, serve: Callable[[Path, dict[str, str]], Served], tmp_path: Path) -> None:
    served = serve(tmp_path, ALICE_FILES)
    alice = _alice(settings)
    answer = served.get("/v1/champions/alice/code")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/gzip"
    assert answer.headers["x-trainarena-tree-hash"] == alice.tree_hash
    assert answer.headers["x-trainarena-source-digest"] == alice.source_digest
    assert answer.headers["x-trainarena-commit"] == alice.commit and answer.headers["x-trainarena-license"] == "mit (LICENSE)"
    assert answer.headers["content-disposition"] == f'attachment; filename="alice-{alice.commit[:12]}.tar.gz"'
    root = _unpacked(answer.content, tmp_path / "unpacked")
    assert root.name == f"alice-{alice.commit[:12]}"
    assert git_tree_hash(root) == alice.tree_hash and tree_source_digest(root, settings) == alice.source_digest
    assert (root / "link.py").is_symlink() and (root / "tools" / "run.sh").stat().st_mode & 0o100

    # GET /v1/champions names the download; its audience reads the code, and no other key.
    assert served.get("/v1/champions").json()["code"]["text"]["download"] == "/v1/champions/alice/code"
    assert served.get("/v1/champions/alice/code", ApiRole.OPERATOR).content == answer.content
    assert served.get("/v1/champions/alice/code", ApiRole.CUSTOMER).status_code == 403
    assert served.get("/v1/champions/alice/code", "nobody").status_code == 401
    never = served.get("/v1/champions/bob/code").json()["error"]
    assert never["code"] == "not_found" and never["message"] == "bob has never been crowned champion; the champions are alice (text)"

    # The dashboard's champion card links the same archive, for every visitor (it shows champions to all).
    home = served.client.get("/").text
    assert 'href="/competitors/alice/code"' in home
    page = served.client.get("/competitors/alice/code")
    assert page.status_code == 200 and page.content == answer.content
    assert 'href="/competitors/alice/code"' in served.client.get("/competitors/alice").text
    assert "/competitors/bob/code" not in served.client.get("/competitors/bob").text
    assert served.client.get("/competitors/bob/code").status_code == 404


def test_a_stored_tree_that_changed_or_is_gone_is_not_served(settings: Settings, serve: Callable[[Path, dict[str, str]], Served], tmp_path: Path) -> None:
    served = serve(tmp_path, ALICE_FILES)
    alice = _alice(settings)
    stored = checkout_path(settings, alice.commit)
    (stored / "pkg" / "util.py").write_text("X = 2  # changed on the server\n")
    refused = served.get("/v1/champions/alice/code")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "code_differs"
    assert f"the code of alice stored on this server differs from the one registered (tree hash {git_tree_hash(stored)[:12]}" in refused.json()["error"]["message"]
    assert str(settings.data_dir) not in refused.text
    page = served.client.get("/competitors/alice/code")
    assert page.status_code == 409 and "differs from the one registered" in page.text

    shutil.rmtree(stored)
    gone = served.get("/v1/champions/alice/code").json()["error"]
    assert gone["code"] == "code_not_stored"
    assert gone["message"] == (f"the code of alice (commit {alice.commit}) is not stored on this server; an operator's "
                               "`trainarena champions export-code alice DIR` fetches it again")  # fmt: skip
    assert not stored.exists()  # a request never fetched it from its repository


def test_a_tree_found_the_registered_one_is_not_hashed_again_until_a_file_changes(
    settings: Settings, serve: Callable[[Path, dict[str, str]], Served], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dashboard's link serves every visitor: a download must not hash the whole tree each time, yet
    a file changed after a good download (even to the same size) is caught by the next one."""
    served = serve(tmp_path, ALICE_FILES)
    checks: list[Path] = []
    counted = champion_code_module.check_tree
    monkeypatch.setattr(champion_code_module, "check_tree", lambda *args: checks.append(args[2]) or counted(*args))
    first = served.get("/v1/champions/alice/code")
    again = served.client.get("/competitors/alice/code")
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert len(checks) == 1
    (checks[0] / "pkg" / "util.py").write_text("X = 2\n")  # the same size as "X = 1"
    refused = served.get("/v1/champions/alice/code")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "code_differs" and len(checks) == 2
    # Refused again without hashing again: the tree is as it was at the last check.
    assert served.client.get("/competitors/alice/code").status_code == 409 and len(checks) == 2


@pytest.mark.parametrize(("license_files", "why"), [
    ({}, "its repository names no license"),
    ({"LICENSE": "Copyright 2026 Alice. All rights reserved."}, "its license file LICENSE is not one trainarena recognises"),
    ({"pyproject.toml": '[project]\nlicense = "CC-BY-NC-4.0"\n'}, "its license cc-by-nc-4.0 (pyproject.toml) is not one trainarena knows"),
])  # fmt: skip
def test_code_whose_license_does_not_let_anyone_redistribute_it_is_not_served(settings: Settings, serve: Callable[[Path, dict[str, str]], Served], tmp_path: Path,
                                                                              license_files: dict[str, str], why: str) -> None:  # fmt: skip
    served = serve(tmp_path, license_files)
    refused = served.get("/v1/champions/alice/code").json()["error"]
    assert refused["code"] == "not_redistributable" and refused["message"].startswith(f"the code of alice is not served: {why}")
    assert served.get("/v1/champions").json()["code"]["text"]["download"] is None
    home = served.client.get("/").text
    assert "/competitors/alice/code" not in home and f"not offered for download: {why}" in home
    assert served.client.get("/competitors/alice/code").status_code == 409
