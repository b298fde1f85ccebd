"""``/v1/records``: the public key, signed tree heads, entries with inclusion proofs and consistency
proofs, each checked here as a verifier would, with ``records.merkle`` and the served public key
alone; and a customer's job entries visible only to that customer and operators."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from securesystemslib.signer import SSlibKey

sys.path.insert(0, str(Path(__file__).parents[1] / "records"))

from recorded_store import RecordedExecutor, RecordedJobs, add_entrants, drive_recorded, run_jobs, settings_for  # noqa: E402

from trainarena.api import create_app  # noqa: E402
from trainarena.records.log import TREE_HEAD_TYPE, entry_leaf_hash  # noqa: E402
from trainarena.records.merkle import ProofError, root_hash, verify_consistency, verify_inclusion  # noqa: E402
from trainarena.records.signing import open_envelope, public_key_from_pem  # noqa: E402
from trainarena.records.statements import PAYLOAD_TYPE  # noqa: E402
from trainarena.settings import Settings  # noqa: E402
from trainarena.store import open_store  # noqa: E402
from trainarena.store.api_keys import create_key  # noqa: E402
from trainarena.store.models import ApiRole  # noqa: E402

ROLES = {"operator": ApiRole.OPERATOR, "competitor": ApiRole.COMPETITOR, "acme": ApiRole.CUSTOMER,
         "globex": ApiRole.CUSTOMER}  # fmt: skip


@dataclass(frozen=True)
class RecordsApi:
    client: TestClient
    headers: dict[str, dict[str, str]]  # key name -> Authorization header
    tournament_id: int
    jobs: RecordedJobs

    def get(self, path: str, who: str = "operator", **params: object):  # noqa: ANN201
        return self.client.get(f"/v1/records{path}", headers=self.headers[who], params=params)

    def ok(self, path: str, who: str = "operator", **params: object):  # noqa: ANN201
        response = self.get(path, who, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def all_entries(self, who: str = "operator", **filters: object) -> list[dict]:
        entries, offset = [], 0
        while True:
            page = self.ok("/entries", who, limit=4, offset=offset, **filters)
            entries += page["data"]
            if not page["has_more"]:
                return entries
            offset += 4


def keys(store) -> tuple[dict[str, dict[str, str]], dict[str, int]]:  # noqa: ANN001
    with store.transaction() as session:
        made = {name: create_key(session, name, role) for name, role in ROLES.items()}
        return ({name: {"Authorization": f"Bearer {key.secret}"} for name, key in made.items()},
                {name: key.row.id for name, key in made.items()})  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path / "data")


@pytest.fixture
def records_api(settings: Settings, tmp_path: Path) -> Iterator[RecordsApi]:
    """A recorded finished tournament and one recorded job each of customers acme and globex."""
    with open_store(settings) as store:
        headers, ids = keys(store)
        tournament_id = add_entrants(store)
        drive_recorded(settings, store, tournament_id, RecordedExecutor(tmp_path))
        jobs = run_jobs(settings, store, (ids["acme"], ids["globex"]))
        with TestClient(create_app(settings, store=store)) as client:
            yield RecordsApi(client, headers, tournament_id, jobs)


def served_key(api: RecordsApi) -> SSlibKey:
    return public_key_from_pem(api.get("/public-key", "competitor").text)


def checked_head(head: dict, key: SSlibKey) -> bytes:
    """A served tree head's root, once its envelope verifies and signs the same size and root."""
    payload = open_envelope(head["envelope"], key, TREE_HEAD_TYPE)
    assert (payload["tree_size"], payload["root_hash"], payload["log_id"]) == (head["tree_size"], head["root_hash"], key.keyid)
    return bytes.fromhex(head["root_hash"])


def check_entry(entry: dict, root: bytes, key: SSlibKey) -> None:
    """An entry's signature, leaf hash and inclusion proof, as a verifier checks them."""
    assert open_envelope(entry["envelope"], key, PAYLOAD_TYPE) == entry["statement"]
    leaf = entry_leaf_hash(entry["envelope"])
    assert entry["leaf_hash"] == leaf.hex()
    verify_inclusion(leaf, entry["index"], entry["tree_size"], [bytes.fromhex(h) for h in entry["inclusion_proof"]], root)


def test_the_public_key_as_pem_and_json(records_api: RecordsApi, settings: Settings) -> None:
    for who in ROLES:
        response = records_api.get("/public-key", who)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        key = public_key_from_pem(response.text)
        assert response.headers["X-Trainarena-Key-Id"] == key.keyid
    as_json = records_api.ok("/public-key", "acme", format="json")
    assert as_json == {"keyid": key.keyid, "algorithm": "ed25519", "pem": response.text}
    assert settings.operator_key_path.read_text() not in response.text


def test_the_latest_tree_head_signs_the_root_of_every_entry(records_api: RecordsApi) -> None:
    key = served_key(records_api)
    entries = records_api.all_entries()
    head = records_api.ok("/tree-head", "competitor")
    assert head["tree_size"] == len(entries) == entries[-1]["index"] + 1
    assert checked_head(head, key) == root_hash([entry_leaf_hash(e["envelope"]) for e in entries])
    older = records_api.ok("/tree-head", size=3)
    assert older["tree_size"] == 3
    assert checked_head(older, key) == root_hash([entry_leaf_hash(e["envelope"]) for e in entries[:3]])
    missing = records_api.get("/tree-head", size=head["tree_size"] + 1)
    assert missing.status_code == 404 and f"sizes 1 to {head['tree_size']}" in missing.json()["error"]["message"]


def test_every_entry_verifies_against_the_signed_head(records_api: RecordsApi) -> None:
    key = served_key(records_api)
    page = records_api.ok("/entries", limit=5)
    assert len(page["data"]) == 5 and page["has_more"]
    root = checked_head(page["tree_head"], key)
    entries = records_api.all_entries()
    assert [e["index"] for e in entries] == list(range(len(entries)))
    for entry in entries:
        check_entry(entry, root, key)
    one = records_api.ok("/entries/4", "competitor")
    assert one == entries[4]
    tampered = dict(entries[4], envelope={**entries[4]["envelope"], "payload": entries[5]["envelope"]["payload"]})
    with pytest.raises(ProofError):  # an entry's proof holds for its own envelope only
        verify_inclusion(entry_leaf_hash(tampered["envelope"]), 4, one["tree_size"],
                         [bytes.fromhex(h) for h in one["inclusion_proof"]], root)  # fmt: skip
    assert records_api.get(f"/entries/{len(entries)}").status_code == 404


def test_entries_filter_by_tournament_run_job_and_kind(records_api: RecordsApi) -> None:
    tournament = records_api.all_entries(tournament_id=records_api.tournament_id)
    kinds = {e["kind"] for e in tournament}
    assert kinds == {"commitment", "run", "evaluation", "round", "decision", "reveal"}
    assert all(e["tournament_id"] == records_api.tournament_id and e["job_id"] is None for e in tournament)
    run_id = next(e["run_id"] for e in tournament if e["kind"] == "evaluation")
    assert [e["kind"] for e in records_api.all_entries(run_id=run_id)] == ["run", "evaluation"]
    job = records_api.all_entries(job_id=records_api.jobs.mine)
    assert [(e["kind"], e["job_id"]) for e in job] == [("run", records_api.jobs.mine), ("evaluation", records_api.jobs.mine)]
    decision = records_api.all_entries(kind="decision")
    assert [e["key"] for e in decision] == [f"tournament:{records_api.tournament_id}:decision"]
    assert records_api.get("/entries", kind="verdict").status_code == 422


def test_consistency_proofs_between_signed_heads(records_api: RecordsApi) -> None:
    key = served_key(records_api)
    size = records_api.ok("/tree-head")["tree_size"]
    for first, second in ((1, size), (3, 7), (5, 8), (size, size), (4, None)):
        params = {"first": first} if second is None else {"first": first, "second": second}
        answer = records_api.ok("/consistency", "acme", **params)
        old, new = checked_head(answer["first"], key), checked_head(answer["second"], key)
        assert (answer["first"]["tree_size"], answer["second"]["tree_size"]) == (first, second or size)
        verify_consistency(first, second or size, old, new, [bytes.fromhex(h) for h in answer["proof"]])
    backwards = records_api.get("/consistency", first=7, second=3)
    assert backwards.status_code == 422 and "older" in backwards.json()["error"]["message"]
    assert records_api.get("/consistency", first=1, second=size + 1).status_code == 404
    assert records_api.get("/consistency").status_code == 422  # first is required


def test_a_customer_sees_its_own_job_entries_and_never_anothers(records_api: RecordsApi) -> None:
    mine, theirs = records_api.jobs.mine, records_api.jobs.theirs
    everything = records_api.all_entries("operator")
    assert {e["job_id"] for e in everything} == {None, mine, theirs}
    theirs_index = next(e["index"] for e in everything if e["job_id"] == theirs)
    seen = records_api.all_entries("acme")
    assert {e["job_id"] for e in seen} == {None, mine}
    assert [e for e in everything if e["job_id"] != theirs] == seen
    assert records_api.all_entries("acme", job_id=theirs) == []
    assert records_api.all_entries("acme", run_id=next(e["run_id"] for e in everything if e["job_id"] == theirs)) == []
    hidden = records_api.get(f"/entries/{theirs_index}", "acme")
    assert hidden.status_code == 404 and theirs not in hidden.text
    assert records_api.get(f"/entries/{theirs_index}", "globex").status_code == 200
    assert {e["job_id"] for e in records_api.all_entries("competitor")} == {None}
    # Another's private entries stay in the tree: a customer's own entry still proves against the full head.
    key = served_key(records_api)
    head = records_api.ok("/tree-head", "acme")
    for entry in seen:
        check_entry(entry, checked_head(head, key), key)


def test_an_empty_log_and_a_missing_key_say_so(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as client:
        headers, _ = keys(store)
        api = RecordsApi(client, headers, 0, RecordedJobs("", "", 0, 0))
        assert api.ok("/entries") == {"data": [], "has_more": False, "tree_head": None}
        empty = api.get("/tree-head")
        assert empty.status_code == 404 and "nothing has been recorded" in empty.json()["error"]["message"]
        no_key = api.get("/public-key")
        assert no_key.status_code == 404 and "trainarena keys init" in no_key.json()["error"]["message"]
        assert not settings.operator_key_path.exists()  # reading never creates the key


def test_bad_filters_and_sizes_are_422(records_api: RecordsApi) -> None:
    for path, params in (("/entries", {"tournament_id": 0}), ("/entries", {"run_id": 2**31}), ("/tree-head", {"size": 0}),
                         ("/consistency", {"first": 0}), ("/entries", {"job_id": "j" * 41})):
        response = records_api.get(path, **params)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request", (path, params)
    assert records_api.get("/entries/-1").status_code == 422
