"""Which memory cap a run gets, and that the chosen rlimit really reaches the script."""

from __future__ import annotations

import json
import resource
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from execution_helpers import MakeJob, needs_bwrap

from trainarena.contract import RunStatus
from trainarena.execution.bwrap import BwrapBackend
from trainarena.execution.limits import memory_limit_for
from trainarena.settings import Settings


def test_without_cgroup_v2_cpu_runs_get_rlimit_as_and_gpu_runs_rlimit_data(tmp_path: Path) -> None:
    cpu = memory_limit_for("r1", 512, has_gpus=False, cgroup_root=tmp_path)  # no cgroup.controllers: not v2
    gpu = memory_limit_for("r2", 512, has_gpus=True, cgroup_root=tmp_path)
    assert (cpu.kind, cpu.limit_bytes) == ("rlimit-as", 512 * 1024 * 1024)
    assert gpu.kind == "rlimit-data"  # CUDA cannot initialise under RLIMIT_AS
    assert cpu.preexec() is not None and gpu.preexec() is not None


def test_cgroup_v2_is_used_only_when_memory_is_delegated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = Path("/proc/self/cgroup").read_text()
    path = next((line[3:].lstrip("/") for line in own.splitlines() if line.startswith("0::")), None)
    if path is None:
        pytest.skip("this machine reports no cgroup v2 membership line")
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    parent = tmp_path / path
    parent.mkdir(parents=True, exist_ok=True)
    (parent / "cgroup.subtree_control").write_text("cpu\n")
    assert memory_limit_for("r1", 256, has_gpus=False, cgroup_root=tmp_path).kind == "rlimit-as"
    (parent / "cgroup.subtree_control").write_text("cpu memory\n")
    limit = memory_limit_for("r2", 256, has_gpus=True, cgroup_root=tmp_path)
    assert limit.kind == "cgroup-v2" and limit.cgroup_dir == parent / "trainarena-r2"
    assert (parent / "trainarena-r2" / "memory.max").read_text() == str(256 * 1024 * 1024)
    for control in (parent / "trainarena-r2").iterdir():  # a real cgroup dir empties itself on rmdir
        control.unlink()
    limit.close()
    assert not (parent / "trainarena-r2").exists()


LIMITS = '''
import json, resource
print(json.dumps({"as": resource.getrlimit(resource.RLIMIT_AS)[0], "data": resource.getrlimit(resource.RLIMIT_DATA)[0]}))
'''


@pytest.mark.sandbox
@needs_bwrap
def test_a_gpu_run_gets_rlimit_data_instead_of_rlimit_as(
    settings: Settings, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    backend = BwrapBackend(settings.sandbox, protected=(settings.data_dir,))
    job = make_job(script_dir(LIMITS), memory_limit_mb=3000)
    job = replace(job, spec=replace(job.spec, devices=(0,)))
    result = backend.run(job)
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason
    seen = json.loads(result.stdout_path.read_text())
    assert seen == {"as": resource.RLIM_INFINITY, "data": 3000 * 1024 * 1024}
    assert "memory_limit=rlimit-data" in (job.log_dir / "sandbox.txt").read_text()


def test_only_the_assigned_gpus_device_nodes_are_bound(tmp_path: Path) -> None:
    from trainarena.execution.bwrap import gpu_binds

    for node in ("nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm"):
        (tmp_path / node).touch()
    (tmp_path / "nvidia-caps").mkdir()
    args = gpu_binds((1, 2), dev_root=tmp_path)
    targets = [args[i + 2] for i, item in enumerate(args) if item == "--dev-bind"]
    assert targets == ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia1", "/dev/nvidia2", "/dev/nvidia-caps"]
    assert gpu_binds((), dev_root=tmp_path) == []
