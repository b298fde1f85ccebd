"""`python -m trainarena` runs the CLI (it said the package cannot be directly executed), as
`python -m trainarena.cli` does and as the README and the helpers' notes write it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import trainarena

SOURCE = Path(trainarena.__file__).parents[1]


@pytest.mark.parametrize("module", ["trainarena", "trainarena.cli"])
def test_python_m_runs_the_cli(module: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SOURCE), "TRAINARENA_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "100"}
    done = subprocess.run([sys.executable, "-m", module, "verify", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr  # the CLI's own error, not python's "cannot be directly executed"
    assert done.stderr.strip() == f"error: bundle {tmp_path / 'nowhere'}: no such folder"
    shown = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=120)
    assert shown.returncode == 0 and f"python -m {module}" in shown.stdout and "demo" in shown.stdout
