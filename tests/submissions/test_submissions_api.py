"""The public surface of trainarena.submissions and its place in the layers."""

from __future__ import annotations

import subprocess
import sys

import trainarena.submissions as submissions


def test_all_names_resolve_and_are_the_public_surface() -> None:
    assert submissions.__all__ == sorted(submissions.__all__)
    for name in submissions.__all__:
        assert getattr(submissions, name) is not None
    public = {n for n in vars(submissions) if not n.startswith("_")}
    modules = {"copies", "digest", "errors", "git", "manifest", "mirror_quota", "registration", "seal", "service", "similarity", "tree_hash", "worktree"}  # submodules, once imported
    assert public - modules == set(submissions.__all__)


def test_registration_does_not_import_the_store_or_the_cli() -> None:
    probe = (
        "import sys, trainarena.submissions; "
        "print(sorted(m for m in sys.modules if m.startswith(('trainarena.store', 'trainarena.cli', "
        "'trainarena.orchestrator', 'sqlalchemy', 'torch'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
