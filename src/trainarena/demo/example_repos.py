"""Turn an ``examples/competitors/<name>`` directory into a local git repository with one commit.

Used by the tests, the benchmarks and the demo to register example competitors as ``repo@commit``
without a network.
The author, committer and dates are fixed, so the same directory always gives the same commit hash.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

_FIXED_IDENTITY = {
    "GIT_AUTHOR_NAME": "trainarena examples",
    "GIT_AUTHOR_EMAIL": "examples@trainarena.invalid",
    "GIT_COMMITTER_NAME": "trainarena examples",
    "GIT_COMMITTER_EMAIL": "examples@trainarena.invalid",
    "GIT_AUTHOR_DATE": "2025-01-01T00:00:00+0000",
    "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+0000",
}
# No user or system git config may change the commit (signing, hooks, default branch, autocrlf).
_ISOLATED = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "PATH": "/usr/bin:/bin"}


def _git(repo: Path, *args: str) -> str:
    env = {**_ISOLATED, **_FIXED_IDENTITY}
    if path := shutil.which("git"):
        env["PATH"] = str(Path(path).parent) + ":" + env["PATH"]
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def make_example_repo(src: Path, dest: Path) -> tuple[Path, str]:
    """Copy ``src`` to ``dest`` (must not exist), commit everything once; return (repo, 40-hex commit).
    The repository is made in a staging folder beside ``dest`` and renamed into place once committed,
    so ``dest`` never exists without its commit (a process killed midway leaves a ``.staging-*``
    folder, which nothing reads)."""
    if dest.exists():
        raise FileExistsError(f"{dest} already exists; pass a fresh path")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{dest.name}-", dir=dest.parent))
    try:
        repo = staging / dest.name
        # The example's files alone: no caches, nor any git metadata that would make a history of its own.
        shutil.copytree(src, repo, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc"))
        commit = commit_as_repository(repo, f"example competitor {src.name}")
        repo.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest, commit


def commit_as_repository(folder: Path, message: str) -> str:
    """Make ``folder`` a git repository of its own whose one commit holds all its files; return the
    commit (40 hex). What `demo --examples` registers of a competitor's folder is such a commit."""
    _git(folder, "init", "--quiet", "--initial-branch=main")
    _git(folder, "add", "--all")
    _git(folder, "commit", "--quiet", "--no-gpg-sign", "--no-verify", "-m", message)
    return _git(folder, "rev-parse", "HEAD")


def example_commit(repo: Path) -> str | None:
    """The commit of the example repository at ``repo``, or None when it is not one: no ``.git`` of its
    own (git would answer for a repository around it, such as a checkout holding the data dir) or no
    commit (an older version killed midway through :func:`make_example_repo`)."""
    if not (repo / ".git").is_dir():
        return None
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except RuntimeError:
        return None
