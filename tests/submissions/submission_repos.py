"""Helpers of the submissions tests: tiny git repositories built in tmp with the git CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

MANIFEST = '[trainarena]\ncontract = 1\nentrypoint = "train.py"\ntask_types = ["instruct"]\n'
TRAIN_PY = '''"""Train a model."""
import sys

# read the arguments
def main(argv):
    """Entry point."""
    return len(argv)  # count them


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


class RepoFactory:
    """Makes a git repository whose commits are given as {path: content} dicts."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, files: dict[str, str | bytes] | None = None, *, name: str = "repo") -> tuple[Path, str]:
        repo = self.root / name
        repo.mkdir(parents=True)
        git(repo, "init", "--quiet", "--initial-branch=main")
        files = {"trainarena.toml": MANIFEST, "train.py": TRAIN_PY} if files is None else files
        return repo, self.commit(repo, files, message=f"initial commit of {name}")

    def commit(self, repo: Path, files: dict[str, str | bytes], message: str = "change") -> str:
        for relative, content in files.items():
            path = repo / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        git(repo, "add", "--all")
        git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
        return git(repo, "rev-parse", "HEAD")
