"""The settings sections of how a competitor's run executes: its sandbox and budgets
(``Settings.sandbox``), the checks on what it leaves behind (``artifacts``) and the GPUs it is given
(``resources``)."""

from __future__ import annotations

from pydantic import Field, StrictInt, model_validator

from trainarena.settings.fields import AbsolutePath, Section

__all__ = ["ArtifactRules", "ResourceRules", "SandboxRules"]

HOST_ID_MAX = 2**31 - 1  # the largest uid bwrap takes (it reads them as signed ints; the kernel allows 2**32 - 2)


class SandboxRules(Section):
    """Isolation and budgets of competitor runs."""

    backend: str = Field("bwrap", description="Execution backend: bwrap | docker | local-unsafe.")
    allow_unsafe: bool = Field(False, description="Permit running untrusted code without a sandbox (never in production).")
    grace_seconds: float = Field(10.0, ge=0.0, description="SIGTERM at the budget, SIGKILL this long after.")
    memory_limit_mb: int = Field(
        8192, ge=64, description="Memory cap per run: its cgroup where the host has the controller, else "
        "RLIMIT_AS (RLIMIT_DATA with GPUs) per process."
    )
    log_max_bytes: int = Field(2_000_000, ge=1024, description="Cap on each of stdout and stderr logs.")
    log_tail_chars: int = Field(2000, ge=100, description="Log tail stored as a crashed run's reason.")
    docker_image: str | None = Field(
        None, description="Docker backend: None (default) runs scripts in this host's runtime image, built locally on "
        "first use (`trainarena docker build-image`), with /usr and the training interpreter bound read-only as in "
        "bwrap; or the name of a self-contained image built from docker/runtime.Dockerfile (never pulled)."
    )
    nice: int = Field(
        10, ge=0, le=19, description="Scheduling niceness added to every run's processes: the same for every run "
        "(fair among competitors), below the platform's own processes, so the API and the store stay responsive "
        "while runs train (measured: benchmarks.api_load)."
    )
    cpus_per_run: int = Field(
        0, ge=0, description="CPU threads per run, enforced as a cgroup cpu quota where the host has the "
        "controller; 0 means all of the machine's."
    )
    max_processes: int = Field(
        1024, ge=8, description="Most processes and threads a run may have at once, bwrap's own two included "
        "(cgroup pids.max; the RLIMIT_NPROC fallback is weaker, see execution.limits). Threads count: a "
        "PyTorch run with data-loader workers needs some hundreds; raise it for multi-GPU runs on hosts "
        "with many cores, or set cpus_per_run (which also caps the threads each library starts)."
    )
    tmp_max_mb: int = Field(
        8192, ge=1, description="Size of a run's /tmp, a tmpfs the kernel keeps to it (its pages also count "
        "against the run's memory); the sandbox's /dev/shm is a tmpfs of the same size, and /dev is read-only."
    )
    output_max_mb: int = Field(
        20_000, ge=1, description="Most a run may write to /output: each file exactly (RLIMIT_FSIZE), the total "
        "measured every disk_check_seconds while it runs; a run past it fails. Keep it at or above "
        "artifacts.max_artifact_mb."
    )
    cgroup_parent: AbsolutePath | None = Field(
        None, description="A cgroup v2 directory to make each run's cgroup in, with memory, pids and cpu in its "
        "cgroup.subtree_control; needed on cgroup v2 hosts where the platform does not run in the root cgroup "
        "(v2 forbids delegating memory below a cgroup that holds processes). None: below the platform's own "
        "cgroup, which is what cgroup v1 hosts need."
    )
    disk_check_seconds: float = Field(
        0.5, gt=0.0, description="How often the total size of a run's /output is measured while it runs."
    )
    python: AbsolutePath | None = Field(
        None,
        description="Interpreter of the pinned training environment that runs scripts (its sys.prefix and "
        "sys.base_prefix are bound read-only into the sandbox); None: this platform's own venv interpreter.",
    )
    sandbox_uid: int = Field(65534, ge=1, description="Uid/gid the script runs as inside the bwrap user namespace (nobody); "
                             "the docker backend's container user when the platform runs as root (its group with run_as_pool).")
    run_as: int = Field(
        65534, ge=0, description="Host uid and gid that bwrap, hence the script's processes, run as when the platform "
        "runs as root (nobody), so that a sandbox escape is not root's; needs unprivileged user namespaces, else "
        "runs stay root and `trainarena doctor` says why. 0: run as root (execution.host_user)."
    )
    run_as_pool: tuple[StrictInt, StrictInt] | None = Field(
        None, description="(first uid, count), e.g. [2000000000, 256]: each sandbox of a root platform takes a host uid of "
        "its own from this range instead of sharing run_as (leased host-wide, execution.uid_pool), so live runs "
        "cannot signal, trace or write into each other after a sandbox escape and RLIMIT_NPROC counts one run; the "
        "gid stays run_as. The docker backend's containers take theirs from it too, for their lifetime, the gid "
        "staying sandbox_uid (on a daemon without userns-remap: one with it is refused). Choose uids no user, file or "
        "container on the host has (not a /etc/subuid range). "
        "None: every run is run_as."
    )
    etc_files: tuple[str, ...] = Field(
        ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "passwd", "group", "hosts",
         "localtime", "alternatives", "ssl/certs", "ca-certificates"),
        description="Entries of /etc bound read-only into each run, under bwrap and in the docker backend's host "
        "image (nothing else of /etc is visible).",
    )
    start_timeout_seconds: float = Field(
        60.0, gt=0, description="Docker backend: limit on each docker call (info, import, kill, inspect, rm)."
    )


    @model_validator(mode="after")
    def _check_run_as_pool(self) -> SandboxRules:
        if self.run_as_pool is None:
            return self
        first, count = self.run_as_pool
        if first < 1 or count < 1 or first + count - 1 > HOST_ID_MAX:
            raise ValueError(f"sandbox.run_as_pool: give [first uid, count] with first uid 1 or more, count 1 or more "
                             f"and no uid above {HOST_ID_MAX}; got {list(self.run_as_pool)}")
        if self.run_as == 0:
            raise ValueError("sandbox.run_as_pool needs sandbox.run_as above 0: it is the runs' shared gid, never root's")
        if first <= self.run_as <= first + count - 1:
            raise ValueError(f"sandbox.run_as_pool {list(self.run_as_pool)} holds sandbox.run_as ({self.run_as}), the uid every "
                             "run without a pool shares: choose uids of their own")
        return self


class ArtifactRules(Section):
    """Checks on what a run leaves behind."""

    max_artifact_mb: int = Field(20_000, ge=1, description="Largest artifact directory.")
    forbidden_suffixes: tuple[str, ...] = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
    max_header_mb: int = Field(100, ge=1, description="Largest safetensors JSON header (the safetensors library's own cap).")
    max_depth: int = Field(32, ge=1, description="Deepest folder nesting in /output (a save_pretrained folder is 1-3 deep); "
                           "a deeper output is refused before anything walks it further.")
    max_entries: int = Field(100_000, ge=1, description="Most files and folders in /output; a larger output is refused "
                             "(checking, digesting and publishing walk every entry).")


class ResourceRules(Section):
    """GPU brackets by parameter count (billions) after the task type's memory factor."""

    gpu_brackets: tuple[tuple[float, int], ...] = ((4.0, 1), (12.0, 2), (40.0, 4))
    gpu_max: int = Field(8, ge=1)
    memory_factor_dpo: float = Field(3.0, ge=1.0)
    memory_factor_grpo: float = Field(2.0, ge=1.0)
