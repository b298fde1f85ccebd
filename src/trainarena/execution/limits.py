"""What caps one run's memory, process count, CPU and file sizes: a cgroup where the host has the
controller (``execution.cgroups``: v2 or v1), an rlimit set in the child before exec where it has not.
:attr:`Confinement.describe` says which applied; backends write it to the run's ``logs/sandbox.txt``
and ``trainarena doctor`` shows it before any run.

Memory. cgroup (preferred): memory.max / memory.limit_in_bytes = the limit, swap 0; it covers every
process of the run together, page cache and tmpfs pages (the run's /tmp) included, and the kernel
OOM-kills inside the cgroup only. Fallback RLIMIT_AS: the *virtual address space of each process*; not
the sum over processes (a script may fork N workers of the limit each), and it counts
reserved-but-untouched memory. Fallback for runs with GPUs assigned, RLIMIT_DATA: the CUDA driver
reserves far more virtual address space than any sane RLIMIT_AS, so cuInit fails under it (measured on
an H200: CUDA_ERROR_OUT_OF_MEMORY under an 8 GiB RLIMIT_AS, a context under an 8 GiB RLIMIT_DATA).
RLIMIT_DATA caps each process's private writable mappings, not shared or file-backed ones, nor the sum.

Processes. cgroup pids.max counts the tasks (threads included) of the run's cgroup: exactly this run,
bwrap's own two processes included. Fallback RLIMIT_NPROC is weak, because the kernel counts it by
*real uid*: the sandbox's uid 65534 ("nobody") exists only inside bwrap's user namespace and maps to
the run's host uid (the platform's own, or ``sandbox.run_as`` for a root platform, ``execution.host_user``),
so (measured here, kernel 6.18) with runs as host root the limit is not enforced at all (uid 0 is exempt: 50 forks under a limit of 20), and as any other user it
counts every process of that user on the host too (kernels >= 5.14 count per user namespace *and*
charge the parent's count: with 15 other processes of the platform's uid alive, a limit of 20 allowed
the sandbox one fork), so concurrent runs and the platform itself (or, as ``run_as``, every process of that user) eat into
each other's budget. Under root the fallback is therefore reported as "none".

CPU. cgroup cpu quota: ``cpus`` CPUs' worth of time per period (``SandboxRules.cpus_per_run``). No
rlimit fallback exists (RLIMIT_CPU caps CPU-seconds, not a rate): without the controller only the
thread-count environment variables the pipeline sets apply, which a script may ignore.

File size. RLIMIT_FSIZE caps every file a process of the run writes (EFBIG; Python ignores SIGXFSZ),
always, cgroups or not; the total of /output is watched by ``execution.disk``.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass, replace

from trainarena.contract import RunStatus
from trainarena.execution.base import RunResult, SandboxJob
from trainarena.execution.cgroups import CgroupLayout, RunCgroup, create_run_cgroup
from trainarena.execution.disk import MB, DiskCap, disk_description
from trainarena.settings import SandboxRules


@dataclass(frozen=True)
class RunLimits:
    """What one run may use."""

    memory_mb: int
    max_processes: int  # processes and threads together (the kernel counts threads as tasks)
    cpus: float = 0.0  # CPUs' worth of time; 0: no CPU cap
    file_size_bytes: int = 0  # largest file any process of the run may write; 0: no cap
    nice: int = 0  # scheduling niceness of the run's processes (SandboxRules.nice); 0: the platform's own


@dataclass
class Confinement:
    """One run's caps as applied: ``preexec`` runs in the child before exec, ``close`` (or leaving a
    ``with`` block) after the run: it kills whatever is left in the run's cgroups and removes them."""

    limits: RunLimits
    memory: str  # "cgroup-v1" | "cgroup-v2" | "rlimit-as" | "rlimit-data"
    processes: str  # "cgroup-v1" | "cgroup-v2" | "rlimit-nproc" | "none"
    cpu: str  # "cgroup-v1" | "cgroup-v2" | "none"
    cgroup: RunCgroup
    rlimits: tuple[tuple[int, int], ...]  # (resource.RLIMIT_*, value) set before exec
    notes: tuple[str, ...]  # each fallback, in words

    def preexec(self) -> Callable[[], None]:
        join = self.cgroup.join() if self.cgroup.directories else None
        rlimits = self.rlimits
        nice = self.limits.nice

        def _apply() -> None:
            if join is not None:
                join()
            for which, value in rlimits:
                resource.setrlimit(which, (value, value))
            if nice:
                os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + nice)

        return _apply

    def describe(self) -> str:
        """``logs/sandbox.txt``'s lines about limits: kind:value per resource, then each fallback."""
        limits = self.limits
        cpu = f"cpu={self.cpu}:{limits.cpus:g}" if self.cpu != "none" else "cpu=none"
        size = f"file_size=rlimit-fsize:{limits.file_size_bytes}" if limits.file_size_bytes else "file_size=none"
        lines = [f"memory_limit={self.memory}:{limits.memory_mb * MB} processes={self.processes}:"
                 f"{limits.max_processes} {cpu} {size} nice={limits.nice}"]
        lines += [f"cgroup: {directory}" for directory in dict.fromkeys(self.cgroup.directories.values())]
        lines += [f"fallback: {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def explain(self, result: RunResult) -> RunResult:
        """A failed run the kernel OOM-killed inside its memory cgroup says so (else it reads only
        "exited with code 137" with an empty stderr)."""
        if result.status is RunStatus.SUCCEEDED or not self.cgroup.oom_kills():
            return result
        return out_of_memory(result, self.limits.memory_mb, self.memory)

    def close(self) -> None:
        self.cgroup.close()

    def __enter__(self) -> Confinement:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def out_of_memory(result: RunResult, memory_mb: int, how: str) -> RunResult:
    """``result`` of a run the kernel OOM-killed at its memory cap (``how``: the cap's kind), saying so."""
    reason = (f"out of memory: the kernel killed a process of the run at its memory cap of "
              f"{memory_mb} MB ({how}); {result.failure_reason or ''}")
    return replace(result, failure_reason=reason)


def output_cap(job: SandboxJob, rules: SandboxRules) -> DiskCap:
    """The cap on what one run may write to its /output."""
    return DiskCap("/output", job.output_dir, rules.output_max_mb * MB)


def confine_job(job: SandboxJob, rules: SandboxRules, output: DiskCap, layout: CgroupLayout,
                host_uid: int | None = None) -> Confinement:
    """:func:`confine` with one job's limits: its memory, the rules' process and CPU caps, and the
    output cap as the largest file it may write."""
    limits = RunLimits(job.memory_limit_mb, rules.max_processes, rules.cpus_per_run, output.max_bytes, rules.nice)
    return confine(f"{job.spec.run_id}-{os.getpid()}", limits, bool(job.spec.devices), layout, host_uid)


def write_sandbox_log(job: SandboxJob, backend: str, confinement: Confinement, tmp: str, output: DiskCap, interval: float,
                      host_user: str | None = None) -> None:
    """``logs/sandbox.txt``: which backend ran the job (as which host user, where it says), and which
    caps applied to it, and how."""
    job.log_dir.mkdir(parents=True, exist_ok=True)
    user = "" if host_user is None else f"host_user={host_user}\n"
    (job.log_dir / "sandbox.txt").write_text(
        f"backend={backend}\n" + user + confinement.describe() + disk_description(tmp, output, interval)
    )


def confine(run_name: str, limits: RunLimits, has_gpus: bool, layout: CgroupLayout, host_uid: int | None = None) -> Confinement:
    """The strongest caps this host allows for one run (see the module docstring); ``host_uid``: the
    run's processes' (``execution.host_user``), when not the platform's own."""
    wanted: dict[str, float] = {"memory": limits.memory_mb * MB, "pids": limits.max_processes}
    if limits.cpus:
        wanted["cpu"] = limits.cpus
    cgroup = create_run_cgroup(layout, run_name, wanted)

    def kind(controller: str) -> str | None:
        if controller not in cgroup.directories:
            return None
        return f"cgroup-v{layout.hierarchies[controller].version}"

    rlimits: list[tuple[int, int]] = []
    notes: list[str] = []
    memory = kind("memory")
    if memory is None:
        memory = "rlimit-data" if has_gpus else "rlimit-as"
        rlimits.append((resource.RLIMIT_DATA if has_gpus else resource.RLIMIT_AS, limits.memory_mb * MB))
        notes.append(f"memory: no usable memory cgroup controller; {memory} caps each process, not their sum")
    processes = kind("pids")
    if processes is None:
        processes, note = _process_fallback(limits.max_processes, rlimits, os.getuid() if host_uid is None else host_uid)
        notes.append(note)
    cpu = kind("cpu") or "none"
    if limits.cpus and cpu == "none":
        notes.append(f"cpu: no usable cpu cgroup controller; the {limits.cpus:g}-CPU cap is not enforced")
    if limits.file_size_bytes:
        rlimits.append((resource.RLIMIT_FSIZE, limits.file_size_bytes))
    return Confinement(limits, memory, processes, cpu, cgroup, tuple(rlimits), tuple(notes))


def _process_fallback(max_processes: int, rlimits: list[tuple[int, int]], uid: int) -> tuple[str, str]:
    if uid == 0:
        return "none", ("processes: no usable pids cgroup controller, and RLIMIT_NPROC does not bind root "
                        "(the sandbox's uid maps to uid 0): the process count is not capped")
    rlimits.append((resource.RLIMIT_NPROC, max_processes))
    return "rlimit-nproc", (f"processes: no usable pids cgroup controller; RLIMIT_NPROC counts every process "
                            f"of uid {uid} on the host: this run's, and any other's of that uid")
