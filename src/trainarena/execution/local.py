"""``LocalUnsafeBackend``: a plain subprocess, NO isolation. For trusted code on a developer's machine.

The script gets the same contract with host paths in place of /submission, /inputs and /output (its
argv is rewritten) and a private scratch directory in place of /tmp. It keeps the budget (SIGTERM to
its process group at the deadline, SIGKILL after the grace period), the memory, process and CPU caps
of ``execution.limits`` and the disk caps of ``execution.disk`` (/output and the scratch directory
measured while it runs), but it can read and write anything the platform's user can and reach the
network; a daemon that calls setsid() escapes its process group, and is caught only where the host
gives the run a cgroup (every process left in it is killed after the run). It is constructed only
when ``SandboxRules.allow_unsafe`` is set or the operator passes ``--unsafe``, and warns every time
it is built.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import warnings
from pathlib import Path

from trainarena.contract import SANDBOX_INPUTS, SANDBOX_OUTPUT, SANDBOX_SUBMISSION
from trainarena.execution.base import RunResult, SandboxJob
from trainarena.execution.cgroups import CgroupLayout, detect_layout
from trainarena.execution.disk import MB, DiskCap
from trainarena.execution.limits import confine_job, output_cap, write_sandbox_log
from trainarena.execution.runtime import TrainingPython, script_argv, script_env, training_python
from trainarena.execution.supervise import Launch, supervise
from trainarena.settings import SandboxRules

UNSAFE_WARNING = (
    "LocalUnsafeBackend runs competitor scripts WITHOUT A SANDBOX: they can read the hidden test split, "
    "use the network and leave processes behind. Use it only for code you trust."
)


class UnsafeBackendWarning(RuntimeWarning):
    """Emitted whenever the unsandboxed backend is built."""


def host_path(sandbox_value: str, job: SandboxJob) -> str:
    """Rewrite one argv item or env value from a sandbox path to the job's host path."""
    mapping = (
        (str(SANDBOX_SUBMISSION), job.submission_dir),
        (str(SANDBOX_INPUTS), job.inputs_dir),
        (str(SANDBOX_OUTPUT), job.output_dir),
    )
    for sandbox_root, host_root in mapping:
        if sandbox_value == sandbox_root or sandbox_value.startswith(sandbox_root + "/"):
            return str(host_root.resolve()) + sandbox_value[len(sandbox_root):]
    return sandbox_value


class LocalUnsafeBackend:
    name = "local-unsafe"

    def __init__(self, rules: SandboxRules, log_tail_chars: int | None = None, cgroups: CgroupLayout | None = None) -> None:
        warnings.warn(UNSAFE_WARNING, UnsafeBackendWarning, stacklevel=2)
        self._cgroups = detect_layout(rules.cgroup_parent) if cgroups is None else cgroups
        self._rules = rules
        self._python: TrainingPython = training_python(rules)
        self._tail_chars = log_tail_chars or rules.log_tail_chars

    def run(self, job: SandboxJob) -> RunResult:
        job.output_dir.mkdir(parents=True, exist_ok=True)
        rules = self._rules
        output = output_cap(job, rules)
        # The run's leftovers are killed (leaving confine) before its scratch directory is removed.
        with tempfile.TemporaryDirectory(prefix=f"trainarena-{job.spec.run_id}-") as scratch, \
                confine_job(job, rules, output, self._cgroups) as confinement:
            started_at, env = script_env(job)
            env = {key: _scratch(host_path(value, job), scratch) for key, value in env.items()}
            argv = [host_path(item, job) for item in script_argv(job, self._python.executable)]
            tmp = DiskCap("/tmp", Path(scratch), rules.tmp_max_mb * MB)
            launch = Launch(
                argv=argv, env=env, cwd=job.submission_dir, log_dir=job.log_dir,
                budget_seconds=job.spec.budget_seconds, grace_seconds=job.grace_seconds,
                log_max_bytes=job.log_max_bytes, log_tail_chars=self._tail_chars, preexec=confinement.preexec(),
                disk_caps=(output, tmp), disk_check_seconds=rules.disk_check_seconds,
            )
            write_sandbox_log(job, "local-unsafe", confinement, f"measured-every-{rules.disk_check_seconds:g}s:{tmp.max_bytes}",
                              output, rules.disk_check_seconds)
            return confinement.explain(supervise(launch, _GroupTerminator, started_at))

    def close(self) -> None:
        """Nothing is held between runs."""


def _scratch(value: str, scratch: str) -> str:
    """The contract's /tmp (HOME, TMPDIR, HF_HOME) becomes the run's private host scratch dir."""
    if value == "/tmp" or value.startswith("/tmp/"):
        return scratch + value[len("/tmp"):]
    return value


class _GroupTerminator:
    """Signals the run's process group (a setsid'd daemon escapes it: this backend is unsafe)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._pgid = proc.pid

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pgid, signal.SIGTERM)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pgid, signal.SIGKILL)

