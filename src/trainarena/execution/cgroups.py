"""One cgroup per run, in whichever cgroup hierarchy the host has: v2 (unified) or v1 (one mount per
controller), for the ``memory``, ``pids`` and ``cpu`` controllers.

Where: below the platform's own cgroup in each hierarchy (read from ``/proc/self/cgroup`` and
``/proc/self/mountinfo``), so a run's limits nest inside whatever limits the platform itself has.
v1: one directory per controller, under that controller's mount. v2: one directory with every
controller the parent delegates to its children (``cgroup.subtree_control``); we never enable
controllers ourselves. v2 forbids delegating memory to children of a cgroup that holds processes
(the root excepted), so on a v2 host whose platform does not run in the root cgroup the operator
makes a cgroup for runs (``mkdir``, then ``+memory +pids +cpu`` into its ``cgroup.subtree_control``)
and names it in ``SandboxRules.cgroup_parent``. A controller is usable when its run directory can be
created; one that cannot (read-only /sys/fs/cgroup, not delegated, not mounted) is simply absent,
and ``execution.limits`` falls back to an rlimit for it (and says so).

Life cycle: :func:`create_run_cgroup` makes the directories and writes the limits; the run's first
process joins them between fork and exec (:meth:`RunCgroup.join`), so everything it starts is inside;
:meth:`RunCgroup.close` SIGKILLs whatever is left in them (``cgroup.kill`` on v2, else each pid in
``cgroup.procs`` until empty: the pids limit bounds a fork bomb racing the killer) and removes them.
A platform killed with SIGKILL leaves its runs' (then empty) ``trainarena-*`` directories behind;
``rmdir`` removes them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000  # the CFS period the cpu quota is expressed in (the kernel's default)
_EMPTY_TIMEOUT_SECONDS = 5.0  # how long close() keeps killing and retrying rmdir
_RETRY_SECONDS = 0.02


@dataclass(frozen=True)
class Hierarchy:
    """Where one controller lives: its cgroup version and the platform's own cgroup directory there."""

    version: int  # 1 or 2
    parent: Path


@dataclass(frozen=True)
class CgroupLayout:
    """The controllers this host offers the platform (a controller not listed is not available)."""

    hierarchies: Mapping[str, Hierarchy] = field(default_factory=dict)

    @classmethod
    def none(cls) -> CgroupLayout:
        """No controller at all: every limit falls back to an rlimit."""
        return cls({})

    def describe(self, controller: str) -> str:
        found = self.hierarchies.get(controller)
        return "absent" if found is None else f"cgroup v{found.version} at {found.parent}"


def parse_membership(proc_self_cgroup: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as {controller: path}; the v2 line ("0::/path") under the key ""."""
    membership = {}
    for line in proc_self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            membership[controller] = path
    return membership


def parse_mounts(mountinfo: str) -> dict[str, tuple[Path, str]]:
    """cgroup mounts in ``/proc/self/mountinfo`` as {controller: (mount point, mount root)}; the
    cgroup2 mount under the key ""."""
    mounts: dict[str, tuple[Path, str]] = {}
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, point, fstype, options = fields[3], Path(fields[4]), tail[0], tail[2].split(",")
        if fstype == "cgroup2":
            mounts.setdefault("", (point, root))
        elif fstype == "cgroup":
            for controller in CONTROLLERS:
                if controller in options:
                    mounts.setdefault(controller, (point, root))
    return mounts


def _inside(mount: tuple[Path, str], path: str) -> Path:
    point, root = mount
    relative = path if root == "/" else path.removeprefix(root)
    return point / relative.lstrip("/")


def layout_from(proc_self_cgroup: str, mountinfo: str, v2_parent: Path | None = None) -> CgroupLayout:
    """Which controller lives where (see the module docstring); a controller bound to a v1 mount is
    used there (a controller is in one hierarchy at a time). ``v2_parent``: the operator's cgroup v2
    directory for runs (``SandboxRules.cgroup_parent``), used instead of the platform's own cgroup."""
    membership, mounts = parse_membership(proc_self_cgroup), parse_mounts(mountinfo)
    found: dict[str, Hierarchy] = {}
    for controller in CONTROLLERS:
        if controller in mounts and controller in membership:
            found[controller] = Hierarchy(1, _inside(mounts[controller], membership[controller]))
    if v2_parent is None and "" in mounts and "" in membership:
        v2_parent = _inside(mounts[""], membership[""])
    if v2_parent is not None:
        with contextlib.suppress(OSError):
            delegated = (v2_parent / "cgroup.subtree_control").read_text().split()
            for controller in CONTROLLERS:
                if controller in delegated and controller not in found:
                    found[controller] = Hierarchy(2, v2_parent)
    return CgroupLayout(found)


def detect_layout(v2_parent: Path | None = None) -> CgroupLayout:
    """This process's cgroup layout (reads two small /proc files; no cgroup is created)."""
    try:
        return layout_from(Path("/proc/self/cgroup").read_text(), Path("/proc/self/mountinfo").read_text(), v2_parent)
    except OSError:
        return CgroupLayout.none()


def limit_writes(controller: str, version: int, value: float) -> list[tuple[str, str, bool]]:
    """The control files that set ``value`` (bytes, processes, CPUs) as (file, content, required)."""
    if controller == "memory":
        limit = str(int(value))
        if version == 2:
            return [("memory.max", limit, True), ("memory.swap.max", "0", False)]
        # memsw (memory + swap) must be set after the memory limit, and cannot be below it.
        return [("memory.limit_in_bytes", limit, True), ("memory.memsw.limit_in_bytes", limit, False)]
    if controller == "pids":
        return [("pids.max", str(int(value)), True)]
    if controller == "cpu":
        quota = str(max(1000, int(value * CPU_PERIOD_US)))
        if version == 2:
            return [("cpu.max", f"{quota} {CPU_PERIOD_US}", True)]
        return [("cpu.cfs_period_us", str(CPU_PERIOD_US), True), ("cpu.cfs_quota_us", quota, True)]
    raise ValueError(f"unknown cgroup controller {controller!r}; known: {', '.join(CONTROLLERS)}")


@dataclass
class RunCgroup:
    """One run's cgroup directories: {controller: directory} (on v2 every controller shares one)."""

    directories: dict[str, Path]

    def _unique(self) -> list[Path]:
        return list(dict.fromkeys(self.directories.values()))

    def join(self) -> Callable[[], None]:
        """A pre-exec hook: moves the child (and so all it will start) into every directory."""
        targets = [str(directory / "cgroup.procs") for directory in self._unique()]

        def _join() -> None:
            pid = str(os.getpid())
            for target in targets:
                with open(target, "w") as fh:  # noqa: PTH123 - runs between fork and exec: keep it minimal
                    fh.write(pid)

        return _join

    def pids(self) -> set[int]:
        found: set[int] = set()
        for directory in self._unique():
            with contextlib.suppress(OSError):
                found.update(int(pid) for pid in (directory / "cgroup.procs").read_text().split())
        return found

    def oom_kills(self) -> int:
        """Processes the kernel's OOM killer ended inside the run's memory cgroup so far."""
        directory = self.directories.get("memory")
        for events in ("memory.events", "memory.oom_control"):  # v2, v1
            if directory is not None and (directory / events).is_file():
                with contextlib.suppress(OSError, ValueError):
                    for line in (directory / events).read_text().splitlines():
                        if line.startswith("oom_kill "):
                            return int(line.split()[1])
        return 0

    def kill(self) -> None:
        """SIGKILL every process in the run's cgroups, until none is left (or the timeout)."""
        for directory in self._unique():
            if (directory / "cgroup.kill").exists():  # v2, kernel 5.14+: atomic
                with contextlib.suppress(OSError):
                    (directory / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + _EMPTY_TIMEOUT_SECONDS
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(_RETRY_SECONDS)

    def close(self) -> None:
        """Kill what is left and remove the directories (rmdir: control files go with them)."""
        self.kill()
        for directory in self._unique():
            deadline = time.monotonic() + _EMPTY_TIMEOUT_SECONDS
            while directory.exists():
                try:
                    directory.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break  # still busy: left for the operator rather than hanging the platform
                    time.sleep(_RETRY_SECONDS)


def create_run_cgroup(layout: CgroupLayout, run_name: str, limits: Mapping[str, float]) -> RunCgroup:
    """Make the run's cgroup in every hierarchy that offers one of ``limits``' controllers and write
    the limits. Controllers whose directory or required limit cannot be written are left out of the
    result (the caller falls back for them); nothing half-made is left behind."""
    name = f"trainarena-{run_name}-{uuid.uuid4().hex[:6]}"
    directories: dict[str, Path] = {}
    made: list[Path] = []
    for controller, value in limits.items():
        hierarchy = layout.hierarchies.get(controller)
        if hierarchy is None:
            continue
        directory = hierarchy.parent / name
        try:
            if directory not in made:
                directory.mkdir()
                made.append(directory)
            _write_limits(directory, limit_writes(controller, hierarchy.version, value))
        except OSError:
            continue
        directories[controller] = directory
    for directory in made:
        if directory not in directories.values():
            with contextlib.suppress(OSError):
                directory.rmdir()
    return RunCgroup(directories)


def _write_limits(directory: Path, writes: list[tuple[str, str, bool]]) -> None:
    for filename, content, required in writes:
        try:
            (directory / filename).write_text(content)
        except OSError:
            if required:
                raise
