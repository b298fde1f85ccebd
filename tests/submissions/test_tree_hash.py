"""The Python git tree id matches git's own (files, executables, links, nesting, git's sort order)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from trainarena.submissions.tree_hash import git_tree_hash


def test_git_tree_hash_is_gits_own(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg" / "deep").mkdir(parents=True)
    (repo / "train.py").write_text("print(1)\n")
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "pkg" / "deep" / "a.txt").write_text("a")
    (repo / "pkg.txt").write_text("sorted before pkg/ in git's order")
    (repo / "link").symlink_to("train.py")
    git = ["git", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    expected = subprocess.run([*git, "write-tree"], check=True, capture_output=True, text=True).stdout.strip()
    shutil.rmtree(repo / ".git")
    (repo / "empty").mkdir()  # git keeps no empty folders
    assert git_tree_hash(repo) == expected
