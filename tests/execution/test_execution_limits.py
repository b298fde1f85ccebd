"""Which caps a run gets (cgroup or rlimit fallback), that they reach the script, and that a fork
bomb stops at the process limit."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from execution_helpers import (
    FORK_BOMB,
    HOST_CGROUPS_COMPLETE,
    NO_CGROUPS,
    SANDBOXES,
    MakeJob,
    needs_bwrap,
    needs_cgroups,
    processes_of_run,
    sandbox_backend,
)
from execution_helpers import HOST_CGROUPS as HOST

from trainarena.contract import RunStatus
from trainarena.execution.bwrap import BwrapBackend
from trainarena.execution.cgroups import CgroupLayout, Hierarchy, layout_from
from trainarena.execution.disk import MB
from trainarena.execution.limits import RunLimits, confine
from trainarena.settings import Settings

# What this machine kind reports: cgroup v1 with memory under a nested group, cpu mounted with cpuacct.
V1_CGROUP = "9:name=systemd:/\n8:pids:/\n4:memory:/jobs/abc\n1:cpu,cpuacct:/\n0::/\n"
V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_without_cgroups_memory_falls_back_to_rlimits_and_says_so() -> None:
    limits = RunLimits(512, 64, cpus=2, file_size_bytes=8 * MB)
    cpu = confine("r1", limits, has_gpus=False, layout=CgroupLayout.none())
    gpu = confine("r2", limits, has_gpus=True, layout=CgroupLayout.none())
    assert (cpu.memory, gpu.memory) == ("rlimit-as", "rlimit-data")  # CUDA cannot initialise under RLIMIT_AS
    assert (resource.RLIMIT_AS, 512 * MB) in cpu.rlimits and (resource.RLIMIT_DATA, 512 * MB) in gpu.rlimits
    assert (resource.RLIMIT_FSIZE, 8 * MB) in cpu.rlimits
    assert cpu.cpu == "none" and "2-CPU cap is not enforced" in cpu.describe()
    if os.getuid() == 0:  # root is exempt from RLIMIT_NPROC: saying "capped" would be a lie
        assert cpu.processes == "none" and "does not bind root" in cpu.describe()
    else:
        assert cpu.processes == "rlimit-nproc" and (resource.RLIMIT_NPROC, 64) in cpu.rlimits
    assert cpu.describe().count("fallback:") == 3
    # Runs started as an unprivileged host uid (a root platform's sandbox.run_as) are bound by it.
    as_nobody = confine("r3", limits, has_gpus=False, layout=CgroupLayout.none(), host_uid=65534)
    assert as_nobody.processes == "rlimit-nproc" and (resource.RLIMIT_NPROC, 64) in as_nobody.rlimits
    assert "every process of uid 65534 on the host" in as_nobody.describe()


def test_layout_of_a_cgroup_v1_host() -> None:
    layout = layout_from(V1_CGROUP, V1_MOUNTINFO)
    assert layout.hierarchies == {
        "memory": Hierarchy(1, Path("/sys/fs/cgroup/memory/jobs/abc")),
        "pids": Hierarchy(1, Path("/sys/fs/cgroup/pids")),
        "cpu": Hierarchy(1, Path("/sys/fs/cgroup/cpu,cpuacct")),
    }


def test_cgroup_v2_offers_only_the_controllers_delegated_to_children(tmp_path: Path) -> None:
    parent = tmp_path / "platform.service"
    parent.mkdir()
    (parent / "cgroup.subtree_control").write_text("cpu pids\n")
    mountinfo = f"41 31 0:38 / {tmp_path} rw,relatime - cgroup2 cgroup2 rw\n"
    layout = layout_from("0::/platform.service\n", mountinfo)
    assert set(layout.hierarchies) == {"cpu", "pids"}
    assert layout.hierarchies["pids"] == Hierarchy(2, parent)
    limits = confine("r1", RunLimits(256, 32, cpus=1.5), has_gpus=False, layout=layout)
    assert (limits.memory, limits.processes, limits.cpu) == ("rlimit-as", "cgroup-v2", "cgroup-v2")
    [group] = set(limits.cgroup.directories.values())
    assert group.parent == parent and group.name.startswith("trainarena-r1-")
    assert (group / "pids.max").read_text() == "32" and (group / "cpu.max").read_text() == "150000 100000"
    for control in group.iterdir():  # a real cgroup directory empties itself on rmdir
        control.unlink()
    limits.close()
    assert not group.exists()


def test_on_cgroup_v2_the_operators_cgroup_parent_is_used_when_the_platforms_own_cannot_delegate(
    tmp_path: Path,
) -> None:
    own = tmp_path / "system.slice" / "trainarena.service"
    own.mkdir(parents=True)
    (own / "cgroup.subtree_control").write_text("")  # it holds the platform's processes: v2 allows nothing
    runs = tmp_path / "trainarena-runs"
    runs.mkdir()
    (runs / "cgroup.subtree_control").write_text("cpu memory pids\n")
    membership, mountinfo = "0::/system.slice/trainarena.service\n", f"41 31 0:38 / {tmp_path} rw - cgroup2 cgroup2 rw\n"
    assert layout_from(membership, mountinfo).hierarchies == {}
    layout = layout_from(membership, mountinfo, v2_parent=runs)
    assert layout.hierarchies == {c: Hierarchy(2, runs) for c in ("memory", "pids", "cpu")}


@needs_cgroups
def test_a_run_cgroup_holds_its_process_with_the_limits_and_is_gone_after() -> None:
    limits = confine("t1", RunLimits(256, 20, cpus=0.5), has_gpus=False, layout=HOST)
    assert (limits.memory, limits.processes, limits.cpu) == tuple(
        f"cgroup-v{HOST.hierarchies[c].version}" for c in ("memory", "pids", "cpu"))
    directories = dict(limits.cgroup.directories)
    sleeper = subprocess.Popen(["sleep", "30"], preexec_fn=limits.preexec(), start_new_session=True)
    try:
        membership = Path(f"/proc/{sleeper.pid}/cgroup").read_text()
        assert all(d.name in membership for d in directories.values())
        assert sleeper.pid in limits.cgroup.pids()
        assert (directories["pids"] / "pids.max").read_text().strip() == "20"
        if HOST.hierarchies["memory"].version == 1:
            assert int((directories["memory"] / "memory.limit_in_bytes").read_text()) == 256 * MB
            assert (directories["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
    finally:
        limits.close()  # kills what is left in the group, then removes it
    assert sleeper.wait(timeout=5) == -9
    assert not any(d.exists() for d in directories.values())


LIMITS = '''
import json, resource
print(json.dumps({"as": resource.getrlimit(resource.RLIMIT_AS)[0], "data": resource.getrlimit(resource.RLIMIT_DATA)[0],
                  "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[0]}))
'''


@pytest.mark.sandbox
@needs_bwrap
def test_without_cgroups_a_gpu_run_gets_rlimit_data_instead_of_rlimit_as(
    settings: Settings, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    rules = settings.sandbox.model_copy(update={"output_max_mb": 100})
    backend = BwrapBackend(rules, protected=(settings.data_dir,), cgroups=CgroupLayout.none())
    job = make_job(script_dir(LIMITS), memory_limit_mb=3000)
    job = replace(job, spec=replace(job.spec, devices=(0,)))
    result = backend.run(job)
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason
    seen = json.loads(result.stdout_path.read_text())
    assert seen == {"as": resource.RLIM_INFINITY, "data": 3000 * MB, "fsize": 100 * MB}
    report = (job.log_dir / "sandbox.txt").read_text()
    assert "memory_limit=rlimit-data" in report and "fallback: memory" in report


FORK_AND_REPORT = FORK_BOMB + '''
print(f"FORKED {children} {error}", flush=True)
time.sleep(1)
'''


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_fork_bomb_stops_at_the_process_limit(
    request: pytest.FixtureRequest, sandbox: str, settings: Settings, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    if sandbox == "bwrap" and not HOST_CGROUPS_COMPLETE:
        pytest.skip(NO_CGROUPS)  # the docker daemon has cgroups of its own
    rules = settings.sandbox.model_copy(update={"max_processes": 20})
    backend = sandbox_backend(request, sandbox, rules, (settings.data_dir,))
    job = make_job(script_dir(FORK_AND_REPORT))
    peak = []
    runner = threading.Thread(target=lambda: peak.append(backend.run(job)))
    runner.start()
    seen = 0
    while runner.is_alive():  # the host's view: how many processes of this run exist at once
        seen = max(seen, len(processes_of_run(job.spec.run_id)))
        time.sleep(0.05)
    result = peak[0]
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason
    forked, error = result.stdout_path.read_text().split()[1:3]
    # 20 tasks in the cgroup: the sandbox's own (bwrap's two; docker's init), the script, its children.
    own = {"bwrap": 2, "docker": 1}[sandbox]
    assert 0 < int(forked) <= 20 - own - 1 and error == "BlockingIOError"
    assert seen <= 20
    assert "processes=cgroup-v" in (job.log_dir / "sandbox.txt").read_text()
    assert processes_of_run(job.spec.run_id) == []


HOLD = '''
import time
open("/output/started", "w").write("1")
time.sleep(3)
'''


@pytest.mark.sandbox
@needs_bwrap
@needs_cgroups
def test_a_bwrap_run_lives_in_its_own_cgroup_with_its_limits_which_is_removed_after(
    settings: Settings, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    rules = settings.sandbox.model_copy(update={"max_processes": 40, "cpus_per_run": 1})
    backend = BwrapBackend(rules, protected=(settings.data_dir,))
    job = make_job(script_dir(HOLD), memory_limit_mb=300)
    finished = []
    runner = threading.Thread(target=lambda: finished.append(backend.run(job)))
    runner.start()
    while not (job.output_dir / "started").exists() and runner.is_alive():
        time.sleep(0.05)
    groups = {c: sorted(h.parent.glob(f"trainarena-{job.spec.run_id}-*")) for c, h in HOST.hierarchies.items()}
    try:
        assert all(len(found) == 1 for found in groups.values()), groups
        assert (groups["pids"][0] / "pids.max").read_text().strip() == "40"
        if HOST.hierarchies["memory"].version == 1:
            assert int((groups["memory"][0] / "memory.limit_in_bytes").read_text()) == 300 * MB
            assert (groups["cpu"][0] / "cpu.cfs_quota_us").read_text().strip() == "100000"
        else:
            assert (groups["memory"][0] / "memory.max").read_text().strip() == str(300 * MB)
    finally:
        runner.join()
    assert finished[0].status is RunStatus.SUCCEEDED, finished[0].failure_reason
    assert not any(found[0].exists() for found in groups.values())
    report = (job.log_dir / "sandbox.txt").read_text()
    assert "fallback:" not in report and "cpu=cgroup-v" in report


def test_only_the_assigned_gpus_device_nodes_are_bound(tmp_path: Path) -> None:
    from trainarena.execution.bwrap import gpu_binds

    for node in ("nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm"):
        (tmp_path / node).touch()
    (tmp_path / "nvidia-caps").mkdir()
    args = gpu_binds((1, 2), dev_root=tmp_path)
    targets = [args[i + 2] for i, item in enumerate(args) if item == "--dev-bind"]
    assert targets == ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia1", "/dev/nvidia2", "/dev/nvidia-caps"]
    assert gpu_binds((), dev_root=tmp_path) == []


def test_runs_are_started_below_the_platforms_priority() -> None:
    """A run's processes get the rules' niceness on top of the platform's: the API keeps answering
    while runs train (benchmarks.api_load), and every run gets the same, so competitors stay even."""
    confinement = confine("n1", RunLimits(256, 64, nice=7), has_gpus=False, layout=CgroupLayout.none())
    script = "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"
    child = subprocess.run([sys.executable, "-c", script], preexec_fn=confinement.preexec(), capture_output=True, text=True, check=True)
    assert int(child.stdout) == os.getpriority(os.PRIO_PROCESS, 0) + 7
    assert "nice=7" in confinement.describe()
    assert Settings().sandbox.nice == 10
