"""What isolation this host gives competitor runs: the data behind ``trainarena doctor``.

Every probe really tries the mechanism the backends use (a bwrap call per namespace, a run cgroup
made and removed per controller, ``docker info``); nothing is inferred from version numbers alone.
:func:`probe_capabilities` returns plain data; the CLI only renders it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainarena.execution.bwrap import host_user, tmpfs_size_supported, userns_disable_supported
from trainarena.execution.cgroups import CONTROLLERS, CgroupLayout, create_run_cgroup, detect_layout
from trainarena.execution.disk import MB
from trainarena.execution.docker import container_user
from trainarena.execution.docker_cli import USERNS_REMAP_FIX, DockerCli, daemon_info
from trainarena.execution.host_user import HostUser
from trainarena.execution.runtime import SandboxUnavailable, TrainingPython, training_python
from trainarena.settings import SandboxRules

_PROBE_TIMEOUT_SECONDS = 20.0
_NAMESPACES = ("user", "pid", "net")
_PROBE_LIMITS = {"memory": 64 * MB, "pids": 16, "cpu": 1}  # any valid value: the group is removed at once


@dataclass(frozen=True)
class Feature:
    """One isolation mechanism: whether this host has it, and if not what that means and the fix."""

    name: str
    ok: bool
    detail: str
    required: bool  # the configured backend cannot isolate without it
    consequence: str = ""
    fix: str = ""


@dataclass(frozen=True)
class Capabilities:
    backend: str
    can_isolate: bool
    verdict: str  # one sentence: why the backend can, or cannot, isolate
    features: tuple[Feature, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "can_isolate": self.can_isolate, "verdict": self.verdict,
                "features": [asdict(feature) for feature in self.features]}

    def missing(self) -> tuple[Feature, ...]:
        return tuple(feature for feature in self.features if not feature.ok)


def probe_capabilities(
    rules: SandboxRules,
    layout: CgroupLayout | None = None,
    dev_root: Path = Path("/dev"),
    environ: Mapping[str, str] = os.environ,
    docker: str = "docker",
) -> Capabilities:
    """Probe this host for the configured backend (``rules.backend``); arguments other than
    ``rules`` exist for tests."""
    bwrap = shutil.which("bwrap")
    uses_bwrap = rules.backend == "bwrap"
    features = [_bwrap_feature(bwrap, uses_bwrap)]
    features += [_namespace_feature(bwrap, namespace, uses_bwrap) for namespace in _NAMESPACES]
    user = None if bwrap is None else host_user(bwrap, rules, _python(rules))
    # Whether each run is a uid of its own is the configured backend's answer (docker needs no user namespace for it).
    per_run = container_user(rules) if rules.backend == "docker" else user
    features += [_nested_userns_feature(bwrap), _host_user_feature(user, rules.run_as), _uid_per_run_feature(per_run, rules.run_as_pool is not None)]
    run_user = None if user is None else user[0]
    run_uid = os.getuid() if run_user is None else run_user.uid
    own_uid = run_user is not None and run_user.pool is not None
    features += _cgroup_features(detect_layout(rules.cgroup_parent) if layout is None else layout, rules, run_uid, own_uid)
    features += _disk_features(bwrap, rules)
    features += [_gpu_feature(dev_root, environ), _docker_feature(docker, rules.backend == "docker")]
    required = [feature for feature in features if feature.required]
    if rules.backend == "local-unsafe":
        return Capabilities(rules.backend, False, "local-unsafe runs scripts without any isolation.", tuple(features))
    if not required:
        return Capabilities(rules.backend, False, f"unknown backend {rules.backend!r}.", tuple(features))
    lacking = [feature.name for feature in required if not feature.ok]
    verdict = (f"{rules.backend} can isolate runs here." if not lacking
               else f"{rules.backend} cannot isolate runs here: missing {', '.join(lacking)}.")
    return Capabilities(rules.backend, not lacking, verdict, tuple(features))


def _run_quietly(argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _bwrap_feature(bwrap: str | None, required: bool) -> Feature:
    if bwrap is None:
        return Feature("bwrap", False, "not installed", required,
                       "the default backend cannot start any run", "apt-get install bubblewrap")
    version = _run_quietly([bwrap, "--version"])
    shown = version.stdout.strip() if version is not None and version.returncode == 0 else "version unknown"
    return Feature("bwrap", True, f"{shown} at {bwrap}", required)


def _namespace_feature(bwrap: str | None, namespace: str, required: bool) -> Feature:
    name = f"{namespace} namespace"
    consequence = "bwrap runs fail to start (every run unshares it)"
    fix = {"user": "allow user namespaces: sysctl user.max_user_namespaces=15000 "
                   "(and kernel.unprivileged_userns_clone=1 where it exists)",
           "pid": "a kernel with PID namespaces (CONFIG_PID_NS); in a container, run it with --privileged "
                  "or a seccomp profile that allows unshare",
           "net": "a kernel with network namespaces (CONFIG_NET_NS); in a container, allow unshare"}[namespace]
    if bwrap is None:
        return Feature(name, False, "untested: bwrap is missing", required, consequence, "install bubblewrap first")
    probe = _run_quietly([bwrap, "--ro-bind", "/", "/", f"--unshare-{namespace}", "--", "true"])
    if probe is not None and probe.returncode == 0:
        return Feature(name, True, "usable", required)
    error = probe.stderr.strip().splitlines()[-1] if probe is not None and probe.stderr.strip() else "bwrap failed"
    return Feature(name, False, error, required, consequence, fix)


def _nested_userns_feature(bwrap: str | None) -> Feature:
    name = "no nested user namespace"
    if bwrap is not None and userns_disable_supported(bwrap):
        return Feature(name, True, "bwrap --disable-userns", False)
    detail = "untested: bwrap is missing" if bwrap is None else "this bwrap has no --disable-userns"
    return Feature(name, False, detail, False,
                   "a script can create a nested user namespace (unshare -Urm) and hold every capability in it: "
                   "mounts and namespaces of its own, more kernel surface to attack",
                   "bubblewrap 0.8 or later, able to create a user namespace")


def _python(rules: SandboxRules) -> TrainingPython | None:
    """The training interpreter, None where it cannot start (runs then fail to start at all)."""
    try:
        return training_python(rules)
    except SandboxUnavailable:
        return None


def _host_user_feature(found: tuple[HostUser | None, str] | None, run_as: int) -> Feature:
    """``found``: ``bwrap.host_user``'s answer, None without bwrap."""
    name = "unprivileged host uid"
    if found is None:
        return Feature(name, False, "untested: bwrap is missing", False, "", "install bubblewrap first")
    user, line = found
    if user is not None or os.geteuid() != 0:
        return Feature(name, True, line, False)
    return Feature(name, False, line, False,
                   f"scripts run as host {line}, capabilities dropped: a kernel bug that escapes the sandbox, or a "
                   "file a bind exposes, is root's",
                   "set sandbox.run_as (TRAINARENA_SANDBOX__RUN_AS=65534)" if run_as == 0 else
                   "allow unprivileged user namespaces (sysctl user.max_user_namespaces=15000, and "
                   "kernel.unprivileged_userns_clone=1 and kernel.apparmor_restrict_unprivileged_userns=0 where "
                   "they exist)")


def _uid_per_run_feature(found: tuple[HostUser | None, str] | None, pool_set: bool = False) -> Feature:
    """Whether each live run has a host uid of its own (``sandbox.run_as_pool``, ``execution.uid_pool``);
    ``found``: who the configured backend runs as (bwrap's ``host_user`` or docker's ``container_user``),
    whose line says why a pool that is set (``pool_set``) is not used."""
    name = "host uid per run"
    user = None if found is None else found[0]
    if user is not None and user.pool is not None:
        return Feature(name, True, user.pool.describe(), False)
    consequence = ("every run is the same host user: a script that escapes its sandbox can signal, trace or write "
                   "into the other runs alive then")
    if os.geteuid() != 0:
        return Feature(name, False, "runs share the platform's uid", False, consequence,
                       "run the platform as root with sandbox.run_as_pool (a uid per run needs root to hand out)")
    detail = "runs share one uid" if user is not None else "runs are root"
    if pool_set and found is not None:
        detail += f": {found[1]}"
    return Feature(name, False, detail, False, consequence,
                   "set sandbox.run_as_pool to a range of uids nothing else on the host uses "
                   "(TRAINARENA_SANDBOX__RUN_AS_POOL='[2000000000, 256]', as the compose file does)")


_CGROUP_CONSEQUENCES = {
    "memory": "memory falls back to RLIMIT_AS per process: a run may use its limit once per process",
    "cpu": "cpus_per_run is not enforced; only thread-count environment variables apply",
}
_CGROUP_FIX = ("cgroup v1: mount the {c} controller writable at /sys/fs/cgroup/{c}; cgroup v2: make a cgroup "
               "for runs, write '+{c}' to its cgroup.subtree_control and set TRAINARENA_SANDBOX__CGROUP_PARENT "
               "to it (as a non-root platform: systemd Delegate=yes gives it one)")


def _cgroup_features(layout: CgroupLayout, rules: SandboxRules, run_uid: int, own_uid: bool = False) -> list[Feature]:
    """``run_uid``: the host uid of the runs' processes (``execution.host_user``); ``own_uid``: each
    run has one of its own (``sandbox.run_as_pool``)."""
    features = []
    for controller in CONTROLLERS:
        probe = create_run_cgroup(layout, "doctor", {controller: _PROBE_LIMITS[controller]})
        usable = controller in probe.directories
        probe.close()
        name = f"cgroup {controller}"
        if usable:
            features.append(Feature(name, True, layout.describe(controller), False))
            continue
        detail = layout.describe(controller) + (": not writable" if controller in layout.hierarchies else "")
        if controller == "pids":
            consequence = ("no process-count cap at all (RLIMIT_NPROC does not bind root): a fork bomb floods "
                           "the host" if run_uid == 0 else
                           "RLIMIT_NPROC stands in, counting the processes of each run's own uid" if own_uid else
                           f"RLIMIT_NPROC stands in, counting every process of uid {run_uid} on the host")
        elif controller == "cpu" and not rules.cpus_per_run:
            consequence = "none while cpus_per_run is 0 (no CPU cap configured)"
        else:
            consequence = _CGROUP_CONSEQUENCES[controller]
        features.append(Feature(name, False, detail, False, consequence, _CGROUP_FIX.format(c=controller)))
    return features


def _disk_features(bwrap: str | None, rules: SandboxRules) -> list[Feature]:
    output = Feature("disk cap /output", True, f"{rules.output_max_mb} MB: RLIMIT_FSIZE per file, total "
                     f"measured every {rules.disk_check_seconds:g} s", False)
    if bwrap is not None and tmpfs_size_supported(bwrap):
        return [Feature("disk cap /tmp", True, f"{rules.tmp_max_mb} MB tmpfs (bwrap --size)", False), output]
    return [Feature("disk cap /tmp", False, "bwrap cannot --size a tmpfs", False,
                    "/tmp is an unsized tmpfs, bounded only by the run's memory cgroup (or the host's RAM)",
                    "bubblewrap 0.7 or later, installed without the setuid bit"), output]


def _gpu_feature(dev_root: Path, environ: Mapping[str, str]) -> Feature:
    nodes = sorted(p.name for p in dev_root.glob("nvidia[0-9]*"))
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    shown = f"CUDA_VISIBLE_DEVICES={visible}" if visible is not None else "CUDA_VISIBLE_DEVICES unset"
    if nodes:
        return Feature("GPU", True, f"{', '.join(nodes)}; {shown}; a run sees only its own", False)
    return Feature("GPU", False, f"no /dev/nvidiaN; {shown}", False,
                   "runs train on CPU only", "install the NVIDIA driver (its /dev/nvidia* nodes) to use GPUs")


def _docker_feature(docker: str, required: bool) -> Feature:
    if shutil.which(docker) is None:
        return Feature("docker daemon", False, "no docker CLI", required,
                       "the docker backend cannot run", "install docker.io and start dockerd")
    try:
        info = daemon_info(DockerCli(docker, _PROBE_TIMEOUT_SECONDS))
    except SandboxUnavailable:
        return Feature("docker daemon", False, "no answer to docker info", required,
                       "the docker backend cannot run", "start dockerd (or point DOCKER_HOST at a daemon)")
    if info.userns_remap:
        return Feature("docker daemon", False, "answers, but remaps user namespaces (userns-remap)", required,
                       "the docker backend refuses it: a container's uid there is another host uid than the one "
                       "it hands /output to", USERNS_REMAP_FIX)
    return Feature("docker daemon", True, "answers", required)
