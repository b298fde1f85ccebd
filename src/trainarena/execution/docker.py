"""``DockerBackend``: the same contract in a locally built container (docker/runtime.Dockerfile).

Each run is ``docker run --rm`` with no network, every capability dropped, no-new-privileges, a
read-only root filesystem, a private /tmp tmpfs of ``tmp_max_mb``, memory (swap included), process
(``--pids-limit``) and CPU caps (the container's cgroup), every file capped at ``output_max_mb``
(``--ulimit fsize``) and /output's total measured while it runs (``execution.disk``), only the
assigned GPUs, the nobody user, and the run's three directories mounted as in the contract. The
container's init (``--init``) ends with the script, and the container with it, so no process outlives
the run. At the deadline ``docker kill --signal TERM``, after the grace period ``docker kill``.

Covers what the bwrap backend covers, with the memory cap applied to the container as a whole (a
cgroup). Does not cover: a compromised Docker daemon or kernel; the daemon's own resources (image
pulls are impossible anyway: the image must be built locally and is never pulled, ``--pull never``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid

from trainarena.contract import SANDBOX_INPUTS, SANDBOX_OUTPUT, SANDBOX_SUBMISSION
from trainarena.execution.base import RunResult, SandboxJob
from trainarena.execution.disk import MB
from trainarena.execution.limits import output_cap
from trainarena.execution.runtime import SandboxUnavailable, script_env
from trainarena.execution.supervise import Launch, supervise
from trainarena.settings import SandboxRules

# The interpreter of the pinned training environment inside the image; docker/runtime.Dockerfile
# creates the virtualenv at exactly this path.
IMAGE_PYTHON = "/opt/trainarena/venv/bin/python"


def find_docker() -> str:
    path = shutil.which("docker")
    if path is None:
        raise SandboxUnavailable("the docker backend needs the docker CLI and a running daemon; install Docker "
                                 "or use the default bwrap backend")
    return path


def docker_available(docker: str = "docker") -> bool:
    """True when a Docker daemon answers (``docker info`` succeeds)."""
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class DockerBackend:
    name = "docker"

    def __init__(self, rules: SandboxRules, docker: str | None = None) -> None:
        self._rules = rules
        self._docker = docker or find_docker()

    def docker_argv(self, job: SandboxJob, env: dict[str, str], container: str) -> list[str]:
        """The full ``docker run`` command line for ``job`` (tests assert on it)."""
        memory = f"{job.memory_limit_mb}m"
        rules = self._rules
        uid = str(rules.sandbox_uid)
        argv = [self._docker, "run", "--rm", "--init", "--pull", "never", "--name", container,
                "--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--read-only", "--tmpfs", f"/tmp:rw,nosuid,nodev,size={rules.tmp_max_mb}m",
                "--memory", memory, "--memory-swap", memory, "--pids-limit", str(rules.max_processes),
                "--ulimit", f"fsize={rules.output_max_mb * MB}", "--user", f"{uid}:{uid}"]
        if self._rules.cpus_per_run:
            argv += ["--cpus", str(self._rules.cpus_per_run)]
        if job.spec.devices:
            # The quotes are part of the value: docker parses --gpus as CSV.
            argv += ["--gpus", '"device=' + ",".join(str(d) for d in job.spec.devices) + '"']
        argv += ["-v", f"{job.submission_dir.resolve()}:{SANDBOX_SUBMISSION}:ro",
                 "-v", f"{job.inputs_dir.resolve()}:{SANDBOX_INPUTS}:ro",
                 "-v", f"{job.output_dir.resolve()}:{SANDBOX_OUTPUT}:rw",
                 "-w", str(SANDBOX_SUBMISSION)]
        for key, value in sorted(_container_env(job, env).items()):
            argv += ["-e", f"{key}={value}"]
        argv += [self._rules.docker_image, IMAGE_PYTHON, *job.spec.argv(job.entrypoint)[1:]]
        return argv

    def run(self, job: SandboxJob) -> RunResult:
        job.output_dir.mkdir(parents=True, exist_ok=True)
        started_at, env = script_env(job)
        container = f"trainarena-{job.spec.run_id}-{uuid.uuid4().hex[:8]}"
        launch = Launch(
            argv=self.docker_argv(job, env, container), env=_client_env(), cwd=None, log_dir=job.log_dir,
            budget_seconds=job.spec.budget_seconds, grace_seconds=job.grace_seconds,
            log_max_bytes=job.log_max_bytes, log_tail_chars=self._rules.log_tail_chars,
            disk_caps=(output_cap(job, self._rules),),
            disk_check_seconds=self._rules.disk_check_seconds,
        )
        return supervise(launch, lambda _proc: _ContainerTerminator(self._docker, container, self._rules), started_at)

    def close(self) -> None:
        """Nothing is held between runs."""


def _container_env(job: SandboxJob, env: dict[str, str]) -> dict[str, str]:
    """Inside the container the assigned GPUs are renumbered 0..n-1."""
    env = dict(env)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(job.spec.devices)))
    return env


def _client_env() -> dict[str, str]:
    """The docker CLI's own environment: how to reach the daemon, nothing else of the platform's."""
    keep = {key: value for key, value in os.environ.items() if key.startswith("DOCKER_")}
    keep["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    if "HOME" in os.environ:
        keep["HOME"] = os.environ["HOME"]  # the CLI reads its config from ~/.docker
    return keep


class _ContainerTerminator:
    def __init__(self, docker: str, container: str, rules: SandboxRules) -> None:
        self._docker = docker
        self._container = container
        self._timeout = rules.start_timeout_seconds

    def _kill(self, *signal_args: str) -> None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([self._docker, "kill", *signal_args, self._container],
                           capture_output=True, timeout=self._timeout, check=False)

    def terminate(self) -> None:
        self._kill("--signal", "TERM")

    def kill(self) -> None:
        self._kill()
