"""The unsafe local backend, the docker command line, and the backend factory."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from execution_helpers import MakeJob, needs_bwrap, processes_of_run

from trainarena.contract import RunStatus
from trainarena.execution import make_backend
from trainarena.execution.docker import IMAGE_PYTHON, DockerBackend, docker_available
from trainarena.execution.local import LocalUnsafeBackend, UnsafeBackendWarning, host_path
from trainarena.execution.runtime import SandboxUnavailable
from trainarena.settings import SandboxRules, Settings


@pytest.fixture
def local(rules: SandboxRules) -> LocalUnsafeBackend:
    with pytest.warns(UnsafeBackendWarning, match="WITHOUT A SANDBOX"):
        return LocalUnsafeBackend(rules)


PATHS = '''
import json, os, sys
open(os.path.join(sys.argv[sys.argv.index("--output-dir") + 1], "done"), "w").write("ok")
print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ)}), flush=True)
'''


def test_local_backend_rewrites_sandbox_paths_to_host_paths(
    local: LocalUnsafeBackend, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    job = make_job(script_dir(PATHS))
    result = local.run(job)
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason
    seen = json.loads(result.stdout_path.read_text())
    argv = seen["argv"]
    assert argv[argv.index("--output-dir") + 1] == str(job.output_dir.resolve())
    assert argv[argv.index("--dataset") + 1] == str(job.inputs_dir.resolve() / "train.jsonl")
    assert seen["cwd"] == str(job.submission_dir.resolve())
    assert seen["env"]["HOME"] != "/tmp" and "trainarena-" in seen["env"]["HOME"]  # private scratch
    assert (job.output_dir / "done").read_text() == "ok"


def test_local_backend_keeps_the_budget_and_reports_crashes(local: LocalUnsafeBackend, make_job: MakeJob) -> None:
    overtime = make_job("overtime", budget=1.0, grace=0.5)
    result = local.run(overtime)
    assert result.status is RunStatus.TIMED_OUT
    assert processes_of_run(overtime.spec.run_id) == []
    crashed = local.run(make_job("crasher"))
    assert crashed.status is RunStatus.FAILED and "deliberate failure" in (crashed.failure_reason or "")


def test_host_path_maps_only_contract_roots(make_job: MakeJob) -> None:
    job = make_job("crasher")
    assert host_path("/output/model.safetensors", job) == f"{job.output_dir.resolve()}/model.safetensors"
    assert host_path("/outputs", job) == "/outputs"
    assert host_path("instruct", job) == "instruct"


def test_docker_command_line_isolates_the_run(rules: SandboxRules, make_job: MakeJob) -> None:
    from dataclasses import replace

    job = make_job("crasher", memory_limit_mb=4096)
    job = replace(job, spec=replace(job.spec, devices=(2, 3)))
    caps = {"cpus_per_run": 4, "max_processes": 300, "tmp_max_mb": 512, "output_max_mb": 1000}
    backend = DockerBackend(rules.model_copy(update=caps), docker="/usr/bin/docker")
    argv = backend.docker_argv(job, {"TRAINARENA_RUN_ID": job.spec.run_id, "CUDA_VISIBLE_DEVICES": "2,3"}, "ctr")
    image_at = argv.index(rules.docker_image)
    options, command = argv[:image_at], argv[image_at + 1:]
    assert options[:3] == ["/usr/bin/docker", "run", "--rm"]
    for flag, value in [("--network", "none"), ("--cap-drop", "ALL"), ("--security-opt", "no-new-privileges"),
                        ("--memory", "4096m"), ("--memory-swap", "4096m"), ("--cpus", "4"), ("--name", "ctr"),
                        ("--gpus", '"device=2,3"'), ("--user", "65534:65534"), ("--pull", "never"), ("-w", "/submission"),
                        ("--pids-limit", "300"), ("--ulimit", f"fsize={1000 * 1024 * 1024}"),
                        ("--tmpfs", "/tmp:rw,nosuid,nodev,size=512m")]:
        assert options[options.index(flag) + 1] == value, flag
    assert "--read-only" in options
    volumes = [options[i + 1] for i, item in enumerate(options) if item == "-v"]
    assert volumes == [f"{job.submission_dir.resolve()}:/submission:ro", f"{job.inputs_dir.resolve()}:/inputs:ro",
                       f"{job.output_dir.resolve()}:/output:rw"]
    envs = [options[i + 1] for i, item in enumerate(options) if item == "-e"]
    assert envs == ["CUDA_VISIBLE_DEVICES=0,1", f"TRAINARENA_RUN_ID={job.spec.run_id}"]  # renumbered in the container
    assert command == [IMAGE_PYTHON, *job.spec.argv("train.py")[1:]]


def test_docker_command_line_without_gpus_or_cpu_cap(rules: SandboxRules, make_job: MakeJob) -> None:
    argv = DockerBackend(rules, docker="docker").docker_argv(make_job("crasher"), {}, "ctr")
    assert "--gpus" not in argv and "--cpus" not in argv


@pytest.mark.docker
@pytest.mark.skipif(shutil.which("docker") is None or not docker_available(), reason="no Docker daemon")
def test_docker_runs_the_crasher(rules: SandboxRules, make_job: MakeJob) -> None:
    result = DockerBackend(rules).run(make_job("crasher"))
    assert result.status is RunStatus.FAILED and "deliberate failure" in (result.failure_reason or "")


@needs_bwrap
def test_factory_builds_bwrap_by_default(settings: Settings) -> None:
    assert make_backend(settings).name == "bwrap"


def test_factory_refuses_local_unsafe_without_the_flag(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, sandbox=SandboxRules(backend="local-unsafe"))
    with pytest.raises(SandboxUnavailable, match="--unsafe"):
        make_backend(settings)
    with pytest.warns(UnsafeBackendWarning):
        assert make_backend(settings, unsafe=True).name == "local-unsafe"
    allowed = Settings(data_dir=tmp_path, sandbox=SandboxRules(backend="local-unsafe", allow_unsafe=True))
    with pytest.warns(UnsafeBackendWarning):
        assert make_backend(allowed).name == "local-unsafe"


def test_factory_rejects_an_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(SandboxUnavailable, match="unknown sandbox backend 'firejail'"):
        make_backend(Settings(data_dir=tmp_path, sandbox=SandboxRules(backend="firejail")))


def test_missing_bwrap_tells_the_operator_what_to_do(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(SandboxUnavailable, match=r"apt-get install bubblewrap.*--unsafe"):
        make_backend(settings)


def test_a_python_prefix_containing_the_data_dir_is_refused(tmp_path: Path) -> None:
    import sys

    settings = Settings(data_dir=Path(sys.prefix) / "trainarena-data")
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    with pytest.raises(SandboxUnavailable, match="protected directory"):
        make_backend(settings)
