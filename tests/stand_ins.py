"""Stand-in competitors for tests that play the demo through the real sandbox: a script that hands
back the base model unchanged (a valid artifact whose score is the base model's own loss), finished
in a second where the real example scripts train for tens of seconds."""

from __future__ import annotations

import textwrap
from pathlib import Path

from trainarena.demo.example_repos import commit_as_repository

COPIER = textwrap.dedent(
    """
    import argparse, shutil
    parser = argparse.ArgumentParser()
    parser.add_argument("--model"); parser.add_argument("--output-dir")
    args, _ = parser.parse_known_args()
    shutil.copytree(args.model, args.output_dir, dirs_exist_ok=True)
    """
)
MANIFEST = '[trainarena]\ncontract = 1\nentrypoint = "train.py"\ntask_types = ["instruct"]\n'


def copier(folder: Path) -> None:
    """A copier competitor in ``folder`` (created), named after it: a git repository with one commit."""
    folder.mkdir(parents=True)
    # Its own name in the code: two identical trees would be refused as exact copies (docs/rules.md, "Copies").
    (folder / "train.py").write_text(COPIER + f"STAND_IN_FOR = {folder.name!r}\n")
    (folder / "trainarena.toml").write_text(MANIFEST)
    commit_as_repository(folder, f"stand-in {folder.name}")  # `demo --examples` plays git repositories
