"""Run a short untrusted Python program (standard library only) in a bubblewrap sandbox: how a GRPO
task's reward functions are called, never in the platform's own process.

What it protects against: network (``--unshare-all`` leaves a down loopback only); reading the data
directory, the hidden splits, the platform's source or environment (the root is an empty tmpfs with
read-only binds of /usr, ``SandboxRules.etc_files``, the base interpreter and the job folder; the
environment is cleared); writing anywhere but a private /tmp and the out folder; running past
``wall_seconds`` (the whole PID namespace is killed); memory beyond ``memory_limit_mb``, more than
``max_processes`` processes and threads (a fork bomb), files larger than ``disk_mb`` and a /tmp beyond
``disk_mb`` (a sized tmpfs): one cgroup per call where the host has the controllers, else the rlimit
fallbacks of ``execution.limits`` (RLIMIT_AS; RLIMIT_NPROC, which does not bind a platform running as
root); RLIMIT_FSIZE always; regaining capabilities in a nested user namespace (``--disable-userns``,
where bubblewrap is 0.8 or later; ``trainarena doctor`` says when it is not); being host root when
the platform is (bwrap starts as ``run_as`` where the host allows it, as for runs: ``execution.host_user``).
What it does not protect against: kernel exploits; CPU time of other work while it runs (no CPU
quota: the wall clock bounds it); the total written to the out folder, which is capped per file only
(the wall clock bounds the number of files). The interpreter runs in isolated mode (``-I -S``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainarena.execution.bwrap import find_bwrap, root_links, run_as_problem, tmp_args, tmpfs_size_supported, userns_args
from trainarena.execution.cgroups import CgroupLayout, detect_layout
from trainarena.execution.disk import MB
from trainarena.execution.host_user import as_host_user, choose_host_user, leased
from trainarena.execution.limits import RunLimits, confine

JOB_MOUNT = "/job"  # the program and its input, read-only
OUT_MOUNT = "/out"  # the only writable folder that outlives the sandbox


@dataclass(frozen=True)
class StdlibSandbox:
    """The binds and limits of one sandboxed program."""

    wall_seconds: float
    memory_limit_mb: int
    etc_files: tuple[str, ...]
    uid: int
    max_processes: int
    disk_mb: int
    cgroup_parent: Path | None = None  # SandboxRules.cgroup_parent
    run_as: int = 0  # SandboxRules.run_as: the host uid a root platform starts bwrap as; 0: root
    run_as_pool: tuple[int, int] | None = None  # SandboxRules.run_as_pool: a uid of its own from there


def run_stdlib_program(
    job: Path, out: Path, program: str, sandbox: StdlibSandbox, cgroups: CgroupLayout | None = None
) -> bool:
    """Run ``/job/<program>`` with ``job`` bound read-only at /job and ``out`` writable at /out; wait.
    Returns True when the wall clock ran out (the whole sandbox is then killed). Raises
    ``SandboxUnavailable`` when bubblewrap is missing. ``cgroups``: default this host's layout."""
    argv = _argv(job, out, program, sandbox)
    limits = RunLimits(sandbox.memory_limit_mb, sandbox.max_processes, file_size_bytes=sandbox.disk_mb * MB)
    layout = detect_layout(sandbox.cgroup_parent) if cgroups is None else cgroups
    problem = functools.partial(run_as_problem, argv[0])
    user, _line = choose_host_user(sandbox.run_as, lambda uid, gid: problem(uid, gid=gid), sandbox.run_as_pool)
    with leased(user) as (user, _lease), \
         confine(f"stdlib-{os.getpid()}", limits, False, layout, None if user is None else user.uid) as confinement:
        return _run(*as_host_user(user, argv, confinement.preexec()), sandbox.wall_seconds)


def _base_python() -> Path:
    python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return python if python.exists() else Path(sys.executable).resolve()


def _argv(job: Path, out: Path, program: str, sandbox: StdlibSandbox) -> list[str]:
    uid = str(sandbox.uid)
    bwrap = find_bwrap()
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--uid", uid,
            "--gid", uid, "--cap-drop", "ALL", *userns_args(bwrap), "--ro-bind", "/usr", "/usr", *root_links(),
            "--proc", "/proc", "--dev", "/dev", *tmp_args(sandbox.disk_mb, tmpfs_size_supported(bwrap))]
    for entry in sandbox.etc_files:
        args += ["--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}"]
    prefix = Path(sys.base_prefix).resolve()
    if not prefix.is_relative_to("/usr"):
        args += ["--ro-bind", str(prefix), str(prefix)]
    args += ["--ro-bind", str(job), JOB_MOUNT, "--bind", str(out), OUT_MOUNT, "--remount-ro", "/", "--chdir", "/tmp",
             "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    return [*args, "--", str(_base_python()), "-I", "-S", f"{JOB_MOUNT}/{program}"]


def _run(argv: list[str], preexec: Callable[[], None] | None, limit: float) -> bool:
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=preexec,
    )
    try:
        process.wait(timeout=limit)
        return False
    except subprocess.TimeoutExpired:
        # bwrap is the PID namespace's parent: killing its group kills init, hence every process inside.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True
