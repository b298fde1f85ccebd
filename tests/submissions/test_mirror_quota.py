"""One key's repository mirrors (registration.mirror_quota_bytes): a registration whose mirror would take
the key past the limit is refused naming its usage and the limit, and leaves no clone behind; keys are
charged apart; an unlimited key (an operator's, the CLI's: None) and a limit of 0 register as ever."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from submission_repos import RepoFactory, git

from trainarena.settings import Settings
from trainarena.submissions import git as submissions_git
from trainarena.submissions.mirror_quota import MirrorQuotaExceeded, mirror_usage
from trainarena.submissions.registration import register, repo_mirror_path

BULK = 3_000_000  # random bytes on a side branch: in the mirror, not in the registered tree


def bulky_repo(make_repo: RepoFactory, name: str) -> tuple[Path, str]:
    """A repository whose registered commit is small and whose mirror is not (another branch holds BULK)."""
    repo, sha = make_repo(name=name)
    git(repo, "checkout", "--quiet", "-b", "bulk")
    make_repo.commit(repo, {"blob.bin": os.urandom(BULK)}, message="bulk")
    git(repo, "checkout", "--quiet", "main")
    return repo, sha


def quota_settings(settings: Settings, limit: int) -> Settings:
    return settings.model_copy(update={"registration": settings.registration.model_copy(update={"mirror_quota_bytes": limit})})


def leftovers(settings: Settings) -> list[str]:
    mirrors = settings.cache_dir / "repos"
    return sorted(p.name for p in mirrors.iterdir()) if mirrors.is_dir() else []


def test_a_mirror_past_the_keys_room_is_refused_and_removed(settings: Settings, make_repo: RepoFactory) -> None:
    small, small_sha = make_repo(name="small")
    bulky, bulky_sha = bulky_repo(make_repo, "bulky")
    limited = quota_settings(settings, 1_000_000)
    register(limited, name="small", repo=str(small), commit=small_sha, quota_key=7)
    used = mirror_usage(limited, 7)
    assert 0 < used == submissions_git.folder_bytes(repo_mirror_path(limited, small.resolve().as_uri()))
    with pytest.raises(MirrorQuotaExceeded) as refused:
        register(limited, name="bulky", repo=str(bulky), commit=bulky_sha, quota_key=7)
    message = str(refused.value)
    assert "registration.mirror_quota_bytes" in message and f"{1_000_000:,} bytes" in message and f"{used:,} bytes" in message
    assert refused.value.details["used_bytes"] == used and refused.value.details["limit_bytes"] == 1_000_000
    assert refused.value.details["mirror_bytes"] > 1_000_000 - used
    assert leftovers(limited) == [repo_mirror_path(limited, small.resolve().as_uri()).name]  # no clone, no staging
    assert mirror_usage(limited, 7) == used
    register(limited, name="small-8", repo=str(small), commit=small_sha, quota_key=8)  # one mirror, charged to each key using it
    assert mirror_usage(limited, 8) == used


def test_a_key_past_its_limit_is_refused_before_any_fetch(settings: Settings, make_repo: RepoFactory) -> None:
    small, small_sha = make_repo(name="small")
    other, other_sha = make_repo(name="other")
    register(settings, name="small", repo=str(small), commit=small_sha, quota_key=7)
    full = quota_settings(settings, mirror_usage(settings, 7))
    with pytest.raises(MirrorQuotaExceeded, match="this repository's took 0"):
        register(full, name="other", repo=str(other), commit=other_sha, quota_key=7)
    assert len(leftovers(full)) == 1
    register(full, name="small-again", repo=str(small), commit=small_sha, quota_key=7)  # its own mirror again: no more disk


def test_unlimited_keys_and_a_limit_of_0_register_as_ever(settings: Settings, make_repo: RepoFactory) -> None:
    bulky, bulky_sha = bulky_repo(make_repo, "bulky")
    register(quota_settings(settings, 1_000), name="bulky", repo=str(bulky), commit=bulky_sha, quota_key=None)
    register(quota_settings(settings, 0), name="bulky", repo=str(bulky), commit=bulky_sha, quota_key=7)
    assert mirror_usage(settings, 7) > BULK


def test_a_clone_is_stopped_once_it_passes_its_bound(settings: Settings, make_repo: RepoFactory) -> None:
    bulky, _sha = bulky_repo(make_repo, "bulky")
    mirror = settings.cache_dir / "repos" / "bulky"
    with pytest.raises(submissions_git.MirrorTooLarge) as stopped:
        submissions_git.fetch_mirror(bulky.as_uri(), mirror, "0" * 40, timeout=60, max_bytes=100_000)
    assert stopped.value.size > 100_000
    assert not mirror.exists() and leftovers(settings) == []


def test_a_fetch_into_a_keys_mirror_is_stopped_at_its_room(
    settings: Settings, make_repo: RepoFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Polled often so that the fetch is caught while it writes; every poll past the room stops it.
    monkeypatch.setattr(submissions_git, "WATCH_SECONDS", 0.01)
    repo, first = make_repo(name="grows")
    limited = quota_settings(settings, 1_000_000)
    register(limited, name="grows", repo=str(repo), commit=first, quota_key=7)
    mirror = repo_mirror_path(limited, repo.resolve().as_uri())
    before = submissions_git.folder_bytes(mirror)
    grown = make_repo.commit(repo, {"blob.bin": os.urandom(8 * BULK)}, message="grown past the room")
    with pytest.raises(MirrorQuotaExceeded):
        register(limited, name="grown", repo=str(repo), commit=grown, quota_key=7)
    assert submissions_git.folder_bytes(mirror) == before  # the stopped fetch's pack is gone
    assert not submissions_git.has_commit(mirror, grown, timeout=60)  # stopped during the fetch, not after it
    assert submissions_git.has_commit(mirror, first, timeout=60)
    register(limited, name="grows-again", repo=str(repo), commit=first, quota_key=7)  # the mirror still serves it
