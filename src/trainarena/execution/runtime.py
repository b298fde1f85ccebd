"""The pinned training environment scripts run with, and the pieces every backend builds alike.

Scripts are started with the platform's training interpreter (``SandboxRules.python``, by default the
interpreter of the virtualenv the platform itself runs in), never with whatever ``python`` a PATH
would find: the contract's "python" in ``RunSpec.argv`` is replaced by that interpreter's path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from trainarena.contract import script_environment
from trainarena.execution.base import SandboxJob
from trainarena.settings import SandboxRules

_PREFIX_PROBE = "import json, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]))"


class SandboxUnavailable(RuntimeError):
    """The configured backend cannot run here; the message says what to install or configure."""


@dataclass(frozen=True)
class TrainingPython:
    """An interpreter and the directories it needs to start (its prefixes, the real file it links to)."""

    executable: Path
    needed_dirs: tuple[Path, ...]


def training_python(rules: SandboxRules) -> TrainingPython:
    """Resolve the training interpreter and ask it (once) for its prefixes."""
    executable = Path(rules.python) if rules.python else Path(sys.prefix) / "bin" / "python"
    if not executable.exists():
        raise SandboxUnavailable(
            f"training interpreter {executable} does not exist; set TRAINARENA_SANDBOX__PYTHON to the "
            "python of the pinned training environment"
        )
    probe = subprocess.run(
        [str(executable), "-I", "-c", _PREFIX_PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        raise SandboxUnavailable(f"training interpreter {executable} failed to start: {probe.stderr.strip()}")
    prefixes = {Path(p) for p in json.loads(probe.stdout)}
    real_dir = executable.resolve().parent
    if not any(real_dir.is_relative_to(p) for p in prefixes):
        prefixes.add(real_dir)
    return TrainingPython(executable, tuple(sorted(prefixes)))


def script_argv(job: SandboxJob, python: Path) -> list[str]:
    """The contract's command line with "python" replaced by the training interpreter."""
    argv = job.spec.argv(job.entrypoint)
    return [str(python), *argv[1:]]


def script_env(job: SandboxJob) -> tuple[float, dict[str, str]]:
    """The start time the deadline counts from, and the script's whole environment."""
    started_at = time.time()
    env = script_environment(job.spec, started_at + job.spec.budget_seconds)
    env.update(job.extra_env)
    return started_at, env


def check_hidden(sources: list[Path], protected: tuple[Path, ...]) -> None:
    """Refuse a mount plan that would expose a protected path (the hidden split, other runs, a secret file)."""
    for source in sources:
        resolved = source.resolve()
        for guarded in protected:
            guarded = guarded.resolve()
            if guarded == resolved or guarded.is_relative_to(resolved):
                raise SandboxUnavailable(
                    f"refusing to bind {source} into the sandbox: it contains the protected path {guarded} (the "
                    "data directory or a secret file the settings name); move the training environment and that "
                    "path apart"
                )
