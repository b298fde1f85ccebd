"""Copy detection across registrations: same tree under another name, same source with new comments."""

from __future__ import annotations

from submission_repos import MANIFEST, TRAIN_PY, RepoFactory

from trainarena.settings import Settings
from trainarena.submissions import CopyMatch, find_copies, register


def test_same_tree_under_another_name_is_a_tree_copy(settings: Settings, make_repo: RepoFactory) -> None:
    original_repo, original_sha = make_repo(name="original")
    copy_repo, copy_sha = make_repo(name="copy")  # same files, different repository and commit
    original = register(settings, name="alice", repo=str(original_repo), commit=original_sha)

    copy = register(settings, name="mallory", repo=str(copy_repo), commit=copy_sha)

    assert copy.commit != original.commit
    assert copy.tree_hash == original.tree_hash
    assert find_copies(copy, [original]) == [
        CopyMatch(kind="tree_hash", other_name="alice", other_commit=original.commit)
    ]
    # Its repository (a folder on the server here) is not named to the key that registers.
    assert str(original.repo_url) not in find_copies(copy, [original])[0].message


def test_same_source_with_other_comments_is_a_source_copy(settings: Settings, make_repo: RepoFactory) -> None:
    original_repo, original_sha = make_repo(name="original")
    disguised = "# my very own trainer\n" + TRAIN_PY.replace("# count them", "# how many").replace("    ", "  ")
    copy_repo, copy_sha = make_repo(
        {"trainarena.toml": MANIFEST + "# mine\n", "my_train.py": disguised, "README.md": "mine"}, name="copy"
    )
    copy_repo_manifest = (copy_repo / "trainarena.toml").read_text().replace("train.py", "my_train.py")
    copy_sha = make_repo.commit(copy_repo, {"trainarena.toml": copy_repo_manifest})
    original = register(settings, name="alice", repo=str(original_repo), commit=original_sha)

    copy = register(settings, name="mallory", repo=str(copy_repo), commit=copy_sha)

    assert copy.tree_hash != original.tree_hash
    assert copy.source_digest == original.source_digest
    matches = find_copies(copy, [original])
    assert [m.kind for m in matches] == ["source_digest"]
    assert "alice" in matches[0].message


def test_different_code_is_not_a_copy(settings: Settings, make_repo: RepoFactory) -> None:
    original_repo, original_sha = make_repo(name="original")
    other_repo, other_sha = make_repo(
        {"trainarena.toml": MANIFEST, "train.py": TRAIN_PY.replace("len(argv)", "len(argv) + 1")}, name="other"
    )
    original = register(settings, name="alice", repo=str(original_repo), commit=original_sha)
    other = register(settings, name="bob", repo=str(other_repo), commit=other_sha)

    assert find_copies(other, [original]) == []
    assert find_copies(original, [original]) == []  # a competitor is not its own copy
