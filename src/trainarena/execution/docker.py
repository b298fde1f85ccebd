"""``DockerBackend``: the same contract and the same mount plan as bwrap, in a Docker container.

Each run is one ``docker run`` of the host runtime image (``execution.docker_image``: an empty root
with, bound read-only, /usr, bwrap's /etc entries and the pinned training interpreter's prefixes),
or of an operator's self-contained image (``SandboxRules.docker_image``, docker/runtime.Dockerfile).

What it protects against (the adversarial tests in tests/execution/ run against both backends):
- Network: ``--network none``: a loopback only, no route, no DNS.
- Reading what it should not: only the binds above and the run's /submission (ro), /inputs (ro) and
  /output (rw); a mount plan that would expose the data directory or a secret file the settings name
  (signing key, split secret, SQLite store) is refused before anything starts.
  The inputs (hard links into the platform's caches) are opened to the container's group only, never
  to every user of the host (``share_inputs``).
- Writing outside /output: ``--read-only`` root, every bind read-only but /output; /tmp (and
  /dev/shm, in a private IPC namespace) are private tmpfs of ``tmp_max_mb``.
- Privilege: ``--user`` ``sandbox_uid`` (nobody; the platform's own uid when it is not root),
  ``--cap-drop ALL``, ``no-new-privileges``. With ``sandbox.run_as_pool`` (a root platform) each
  container is a host uid of its own instead, the gid staying ``sandbox_uid``: leased as bwrap's
  sandboxes lease theirs (``execution.uid_pool``), from before ``docker run`` until the container is
  removed (one docker failed to remove keeps its uid until ``close`` removes it, or the platform ends),
  so two live containers cannot signal, trace or write into each other after an escape. A
  platform that dies loses its leases with it while its containers live on: a run that leases a uid
  first removes the containers of dead platforms (``remove_leftovers``), which may hold it. All of
  this needs a container's uid to be that host uid: a daemon that remaps user namespaces is refused
  at start (:func:`userns_refusal`).
- Memory (swap included), processes and threads (``--pids-limit``: the init counts, as bwrap's two
  processes do), CPU (``--cpus``): the container's cgroup; the run's
  processes get ``nice`` added, as under bwrap; every file at ``output_max_mb`` (``--ulimit fsize``) and /output's total
  measured while it runs (``execution.disk``). Only the assigned GPUs (``--gpus device=...``).
- Outliving its budget: at the deadline ``docker kill --signal TERM`` (the init, tini, passes it to
  the script's process group: its children too, not a setsid'd daemon), after the grace period
  ``docker kill`` (SIGKILL to the init: the kernel kills everything in the container's PID namespace,
  setsid'd daemons included). A script that ends in time takes its daemons along the same way.
  The container is removed after every run. A platform that dies mid-run cannot stop its containers
  (``docker run`` does not end its container with the client): they carry its name in a label, and
  ``execution.docker_cli.remove_leftovers`` removes them when a docker backend next starts (or
  ``trainarena docker clean``).
- Logs: the container's log driver is ``none`` (a flood never reaches the daemon's disk); the
  attached streams are capped by ``execution.supervise`` as for every backend.

What it does not protect against: a compromised daemon or kernel (containers share the host kernel:
use a VM or gVisor's runsc runtime for more); /output passing its cap within one measurement
interval (the run fails all the same); GPU memory of other runs on a shared GPU. GPU runs need the
NVIDIA container toolkit on the host (argv tested only: no GPU machine here).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from trainarena.contract import SANDBOX_INPUTS, SANDBOX_OUTPUT, SANDBOX_SUBMISSION, RunStatus
from trainarena.execution.base import RunResult, SandboxJob
from trainarena.execution.disk import MB, disk_description
from trainarena.execution.docker_cli import (
    OWNER_LABEL,
    RUN_LABEL,
    USERNS_REMAP_FIX,
    DaemonInfo,
    DockerCli,
    daemon_info,
    find_docker,
    owner_label,
    remove_leftovers,
)
from trainarena.execution.docker_image import HostImage, ensure_image, host_image
from trainarena.execution.host_user import HostUser, hand_over, leased, pool_user
from trainarena.execution.limits import out_of_memory, output_cap
from trainarena.execution.runtime import SandboxUnavailable, check_hidden, script_env, training_python
from trainarena.execution.supervise import Launch, supervise
from trainarena.settings import SandboxRules

# The interpreter of a self-contained image; docker/runtime.Dockerfile creates its venv here.
IMAGE_PYTHON = "/opt/trainarena/venv/bin/python"
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


@dataclass(frozen=True)
class Runtime:
    """Where a run's system comes from: the image, its interpreter, the init to start (``()``:
    docker's own ``--init``) and the host paths bound read-only at the same place."""

    image: str
    python: str
    init: tuple[str, ...]
    binds: tuple[Path, ...]
    host_image: HostImage | None = None


def host_runtime(rules: SandboxRules) -> Runtime:
    """The host runtime image with bwrap's system binds and the pinned training interpreter."""
    init = shutil.which("docker-init") or shutil.which("tini")
    if init is None or not Path(init).is_relative_to("/usr"):
        raise SandboxUnavailable("the docker backend's host runtime starts each run under tini, which it needs under "
                                 f"/usr (found: {init}); install it (apt-get install tini; docker.io ships it)")
    image = host_image()
    etc = [Path("/etc") / entry for entry in rules.etc_files if (Path("/etc") / entry).exists()]
    python = training_python(rules)
    binds = outermost([Path("/usr"), *(Path("/") / name for name in image.layout.bound), *etc, *python.needed_dirs])
    # -g: a signal reaches the script's whole process group, as bwrap signals every process of a run.
    return Runtime(image.tag, str(python.executable), (init, "-g", "--"), binds, image)


def userns_refusal(info: DaemonInfo, user_line: str, pooled: bool) -> str:
    """Why the backend does not run on a daemon that remaps user namespaces: everything it does for a
    run's host user (``user_line``: who its containers run as) is done for the uid it passes to
    ``--user``, which the daemon maps to another host uid. /output, handed to that uid, would not be
    writable; /inputs, shared with its gid, not readable; and a pool's uids, leased as free on the host,
    would not be who the containers are (those of the daemon's subordinate range may be anyone's)."""
    mapped = f"host uid {info.remapped_root} + N" if info.remapped_root is not None else "a host uid of its subordinate range"
    pool = "; sandbox.run_as_pool's uids were checked free on the host, not those" if pooled else ""
    return (f"the Docker daemon remaps user namespaces (userns-remap: `docker info` lists name=userns), so a container "
            f"run as uid N is {mapped}: the docker backend's containers, as {user_line}, would not be the host users it "
            f"hands /output to and shares /inputs with{pool}; {USERNS_REMAP_FIX}")


def outermost(paths: list[Path]) -> tuple[Path, ...]:
    """``paths`` without those inside another one (docker refuses two mounts on one target)."""
    unique = sorted(set(paths))
    return tuple(p for p in unique if not any(p != other and p.is_relative_to(other) for other in unique))


def container_user(rules: SandboxRules) -> tuple[HostUser, str]:
    """Who containers run as on the host, never root, and a few words saying who and why: as root
    ``sandbox_uid`` (it can hand /output over and read back what the run wrote), or with
    ``run_as_pool`` a uid of its own per container (the pool's first until a run leases one:
    ``host_user.leased``), the gid staying ``sandbox_uid``; else the platform's own, whose files
    /output holds."""
    euid = os.geteuid()
    if euid != 0:
        return HostUser(euid, os.getegid()), f"uid {euid}, the platform's own"
    uid = rules.sandbox_uid
    if rules.run_as_pool is None:
        return HostUser(uid, uid), f"uid {uid} (sandbox.sandbox_uid)"
    pooled, line = pool_user(rules.run_as_pool, uid)
    return (pooled, line) if pooled is not None else (HostUser(uid, uid), f"uid {uid} (sandbox.sandbox_uid; {line})")


class DockerBackend:
    """Runs each job in a fresh container (module docstring: what it covers and not)."""

    name = "docker"

    def __init__(self, rules: SandboxRules, protected: tuple[Path, ...] = (), docker: str | None = None) -> None:
        """``protected``: host paths no bind may contain (``factory.never_bound``: the data dir, secret files)."""
        self._rules = rules
        self._cli = DockerCli(docker or find_docker(), rules.start_timeout_seconds)
        self._protected = protected
        self.runtime = (host_runtime(rules) if rules.docker_image is None
                        else Runtime(rules.docker_image, IMAGE_PYTHON, (), ()))
        check_hidden(list(self.runtime.binds), protected)
        self._owner = owner_label()
        self.user, self.user_line = container_user(rules)
        self._cgroup: str | None = None  # "cgroup-v1" | "cgroup-v2" once prepared
        self._prepare_lock = threading.Lock()
        self._kept: list[tuple[str, contextlib.ExitStack]] = []  # containers docker could not remove, with their leases
        self._kept_lock = threading.Lock()

    def prepare(self) -> None:
        """Once per backend, before its first run: the daemon answers and does not remap user namespaces
        (:func:`userns_refusal`), the image is there (the host runtime image built when missing),
        containers a dead platform left here are removed."""
        with self._prepare_lock:
            if self._cgroup is not None:
                return
            info = daemon_info(self._cli)
            if info.userns_remap:
                raise SandboxUnavailable(userns_refusal(info, self.user_line, pooled=self.user.pool is not None))
            if self.runtime.host_image is not None:
                ensure_image(self._cli, self.runtime.host_image)
            elif self._cli.call("image", "inspect", self.runtime.image).returncode != 0:
                raise SandboxUnavailable(f"the docker image {self.runtime.image} (sandbox.docker_image) is not on the daemon "
                                         f"and is never pulled: build it (docker build -f docker/runtime.Dockerfile -t "
                                         f"{self.runtime.image} .) or unset docker_image to use this host's runtime")
            remove_leftovers(self._cli)
            self._cgroup = f"cgroup-v{info.cgroup_version}"

    def docker_argv(self, job: SandboxJob, env: dict[str, str], container: str, user: HostUser | None = None) -> list[str]:
        """The full ``docker run`` command line for ``job`` as ``user`` (default :attr:`user`; tests assert on it)."""
        rules, runtime = self._rules, self.runtime
        memory, (uid, gid) = f"{job.memory_limit_mb}m", _ids(user or self.user)
        argv = [self._cli.executable, "run", "--pull", "never", "--name", container,
                "--label", f"{RUN_LABEL}={job.spec.run_id}", "--label", f"{OWNER_LABEL}={self._owner}",
                "--network", "none", "--ipc", "private", "--hostname", "sandbox", "--log-driver", "none",
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", f"{uid}:{gid}", "--read-only",
                "--tmpfs", f"/tmp:rw,nosuid,nodev,size={rules.tmp_max_mb}m", "--shm-size", f"{rules.tmp_max_mb}m",
                "--memory", memory, "--memory-swap", memory, "--pids-limit", str(rules.max_processes),
                "--ulimit", f"fsize={rules.output_max_mb * MB}"]
        if rules.cpus_per_run:
            argv += ["--cpus", str(rules.cpus_per_run)]
        if job.spec.devices:
            # The quotes are part of the value: docker parses --gpus as CSV.
            argv += ["--gpus", '"device=' + ",".join(str(d) for d in job.spec.devices) + '"']
        if not runtime.init:
            argv.append("--init")
        for path in runtime.binds:
            argv += ["--mount", bind(path, PurePosixPath(path), read_only=True)]
        argv += ["--mount", bind(job.submission_dir.resolve(), SANDBOX_SUBMISSION, read_only=True),
                 "--mount", bind(job.inputs_dir.resolve(), SANDBOX_INPUTS, read_only=True),
                 "--mount", bind(job.output_dir.resolve(), SANDBOX_OUTPUT, read_only=False),
                 "--workdir", str(SANDBOX_SUBMISSION)]
        for key, value in sorted(_container_env(job, env).items()):
            argv += ["--env", f"{key}={value}"]
        return [*argv, runtime.image, *runtime.init, "/usr/bin/nice", "-n", str(rules.nice),
                # docker always sets PATH and HOSTNAME; the contract's environment has neither.
                "/usr/bin/env", "-u", "PATH", "-u", "HOSTNAME", runtime.python, *job.spec.argv(job.entrypoint)[1:]]

    def run(self, job: SandboxJob) -> RunResult:
        self.prepare()
        check_hidden([job.submission_dir, job.inputs_dir, job.output_dir], self._protected)
        job.output_dir.mkdir(parents=True, exist_ok=True)
        container = f"trainarena-{_NAME_UNSAFE.sub('-', job.spec.run_id)}-{uuid.uuid4().hex[:8]}"
        # A leased uid is held until its container is removed, or the platform dies.
        with contextlib.ExitStack() as lease:
            own, lease_line = lease.enter_context(leased(self.user))
            user = own or self.user
            if lease_line:  # a container a dead platform left may run as this uid: gone before this one starts
                remove_leftovers(self._cli)
            hand_over(job, user.uid, user.gid)
            # sandbox.txt names the host user where a pool is set (why not, when it is not used), as bwrap's does.
            line = f"{lease_line} of {self.user_line}" if lease_line else (self.user_line if self._rules.run_as_pool else "")
            try:
                return self._run_container(job, container, user, line)
            finally:
                if not self._remove(container) and lease_line:
                    # It may live on as this uid, which no other run may take meanwhile: close() tries again.
                    with self._kept_lock:
                        self._kept.append((container, lease.pop_all()))

    def _remove(self, container: str) -> bool:
        """Remove ``container`` (killed first); whether it is gone."""
        done = self._cli.call("rm", "--force", "--volumes", container)
        return done.returncode == 0 or b"No such container" in done.stderr

    def _run_container(self, job: SandboxJob, container: str, user: HostUser, user_line: str) -> RunResult:
        rules, output = self._rules, output_cap(job, self._rules)
        started_at, env = script_env(job)
        launch = Launch(
            argv=self.docker_argv(job, env, container, user), env={}, cwd=None, log_dir=job.log_dir,
            budget_seconds=job.spec.budget_seconds, grace_seconds=job.grace_seconds, log_max_bytes=job.log_max_bytes,
            log_tail_chars=rules.log_tail_chars, disk_caps=(output,), disk_check_seconds=rules.disk_check_seconds,
        )
        job.log_dir.mkdir(parents=True, exist_ok=True)
        (job.log_dir / "sandbox.txt").write_text(self.describe(job, user, user_line) + disk_description(
            f"tmpfs:{rules.tmp_max_mb * MB}", output, rules.disk_check_seconds))
        result = supervise(launch, lambda _proc: _ContainerTerminator(self._cli, container), started_at)
        if result.status is not RunStatus.SUCCEEDED and self._oom_killed(container):
            return out_of_memory(result, job.memory_limit_mb, f"{self._cgroup}, docker")
        return result

    def describe(self, job: SandboxJob, user: HostUser | None = None, user_line: str = "") -> str:
        """``logs/sandbox.txt``'s lines about the backend, the run's host user (``user_line``: the
        uid it leased, where it leased one) and its limits (bwrap's vocabulary)."""
        rules, cgroup = self._rules, self._cgroup
        cpu = f"cpu={cgroup}:{rules.cpus_per_run:g}" if rules.cpus_per_run else "cpu=none"
        host_user = f"host_user={user_line}\n" if user_line else ""
        return (f"backend=docker image={self.runtime.image} user={':'.join(map(str, _ids(user or self.user)))}\n"
                f"{host_user}"
                f"memory_limit={cgroup}:{job.memory_limit_mb * MB} processes={cgroup}:{rules.max_processes} {cpu} "
                f"file_size=rlimit-fsize:{rules.output_max_mb * MB} nice={rules.nice}\n")

    def _oom_killed(self, container: str) -> bool:
        return self._cli.call("inspect", "--format", "{{.State.OOMKilled}}", container).stdout.strip() == b"true"

    def close(self) -> None:
        """Nothing is held between runs (each run removes its container), but the leases of containers
        docker could not remove then: removed now, their uids are free again (else the platform's end frees them)."""
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for container, lease in kept:
            if self._remove(container):
                lease.close()
            else:
                with self._kept_lock:
                    self._kept.append((container, lease))


def bind(source: Path, target: PurePosixPath, read_only: bool) -> str:
    """A ``--mount`` value binding ``source`` at ``target`` (CSV: a comma in a path is quoted)."""
    fields = ["type=bind", f"source={source}", f"target={target}", "bind-propagation=rprivate"]
    if read_only:
        fields.append("readonly")
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(fields)
    return line.getvalue()


def _ids(user: HostUser) -> tuple[int, int]:
    return user.uid, user.gid


def _container_env(job: SandboxJob, env: dict[str, str]) -> dict[str, str]:
    """Inside the container the assigned GPUs are renumbered 0..n-1."""
    env = dict(env)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(job.spec.devices)))
    return env


class _ContainerTerminator:
    def __init__(self, cli: DockerCli, container: str) -> None:
        self._cli = cli
        self._container = container

    def terminate(self) -> None:
        self._cli.call("kill", "--signal", "TERM", self._container)

    def kill(self) -> None:
        self._cli.call("kill", self._container)
