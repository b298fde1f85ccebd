"""The probe behind `trainarena doctor`, on this host and with parts of it taken away."""

from __future__ import annotations

from pathlib import Path

import pytest
from execution_helpers import HOST_CGROUPS, needs_bwrap, needs_cgroups

from trainarena.execution.capabilities import Capabilities, Feature, probe_capabilities
from trainarena.execution.cgroups import CgroupLayout
from trainarena.settings import SandboxRules


def _by_name(capabilities: Capabilities) -> dict[str, Feature]:
    return {feature.name: feature for feature in capabilities.features}


@needs_bwrap
@pytest.mark.sandbox
def test_this_host_isolates_with_bwrap_and_its_namespaces(tmp_path: Path) -> None:
    capabilities = probe_capabilities(SandboxRules(), dev_root=tmp_path, docker=str(tmp_path / "no-docker"))
    features = _by_name(capabilities)
    assert capabilities.can_isolate and capabilities.verdict == "bwrap can isolate runs here."
    assert features["bwrap"].ok and features["bwrap"].detail.startswith("bubblewrap ")
    for namespace in ("user", "pid", "net"):
        assert features[f"{namespace} namespace"] == Feature(f"{namespace} namespace", True, "usable", True)
    assert features["disk cap /output"].detail == "20000 MB: RLIMIT_FSIZE per file, total measured every 0.5 s"
    assert not features["docker daemon"].required  # not the configured backend


@needs_cgroups
def test_usable_cgroup_controllers_are_reported_and_the_probe_groups_removed(tmp_path: Path) -> None:
    features = _by_name(probe_capabilities(SandboxRules(), layout=HOST_CGROUPS, dev_root=tmp_path))
    for controller in ("memory", "pids", "cpu"):
        hierarchy = HOST_CGROUPS.hierarchies[controller]
        assert features[f"cgroup {controller}"].ok
        assert features[f"cgroup {controller}"].detail == f"cgroup v{hierarchy.version} at {hierarchy.parent}"
        assert list(hierarchy.parent.glob("trainarena-doctor-*")) == []


def test_without_cgroups_each_controller_is_missing_with_its_consequence_and_fix(tmp_path: Path) -> None:
    rules = SandboxRules(cpus_per_run=2)
    capabilities = probe_capabilities(rules, layout=CgroupLayout.none(), dev_root=tmp_path)
    features = _by_name(capabilities)
    assert [f.name for f in capabilities.missing() if f.name.startswith("cgroup")] == [
        "cgroup memory", "cgroup pids", "cgroup cpu"]
    assert "RLIMIT_AS per process" in features["cgroup memory"].consequence
    assert "RLIMIT_NPROC" in features["cgroup pids"].consequence
    assert "cpus_per_run is not enforced" in features["cgroup cpu"].consequence
    assert "Delegate=yes" in features["cgroup pids"].fix and "/sys/fs/cgroup/pids" in features["cgroup pids"].fix
    assert not features["cgroup pids"].required  # limits weaken, isolation stands


def test_gpu_visibility_lists_device_nodes_and_cuda_visible_devices(tmp_path: Path) -> None:
    for node in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (tmp_path / node).touch()
    gpu = _by_name(probe_capabilities(SandboxRules(), dev_root=tmp_path, environ={"CUDA_VISIBLE_DEVICES": "1"}))["GPU"]
    assert gpu.ok and gpu.detail == "nvidia0, nvidia1; CUDA_VISIBLE_DEVICES=1; a run sees only its own"
    empty = tmp_path / "empty"
    empty.mkdir()
    none = _by_name(probe_capabilities(SandboxRules(), dev_root=empty, environ={}))["GPU"]
    assert not none.ok and none.consequence == "runs train on CPU only"


def test_backends_that_cannot_isolate_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docker = probe_capabilities(SandboxRules(backend="docker"), dev_root=tmp_path, docker=str(tmp_path / "docker"))
    assert not docker.can_isolate and docker.verdict == "docker cannot isolate runs here: missing docker daemon."
    assert _by_name(docker)["docker daemon"].fix == "install docker.io and start dockerd"
    unsafe = probe_capabilities(SandboxRules(backend="local-unsafe"), dev_root=tmp_path)
    assert not unsafe.can_isolate and "without any isolation" in unsafe.verdict
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap to be found
    bare = probe_capabilities(SandboxRules(), dev_root=tmp_path)
    features = _by_name(bare)
    assert not bare.can_isolate and features["bwrap"].fix == "apt-get install bubblewrap"
    assert features["user namespace"].detail == "untested: bwrap is missing"
    assert bare.to_dict()["features"][0] == {"name": "bwrap", "ok": False, "detail": "not installed", "required": True,
                                             "consequence": "the default backend cannot start any run",
                                             "fix": "apt-get install bubblewrap"}
