"""Which repositories name another host (what a competitor's API key may register) and which name
this machine (operators only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainarena.submissions.git import is_remote_repo


@pytest.mark.parametrize("repo", ["https://github.com/x/y.git", "ssh://git@host/x/y", "git@github.com:x/y.git", " HTTPS://h/x "])
def test_urls_of_other_hosts_are_remote(repo: str) -> None:
    assert is_remote_repo(repo)


@pytest.mark.parametrize("repo", ["/srv/private-repo", "file:///srv/private-repo", "FILE:///x", "./here", "here", "~/repo"])
def test_paths_and_file_urls_are_local(repo: str) -> None:
    assert not is_remote_repo(repo)


def test_a_local_folder_that_looks_like_host_colon_path_is_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user@host:repo").mkdir()
    assert not is_remote_repo("user@host:repo")
