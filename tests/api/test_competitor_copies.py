"""POST /v1/competitors applies the copy rules: an exact copy is refused (422), a disguised copy is
registered flagged with the closest competitor and the similarity, which the list and show routes keep."""

from __future__ import annotations

from pathlib import Path

from api_client import Api
from disguised import disguised_copy

from trainarena.demo.example_repos import make_example_repo
from trainarena.demo.text import examples_root


def test_register_reports_the_closest_competitor_and_refuses_an_exact_copy(empty_api: Api, tmp_path: Path) -> None:
    repo, sha = make_example_repo(examples_root() / "baseline", tmp_path / "repos" / "baseline")
    same_tree, same_sha = make_example_repo(examples_root() / "baseline", tmp_path / "repos" / "same")
    disguised = disguised_copy(examples_root() / "baseline", tmp_path / "disguised")
    copy_repo, copy_sha = make_example_repo(disguised, tmp_path / "repos" / "disguised")
    operator = empty_api.auth("operator")
    with empty_api.client() as client:
        first = client.post("/v1/competitors", json={"name": "baseline", "repo": str(repo), "commit": sha}, headers=operator)
        assert first.status_code == 201, first.text
        assert (first.json()["similar_to"], first.json()["copy_flag"], first.json()["warnings"]) == (None, None, [])

        exact = client.post("/v1/competitors", json={"name": "mallory", "repo": str(same_tree), "commit": same_sha},
                            headers=operator)  # fmt: skip
        assert exact.status_code == 422
        assert exact.json()["error"]["code"] == "registration_refused"
        assert "same tree (identical files) as competitor 'baseline'" in exact.json()["error"]["message"]

        near = client.post("/v1/competitors", json={"name": "eve", "repo": str(copy_repo), "commit": copy_sha}, headers=operator)
        assert near.status_code == 201, near.text
        body = near.json()
        assert body["similar_to"] == "baseline" and body["similarity"] >= 0.8 and body["copy_flag"] == "near_duplicate"
        assert body["copies"] == []
        assert body["warnings"] and body["warnings"][0].startswith("eve is flagged for the operator as a near-duplicate")

        listed = client.get("/v1/competitors", headers=empty_api.auth("competitor")).json()["data"]
        assert [(row["name"], row["copy_flag"]) for row in listed] == [("baseline", None), ("eve", "near_duplicate")]
        shown = client.get("/v1/competitors/eve", headers=empty_api.auth("competitor")).json()
        assert (shown["similar_to"], shown["similarity"]) == ("baseline", body["similarity"])


def test_registering_head_of_a_dirty_tree_on_the_server_warns_as_the_cli_does(empty_api: Api, tmp_path: Path) -> None:
    """An operator's key may name a working tree on the server: its uncommitted edits are left out of the
    registered commit, and the response's warnings say so (the check is the registration's, not the CLI's)."""
    repo, sha = make_example_repo(examples_root() / "baseline", tmp_path / "repos" / "baseline")
    (repo / "train.py").write_text("print('edited, not committed')\n")
    (repo / "notes.txt").write_text("new file\n")
    with empty_api.client() as client:
        added = client.post("/v1/competitors", json={"name": "alice", "repo": str(repo), "commit": sha},
                            headers=empty_api.auth("operator"))  # fmt: skip
    assert added.status_code == 201, added.text
    assert added.json()["commit"] == sha
    (warning,) = added.json()["warnings"]
    assert warning.startswith(f"alice is the commit {sha[:12]} without the uncommitted changes of {repo}: ")
    assert "train.py" in warning and "notes.txt" in warning and warning.endswith("(e.g. alice-v2)")
