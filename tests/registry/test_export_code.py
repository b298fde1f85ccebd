"""Open-sourcing a champion: the registered tree written to a folder, checked against the tree hash and
source digest recorded at registration; the license read from it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from registry_data import MIT_TEXT, git, register_repo

from trainarena.registry import ExportError, export_code
from trainarena.registry.source import git_tree_hash
from trainarena.settings import Settings
from trainarena.store import get_competitor, open_store
from trainarena.submissions import checkout_path

FILES = {"LICENSE": MIT_TEXT, "pkg/util.py": "X = 1\n", "pkg/run.sh": "#!/bin/sh\necho hi\n", "link.py": "-> pkg/util.py",
         "pkg/deep/a.txt": "a", "pkg-b.txt": "sorted after pkg/ by git"}  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return Settings()


def _registered(settings: Settings):
    repo, commit = register_repo(settings, "alice", FILES)
    with open_store(settings) as store, store.session() as session:
        competitor = get_competitor(session, "alice")
        session.expunge(competitor)
    return repo, commit, competitor


def test_the_git_tree_hash_is_gits_own(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("print(1)\n")
    (repo / "tool").write_text("#!/bin/sh\n")
    (repo / "tool").chmod(0o755)
    (repo / "sub").mkdir()
    (repo / "sub" / "b.txt").write_text("b")
    (repo / "sub.txt").write_text("after sub/ in git's order, before it in plain byte order")
    (repo / "link").symlink_to("a.py")
    (repo / "empty").mkdir()
    git(repo, "init", "--quiet")
    git(repo, "add", "--all")
    assert git_tree_hash(repo / "sub") != git_tree_hash(repo)
    shutil.rmtree(repo / ".git")
    expected = _git_write_tree(repo, tmp_path)
    assert git_tree_hash(repo) == expected


def _git_write_tree(tree: Path, tmp_path: Path) -> str:
    index = tmp_path / "git-dir"
    git(tmp_path, "init", "--quiet", "--bare", str(index))
    env = f"--git-dir={index}"
    git(tree, env, f"--work-tree={tree}", "add", "--all")
    return git(tree, env, f"--work-tree={tree}", "write-tree")


def test_export_code_writes_the_registered_tree_and_verifies_it(settings: Settings, tmp_path: Path) -> None:
    _, commit, competitor = _registered(settings)
    exported = export_code(settings, competitor, tmp_path / "out")
    assert exported.verified and exported.tree_hash == competitor.tree_hash
    assert exported.source_digest == competitor.source_digest
    assert (tmp_path / "out" / "LICENSE").read_text() == MIT_TEXT and (tmp_path / "out" / "link.py").is_symlink()
    assert exported.files == 8 and os.access(tmp_path / "out" / "pkg" / "run.sh", os.X_OK) and exported.source.license.describe() == "mit (LICENSE)"
    assert exported.to_json()["pinned"].endswith(f"@{commit}")


def test_a_changed_cache_is_caught_and_a_lost_one_is_fetched_again(settings: Settings, tmp_path: Path) -> None:
    _, commit, competitor = _registered(settings)
    cached = checkout_path(settings, commit)
    (cached / "pkg" / "util.py").write_text("X = 2\n")
    tampered = export_code(settings, competitor, tmp_path / "tampered")
    assert not tampered.tree_matches and not tampered.digest_matches and not tampered.verified

    shutil.rmtree(cached)
    fetched = export_code(settings, competitor, tmp_path / "fetched")
    assert fetched.verified and (tmp_path / "fetched" / "pkg" / "util.py").read_text() == "X = 1\n"


def test_export_code_refuses_a_non_empty_folder_and_a_gone_repository(settings: Settings, tmp_path: Path) -> None:
    repo, commit, competitor = _registered(settings)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="exists and is not an empty folder"):
        export_code(settings, competitor, tmp_path / "full")
    shutil.rmtree(checkout_path(settings, commit))
    shutil.rmtree(repo)
    shutil.rmtree(settings.cache_dir / "repos")
    with pytest.raises(ExportError, match="is not cached and cannot be fetched again") as gone:
        export_code(settings, competitor, tmp_path / "nowhere")
    assert str(repo) not in str(gone.value)  # the reason reaches competitors' keys: the server's folder is not named
