"""The default backend: every run in its own bubblewrap sandbox.

What it protects against (each property has an adversarial test in tests/execution/):
- Network: ``--unshare-all`` gives the run empty network, IPC, UTS, cgroup and user namespaces; no
  interface but a down loopback, so no TCP/UDP anywhere (localhost included) and no DNS.
- Reading what it should not: the root is a fresh tmpfs holding only read-only binds of /usr (and the
  /bin, /lib* links), a short list of /etc entries (``SandboxRules.etc_files``: no shadow, no machine
  secrets), the training interpreter's prefixes, and the run's own /submission (ro), /inputs (ro)
  and /output (rw). The data directory, the hidden test split, other runs, /work, /root and the
  platform's environment variables are not there at all. A mount plan that would expose the
  data directory or a secret file the settings name (signing key, split secret, SQLite store) is
  refused before anything starts.
- Writing outside /output: everything else is read-only (the root itself is remounted read-only);
  /tmp is a private tmpfs discarded at exit.
- Outliving its budget: SIGTERM to every process of the run's PID namespace at the deadline, SIGKILL
  of the namespace's init after the grace period, which makes the kernel kill every process in it
  (double-forked, setsid'd daemons included). When the script exits in time, bwrap's init exits with
  it and takes any daemon with it; ``--die-with-parent`` covers a platform that dies mid-run.
- Signalling or ptrace-ing others: its own PID namespace shows only its own processes.
- Privilege: runs as ``SandboxRules.sandbox_uid`` (nobody) in a user namespace, no capabilities, and
  no way to create a nested user namespace (``--disable-userns``), where it would hold a full
  capability set again (mounts, its own network namespace: more kernel surface). That needs bubblewrap
  0.8 or later: with an older one ``unshare -Urm`` works inside the run, and ``trainarena doctor`` says
  so. On the host, a platform running as root starts bwrap as ``SandboxRules.run_as`` (nobody), so the
  run's processes are not host root (``execution.host_user``: how its binds stay reachable); where
  unprivileged user namespaces are not allowed they stay root, and doctor and sandbox.txt say so.
- Memory, process count (a fork bomb), CPU: one cgroup per run with ``memory_limit_mb``,
  ``max_processes`` and ``cpus_per_run`` (v2 or v1, whichever the host offers), removed after the run
  with every process left in it killed. Where a controller is missing, an rlimit stands in and
  ``logs/sandbox.txt`` says so: RLIMIT_AS/RLIMIT_DATA per process for memory, RLIMIT_NPROC for
  processes (per host uid: not enforced at all when the platform runs as root), nothing for CPU
  (``execution.limits`` explains each).
- Disk: /tmp is a tmpfs of ``tmp_max_mb`` (``--size``: bwrap 0.7 or later, not setuid; otherwise
  unsized, and sandbox.txt says so); every file is capped at ``output_max_mb`` (RLIMIT_FSIZE) and
  /output's total is measured while the run lives, the run killed and failed past the cap
  (``execution.disk``).

What it does not protect against: kernel exploits (bubblewrap is a namespace sandbox, not a VM; as
``run_as`` an escaped script is that user on the host, not root, and every run of the host shares
it unless ``run_as_pool`` gives each live run a uid of its own, ``execution.uid_pool``); /output passing its cap by what the disk writes within one measurement interval (the run fails all
the same); GPU memory of other runs on a shared GPU; timing side channels. Operators who need more
should use the docker backend on a VM or gVisor runtime. ``trainarena doctor`` shows which of these
mechanisms this host has.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

from trainarena.contract import SANDBOX_INPUTS, SANDBOX_OUTPUT, SANDBOX_SUBMISSION
from trainarena.execution.base import RunResult, SandboxJob
from trainarena.execution.cgroups import CgroupLayout, detect_layout
from trainarena.execution.disk import MB, DiskCap
from trainarena.execution.host_user import HostUser, as_host_user, choose_host_user, hand_over, leased
from trainarena.execution.limits import confine_job, output_cap, write_sandbox_log
from trainarena.execution.runtime import (
    SandboxUnavailable,
    TrainingPython,
    check_hidden,
    script_argv,
    script_env,
    training_python,
)
from trainarena.execution.supervise import Launch, supervise
from trainarena.settings import SandboxRules

_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# --disable-userns needs the sandbox's user namespace to be certain (--unshare-all only tries one).
NO_NESTED_USERNS = ("--unshare-user", "--disable-userns")
_NVIDIA_SHARED_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


def find_bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, and it is the default sandbox for competitor scripts. "
            "Install it (apt-get install bubblewrap), or use the docker backend "
            "(TRAINARENA_SANDBOX__BACKEND=docker), or - only for code you trust - pass --unsafe / set "
            "TRAINARENA_SANDBOX__ALLOW_UNSAFE=true to run scripts without isolation."
        )
    return path


@functools.cache
def tmpfs_size_supported(bwrap: str) -> bool:
    """Whether this bwrap can size a ``--tmpfs`` (``--size``: bubblewrap 0.7 and later, and never when
    bwrap is installed setuid); tried, not read from the version."""
    probe = [bwrap, "--ro-bind", "/", "/", "--size", str(MB), "--tmpfs", "/tmp", "--", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.cache
def userns_disable_supported(bwrap: str) -> bool:
    """Whether this bwrap can forbid nested user namespaces (``--disable-userns``: bubblewrap 0.8 and
    later, with a user namespace of its own); tried, not read from the version."""
    probe = [bwrap, "--unshare-all", *NO_NESTED_USERNS, "--ro-bind", "/", "/", "--", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def userns_args(bwrap: str) -> list[str]:
    """The options that keep a sandbox from creating a nested user namespace, where this bwrap has them."""
    return list(NO_NESTED_USERNS) if userns_disable_supported(bwrap) else []


@functools.cache
def run_as_problem(bwrap: str, uid: int, python: TrainingPython | None = None, gid: int | None = None) -> str | None:
    """Why this bwrap cannot start a sandbox as host uid ``uid`` (and ``gid``, default the same
    number) with staged binds (``host_user``), with ``python`` (the training interpreter) starting in
    it: the last error line, or None when it can. Tried, as the runs do it."""
    gid = uid if gid is None else gid
    # --proc too: unprivileged, the kernel refuses a new procfs where the host's /proc is partly
    # masked (a container's default), which root's bwrap never meets.
    probe = [bwrap, "--unshare-all", *userns_args(bwrap), "--uid", str(uid), "--gid", str(gid),
             "--ro-bind", "/usr", "/usr", *root_links(), "--proc", "/proc", "--dev", "/dev"]
    if python is None:
        probe += ["--", "/usr/bin/true"]
    else:  # an interpreter its user cannot read would fail every run as if its script had
        for prefix in python.needed_dirs:
            probe += ["--ro-bind", str(prefix), str(prefix)]
        probe += ["--", str(python.executable), "-I", "-c", ""]
    argv, preexec = as_host_user(HostUser(uid, gid), probe, None)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False, preexec_fn=preexec)
    except (OSError, subprocess.SubprocessError) as error:  # SubprocessError: the pre-exec hook failed
        return str(error)
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"bwrap exited with code {done.returncode}"


def host_user(bwrap: str, rules: SandboxRules, python: TrainingPython | None = None) -> tuple[HostUser | None, str]:
    """Who this host's bwrap runs sandboxes (of ``python``) as, and one line saying so and why."""
    return choose_host_user(rules.run_as, lambda uid, gid: run_as_problem(bwrap, uid, python, gid), rules.run_as_pool)


class BwrapBackend:
    """Runs each job in a fresh bubblewrap sandbox (module docstring: what it covers and not)."""

    name = "bwrap"

    def __init__(
        self, rules: SandboxRules, protected: tuple[Path, ...] = (), log_tail_chars: int | None = None,
        cgroups: CgroupLayout | None = None,
    ) -> None:
        """``protected``: host paths no bind may contain (``factory.never_bound``: the data dir, secret files);
        ``cgroups``: where run cgroups go (default: this host's; ``CgroupLayout.none()`` forces rlimits)."""
        self._bwrap = find_bwrap()
        self._sized_tmp = tmpfs_size_supported(self._bwrap)
        self._userns = userns_args(self._bwrap)
        self._cgroups = detect_layout(rules.cgroup_parent) if cgroups is None else cgroups
        self._rules = rules
        self._python: TrainingPython = training_python(rules)
        self._host_user, self._host_user_line = host_user(self._bwrap, rules, self._python)
        self._protected = protected
        self._tail_chars = log_tail_chars or rules.log_tail_chars
        check_hidden(self._system_sources(), protected)

    def run(self, job: SandboxJob) -> RunResult:
        check_hidden([job.submission_dir, job.inputs_dir, job.output_dir], self._protected)
        job.output_dir.mkdir(parents=True, exist_ok=True)
        rules = self._rules
        output = output_cap(job, rules)
        tmp = f"tmpfs:{rules.tmp_max_mb * MB}" if self._sized_tmp else "tmpfs-unsized (this bwrap cannot --size a tmpfs)"
        with leased(self._host_user) as (own_user, lease_line):
            user, user_line = self._run_user(job, own_user, lease_line)
            return self._run_sandbox(job, user, user_line, output, tmp)

    def _run_sandbox(self, job: SandboxJob, user: HostUser | None, user_line: str, output: DiskCap, tmp: str) -> RunResult:
        rules = self._rules
        with confine_job(job, rules, output, self._cgroups, None if user is None else user.uid) as confinement:
            started_at, env = script_env(job)
            info_read, info_write = os.pipe()
            try:
                argv = [self._bwrap, *self.bwrap_args(job, env, info_fd=info_write), "--",
                        *script_argv(job, self._python.executable)]
                argv, preexec = as_host_user(user, argv, confinement.preexec())
                launch = Launch(
                    argv=argv, env={}, cwd=None, log_dir=job.log_dir, budget_seconds=job.spec.budget_seconds,
                    grace_seconds=job.grace_seconds, log_max_bytes=job.log_max_bytes,
                    log_tail_chars=self._tail_chars, preexec=preexec, pass_fds=(info_write,),
                    disk_caps=(output,), disk_check_seconds=rules.disk_check_seconds,
                )
                write_sandbox_log(job, "bwrap", confinement, tmp, output, rules.disk_check_seconds, user_line)
                result = supervise(launch, lambda proc: _NamespaceTerminator(proc, info_read), started_at)
                return confinement.explain(result)
            finally:
                for fd in (info_read, info_write):
                    with contextlib.suppress(OSError):
                        os.close(fd)

    def close(self) -> None:
        """Nothing is held between runs."""

    def _run_user(self, job: SandboxJob, user: HostUser | None, lease_line: str) -> tuple[HostUser | None, str]:
        """Who ``job`` runs as on the host (``execution.host_user``: ``user``, leased for this run
        where it comes from a pool), its folders handed over to it."""
        if user is None:
            return None, self._host_user_line
        groups = gpu_groups(job.spec.devices)
        if groups is None:
            return None, "root (the run's GPU device nodes open to root only)"
        hand_over(job, user.uid, user.gid)
        line = f"{lease_line} of {self._host_user_line}" if lease_line else self._host_user_line
        return replace(user, groups=groups), line

    # -- the mount plan -------------------------------------------------------------------------

    def _system_sources(self) -> list[Path]:
        etc = [Path("/etc") / entry for entry in self._rules.etc_files]
        return [Path("/usr"), *etc, *self._python.needed_dirs]

    def bwrap_args(self, job: SandboxJob, env: dict[str, str], info_fd: int | None = None) -> list[str]:
        """bwrap's options for ``job`` (everything before ``--``)."""
        uid = str(self._rules.sandbox_uid)
        args = ["--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
                "--uid", uid, "--gid", uid, "--hostname", "sandbox", "--cap-drop", "ALL", *self._userns]
        args += ["--ro-bind", "/usr", "/usr"]
        args += root_links()
        for entry in self._rules.etc_files:
            args += ["--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}"]
        # The private /tmp first: an interpreter installed under /tmp (a checkout there) is bound on top.
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += tmp_args(self._rules.tmp_max_mb, self._sized_tmp)
        # /dev/shm sized like /tmp, then /dev itself read-only: bwrap's /dev is an unsized tmpfs, and
        # without a memory cgroup (the rlimit fallback) its pages count against no limit of the run.
        args += tmp_args(self._rules.tmp_max_mb, self._sized_tmp, "/dev/shm")
        for prefix in self._python.needed_dirs:
            args += ["--ro-bind", str(prefix), str(prefix)]
        args += gpu_binds(job.spec.devices)
        args += ["--remount-ro", "/dev"]
        args += ["--ro-bind", str(job.submission_dir.resolve()), str(SANDBOX_SUBMISSION)]
        args += ["--ro-bind", str(job.inputs_dir.resolve()), str(SANDBOX_INPUTS)]
        args += ["--bind", str(job.output_dir.resolve()), str(SANDBOX_OUTPUT)]
        # Last: the root tmpfs bwrap built the tree on becomes read-only; /tmp and /output are
        # their own mounts and stay writable.
        args += ["--remount-ro", "/", "--chdir", str(SANDBOX_SUBMISSION)]
        for key, value in sorted(env.items()):
            args += ["--setenv", key, value]
        if info_fd is not None:
            args += ["--info-fd", str(info_fd)]
        return args


def tmp_args(size_mb: int, sized: bool, where: str = "/tmp") -> list[str]:
    """A private tmpfs at ``where`` (/tmp): of ``size_mb`` where bwrap can size one."""
    return ["--size", str(size_mb * MB), "--tmpfs", where] if sized else ["--tmpfs", where]


def root_links() -> list[str]:
    """/bin, /lib... as on the host: symlinks into /usr on merged-/usr systems, else read-only binds."""
    args: list[str] = []
    for name in _ROOT_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    return args


def gpu_nodes(devices: tuple[int, ...], dev_root: Path = Path("/dev")) -> list[Path]:
    """Device nodes of the assigned GPUs only (plus the driver's shared nodes), those present."""
    if not devices:
        return []
    names = [*_NVIDIA_SHARED_NODES, *(f"nvidia{d}" for d in devices), "nvidia-caps"]
    return [dev_root / name for name in names if (dev_root / name).exists()]


def gpu_binds(devices: tuple[int, ...], dev_root: Path = Path("/dev")) -> list[str]:
    """The binds of :func:`gpu_nodes`.

    Verified on an H200: with these nodes CUDA initialises inside the sandbox; with none bound
    cuInit reports no device, so a GPU not assigned to the run is unreachable."""
    args: list[str] = []
    for node in gpu_nodes(devices, dev_root):
        args += ["--dev-bind", str(node), f"/dev/{node.name}"]
    return args


def gpu_groups(devices: tuple[int, ...], dev_root: Path = Path("/dev")) -> tuple[int, ...] | None:
    """The groups an unprivileged host user needs to open the assigned GPUs' device nodes: those of
    nodes not open to every user (a driver loaded with NVreg_DeviceFileMode=0660). None when one is
    open to root alone (group root: that group is never handed out). MIG's nvidia-caps nodes are
    not counted (0400 root by default: MIG needs a root run)."""
    needed: set[int] = set()
    for node in gpu_nodes(devices, dev_root):
        info = node.stat()
        if stat.S_ISCHR(info.st_mode) and info.st_mode & 0o006 != 0o006:
            if info.st_gid == 0 or info.st_mode & 0o060 != 0o060:
                return None
            needed.add(info.st_gid)
    return tuple(sorted(needed))


class _NamespaceTerminator:
    """Signals every process of one bwrap PID namespace, found through bwrap's ``--info-fd`` report."""

    def __init__(self, proc: subprocess.Popen[bytes], info_read: int) -> None:
        self._proc = proc
        self._info_read = info_read  # read without blocking: bwrap writes its report once, at start
        self._report = b""
        self._info: dict[str, int] | None = None

    def _namespace(self) -> dict[str, int] | None:
        if self._info is None:
            os.set_blocking(self._info_read, False)
            with contextlib.suppress(BlockingIOError, OSError):
                while chunk := os.read(self._info_read, 4096):
                    self._report += chunk
            with contextlib.suppress(ValueError):
                self._info = json.loads(self._report)
        return self._info

    def _members(self, info: dict[str, int]) -> list[int]:
        wanted = f"pid:[{info['pid-namespace']}]"
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "ns" / "pid") == wanted:
                        pids.append(int(entry.name))
        return pids

    def terminate(self) -> None:
        info = self._namespace()
        if info is None:  # bwrap never got as far as starting the script
            _signal_group(self._proc.pid, signal.SIGTERM)
            return
        # Not the namespace's init: its death would SIGKILL everyone before the grace period.
        for pid in self._members(info):
            if pid != info["child-pid"]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    def kill(self) -> None:
        info = self._namespace()
        if info is not None:
            # Only pids verified to be in the namespace (a reaped init's pid may have been reused);
            # init first: its death makes the kernel kill everything left in the namespace.
            members = sorted(self._members(info), key=lambda pid: pid != info["child-pid"])
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._proc.poll() is None:
            _signal_group(self._proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
