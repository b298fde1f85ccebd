"""Shared by the execution tests (a uniquely named module: ``conftest`` is not importable by name
when several test folders have one)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from trainarena.contract import RunStatus
from trainarena.execution.base import Backend, SandboxJob
from trainarena.execution.cgroups import CgroupLayout, create_run_cgroup, detect_layout
from trainarena.settings import SandboxRules

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "competitors"

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")

MakeJob = Callable[..., SandboxJob]

# The sandboxing backends every adversarial test runs against (``sandbox_backend`` builds one).
SANDBOXES = [pytest.param("bwrap", marks=[pytest.mark.sandbox, needs_bwrap], id="bwrap"),
             pytest.param("docker", marks=pytest.mark.docker, id="docker")]


def sandbox_backend(request: pytest.FixtureRequest, name: str, rules: SandboxRules, protected: tuple[Path, ...]) -> Backend:
    """The ``name`` backend under ``rules``; for docker, a daemon and its image first (or a skip)."""
    if name == "docker":
        from trainarena.execution.docker import DockerBackend

        request.getfixturevalue("docker_daemon")
        return DockerBackend(rules, protected=protected)
    from trainarena.execution.bwrap import BwrapBackend

    return BwrapBackend(rules, protected=protected)

# Python source: tries 300 forks, children sleeping 2 s; leaves ``children`` (how many it got) and
# ``error`` (the exception that stopped it, or "none") for the script it starts to report.
FORK_BOMB = """
import os, time
children, error = 0, "none"
for _ in range(300):
    try:
        pid = os.fork()
    except OSError as exc:
        error = type(exc).__name__
        break
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    children += 1
"""


def _usable_cgroups() -> CgroupLayout:
    """This host's layout, limited to the controllers a run group can really be made in."""
    layout = detect_layout()
    probe = create_run_cgroup(layout, "test-probe", {"memory": 64 << 20, "pids": 16, "cpu": 1})
    usable = set(probe.directories)
    probe.close()
    return CgroupLayout({name: h for name, h in layout.hierarchies.items() if name in usable})


HOST_CGROUPS = _usable_cgroups()
HOST_CGROUPS_COMPLETE = {"memory", "pids", "cpu"} <= set(HOST_CGROUPS.hierarchies)
NO_CGROUPS = "no usable memory+pids+cpu cgroup controllers on this host (read-only or not delegated)"
needs_cgroups = pytest.mark.skipif(not HOST_CGROUPS_COMPLETE, reason=NO_CGROUPS)


def processes_of_run(run_id: str) -> list[int]:
    """Pids of live processes whose environment carries this run's id (the script and any daemon)."""
    needle = f"TRAINARENA_RUN_ID={run_id}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ + b"\0":
            found.append(int(entry.name))
    return found


def host_uids(run_id: str, until: float) -> set[int]:
    """The real uids of the run's processes, as the host sees them, once it has some."""
    while time.monotonic() < until:
        found = set()
        for pid in processes_of_run(run_id):
            status = Path(f"/proc/{pid}/status").read_text()
            found.add(int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]))
        if found:
            return found
        time.sleep(0.05)
    return set()


def two_live_runs_host_uids(backend: Backend, jobs: list[SandboxJob], pool: tuple[int, int], seconds: float) -> list[int]:
    """Run the two ``jobs`` at once on ``backend``; each succeeds, and while they live each is one host
    uid of ``pool`` ([first, count]), not the other's: returns them, in the jobs' order."""
    with ThreadPoolExecutor(4) as threads:
        results = [threads.submit(backend.run, job) for job in jobs]
        seen = [threads.submit(host_uids, job.spec.run_id, time.monotonic() + seconds) for job in jobs]
        uids = [found.result() for found in seen]
        for result in results:
            assert result.result().status is RunStatus.SUCCEEDED, result.result().failure_reason
    first, count = pool
    assert len(uids[0]) == len(uids[1]) == 1 and uids[0] != uids[1]
    assert uids[0] | uids[1] <= set(range(first, first + count))
    return [own.pop() for own in uids]
