"""What only the docker backend has: its command line, its image built from this host, the factory
that refuses it without a daemon, and its clean-up after a platform that died mid-run. The isolation
properties it shares with bwrap are tested on both (test_sandbox_*.py, the caps tests)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from execution_helpers import EXAMPLES, MakeJob

from trainarena.contract import RunStatus
from trainarena.execution import make_backend
from trainarena.execution.docker import IMAGE_PYTHON, DockerBackend, bind, outermost
from trainarena.execution.docker_cli import OWNER_LABEL, DockerCli, leftovers, owner_is_gone, owner_label
from trainarena.execution.docker_image import HOST_IMAGE_REPOSITORY, ensure_image, host_image, root_layout
from trainarena.execution.host_user import check_readable, share_inputs
from trainarena.execution.runtime import SandboxUnavailable, training_python
from trainarena.pipeline import link_tree
from trainarena.settings import SandboxRules, Settings

needs_tini = pytest.mark.skipif(not (shutil.which("docker-init") or shutil.which("tini")),
                                reason="no tini (docker-init) on this host: apt-get install tini (docker.io ships it)")


def _options(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, item in enumerate(argv) if item == flag]


def test_the_command_line_isolates_the_run(rules: SandboxRules, make_job: MakeJob) -> None:
    job = make_job("crasher", memory_limit_mb=4096)
    job = replace(job, spec=replace(job.spec, devices=(2, 3)))
    caps = {"cpus_per_run": 4, "max_processes": 300, "tmp_max_mb": 512, "output_max_mb": 1000, "nice": 7,
            "docker_image": "trainarena-runtime:test"}
    backend = DockerBackend(rules.model_copy(update=caps), docker="/usr/bin/docker")
    argv = backend.docker_argv(job, {"TRAINARENA_RUN_ID": job.spec.run_id, "CUDA_VISIBLE_DEVICES": "2,3"}, "ctr")
    image_at = argv.index("trainarena-runtime:test")
    options, command = argv[:image_at], argv[image_at + 1:]
    assert options[:2] == ["/usr/bin/docker", "run"] and "--rm" not in options  # removed after its state is read
    for flag, value in [("--network", "none"), ("--cap-drop", "ALL"), ("--security-opt", "no-new-privileges"),
                        ("--memory", "4096m"), ("--memory-swap", "4096m"), ("--cpus", "4"), ("--name", "ctr"),
                        ("--gpus", '"device=2,3"'), ("--user", "65534:65534"), ("--pull", "never"),
                        ("--workdir", "/submission"), ("--pids-limit", "300"), ("--ulimit", f"fsize={1000 * 1024 * 1024}"),
                        ("--tmpfs", "/tmp:rw,nosuid,nodev,size=512m"), ("--shm-size", "512m"), ("--ipc", "private"),
                        ("--log-driver", "none"), ("--hostname", "sandbox")]:
        assert options[options.index(flag) + 1] == value, flag
    assert "--read-only" in options and "--init" in options  # a self-contained image: docker's own init
    assert _options(options, "--label") == [f"trainarena.run={job.spec.run_id}", f"{OWNER_LABEL}={owner_label()}"]
    assert _options(options, "--mount") == [  # nothing of the host but the run's three directories
        f"type=bind,source={job.submission_dir.resolve()},target=/submission,bind-propagation=rprivate,readonly",
        f"type=bind,source={job.inputs_dir.resolve()},target=/inputs,bind-propagation=rprivate,readonly",
        f"type=bind,source={job.output_dir.resolve()},target=/output,bind-propagation=rprivate"]
    # The assigned GPUs are renumbered inside the container.
    assert _options(options, "--env") == ["CUDA_VISIBLE_DEVICES=0,1", f"TRAINARENA_RUN_ID={job.spec.run_id}"]
    assert command == ["/usr/bin/nice", "-n", "7", "/usr/bin/env", "-u", "PATH", "-u", "HOSTNAME", IMAGE_PYTHON,
                       *job.spec.argv("train.py")[1:]]


@needs_tini
def test_the_host_runtime_binds_what_bwrap_binds_read_only(rules: SandboxRules, make_job: MakeJob) -> None:
    backend = DockerBackend(rules, docker="/usr/bin/docker")
    job = make_job("crasher")
    argv = backend.docker_argv(job, {}, "ctr")
    assert "--gpus" not in argv and "--cpus" not in argv and "--init" not in argv
    python = training_python(rules)
    etc = [Path("/etc") / entry for entry in rules.etc_files if (Path("/etc") / entry).exists()]
    expected = outermost([Path("/usr"), *(Path("/") / d for d in root_layout().bound), *etc, *python.needed_dirs])
    mounts = _options(argv, "--mount")
    assert mounts[:-3] == [bind(path, path, read_only=True) for path in expected]  # type: ignore[arg-type]
    assert Path("/usr") in expected
    image_at = argv.index(backend.runtime.image)
    assert backend.runtime.image.startswith(f"{HOST_IMAGE_REPOSITORY}:")
    assert argv[image_at + 1:image_at + 4] == [backend.runtime.init[0], "-g", "--"]  # tini, seen through the /usr bind
    assert argv[-len(job.spec.argv("train.py")):] == [str(python.executable), *job.spec.argv("train.py")[1:]]


def test_a_path_with_a_comma_is_quoted_in_its_mount() -> None:
    assert bind(Path("/data/a,b"), Path("/inputs"), read_only=True) == \
        'type=bind,"source=/data/a,b",target=/inputs,bind-propagation=rprivate,readonly'
    assert outermost([Path("/usr"), Path("/usr/lib/python3"), Path("/opt/venv")]) == (Path("/opt/venv"), Path("/usr"))


def test_the_host_image_is_named_by_its_contents(tmp_path: Path) -> None:
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "lib").mkdir()  # a host without merged /usr: bound, not linked
    first, again = host_image(tmp_path), host_image(tmp_path)
    assert first.tar == again.tar and first.tag == again.tag  # byte for byte: built once, found after
    assert first.layout.links == (("bin", "usr/bin"),) and first.layout.bound == ("lib",)
    (tmp_path / "lib64").symlink_to("usr/lib64")
    assert host_image(tmp_path).tag != first.tag
    assert len(first.tar) < 20_000  # an empty root: the interpreter is bound, never copied


def test_an_owner_is_gone_only_when_its_process_on_this_host_is() -> None:
    own = owner_label()
    host, pid, start = own.split(":")
    assert not owner_is_gone(own, host)
    assert owner_is_gone(f"{host}:{pid}:{int(start) + 1}", host)  # the pid was reused by another process
    assert owner_is_gone(f"{host}:999999999:1", host, start_time_of=lambda _pid: None)
    assert not owner_is_gone(f"other-host:{pid}:1", host)  # another platform on a shared daemon
    assert not owner_is_gone("garbage", host)


@needs_tini
def test_the_factory_says_what_to_do_without_a_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    (fake / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    settings = Settings(data_dir=tmp_path / "data", sandbox=SandboxRules(backend="docker"))
    with pytest.raises(SandboxUnavailable, match=r"`docker info --format \{\{json .\}\}` failed: Cannot connect"):
        make_backend(settings)


@pytest.mark.docker
def test_the_factory_builds_a_ready_docker_backend(docker_daemon: str, tmp_path: Path) -> None:
    backend = make_backend(Settings(data_dir=tmp_path, sandbox=SandboxRules(backend="docker")))
    assert backend.name == "docker"
    cli = DockerCli(docker_daemon, 30)
    assert cli.call("image", "inspect", backend.runtime.image).returncode == 0  # type: ignore[attr-defined]
    assert ensure_image(cli, host_image()) is False  # built once (by the session), never again


@pytest.mark.docker
def test_a_missing_self_contained_image_is_named_with_the_command_that_builds_it(docker_daemon: str) -> None:
    backend = DockerBackend(SandboxRules(docker_image="trainarena-runtime:absent"), docker=docker_daemon)
    with pytest.raises(SandboxUnavailable, match=r"never pulled: build it \(docker build -f docker/runtime.Dockerfile"):
        backend.prepare()


# A platform that starts one run and is then killed: its argv[1] is the run directory.
PLATFORM = """
import sys
from pathlib import Path
from trainarena.contract import RunSpec, TaskType
from trainarena.execution.base import SandboxJob
from trainarena.execution.docker import DockerBackend
from trainarena.settings import SandboxRules
run = Path(sys.argv[1])
spec = RunSpec(run_id=run.name, task_type=TaskType.INSTRUCT, dataset_file="train.jsonl", budget_seconds=1, seed=1)
job = SandboxJob(spec=spec, entrypoint="train.py", submission_dir=Path(sys.argv[2]), inputs_dir=run / "inputs",
                 output_dir=run / "output", log_dir=run / "logs", grace_seconds=0.5, memory_limit_mb=256,
                 log_max_bytes=100000)
DockerBackend(SandboxRules()).run(job)
"""


def _containers(cli: DockerCli, run_id: str) -> list[dict[str, str]]:
    listing = cli.text("ps", "--all", "--filter", f"label=trainarena.run={run_id}", "--format", "{{json .}}")
    return [json.loads(line) for line in listing.splitlines()]


def _wait_for(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.docker
@pytest.mark.serial  # alone: another test's backend starting meanwhile sweeps the orphan this one leaves on purpose
def test_a_run_whose_platform_died_is_removed_by_the_next_backend(
    docker_daemon: str, tmp_path: Path
) -> None:
    cli = DockerCli(docker_daemon, 30)
    run = tmp_path / "run-orphaned"
    (run / "inputs").mkdir(parents=True)
    (run / "inputs" / "train.jsonl").write_text("{}\n")
    platform = subprocess.Popen([sys.executable, "-c", PLATFORM, str(run), str(EXAMPLES / "overtime")],
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert _wait_for(lambda: any(c["State"] == "running" for c in _containers(cli, run.name)), 60)
    platform.send_signal(signal.SIGKILL)  # no finally block runs: the container is left behind
    platform.wait()
    time.sleep(2)  # past its budget of 1 s and grace of 0.5 s: nobody is left to stop it
    [left] = _containers(cli, run.name)
    assert left["State"] == "running" and left["Names"].startswith("trainarena-run-orphaned-")
    assert [item.container for item in leftovers(cli)] == [left["Names"]]
    alive = cli.text("create", "--label", f"{OWNER_LABEL}={owner_label()}", "--label", "trainarena.run=run-alive",
                     host_image().tag, "/usr/bin/true")
    try:
        DockerBackend(SandboxRules(), docker=docker_daemon).prepare()  # the restarted platform
        assert _containers(cli, run.name) == []
        assert [c["State"] for c in _containers(cli, "run-alive")] == ["created"]  # a live platform's: kept
    finally:
        cli.call("rm", "--force", alive)


def test_the_inputs_are_opened_to_the_container_group_and_an_unreadable_submission_is_refused(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "model").mkdir(parents=True)
    (inputs / "model").chmod(0o700)
    weights = inputs / "model" / "model.safetensors"
    weights.write_bytes(b"w")
    weights.chmod(0o600)  # as the model writer leaves it
    (inputs / "link").symlink_to("/etc/hostname")
    shared = inputs / "train.jsonl"
    shared.write_bytes(b"{}")
    shared.chmod(0o644)  # anyone reads it already: left as it is
    group = os.getegid() + 1 if os.geteuid() == 0 else os.getegid()  # root may hand a file to any group
    share_inputs(inputs, uid=os.geteuid() + 1, gid=group)
    # The container's group reads them; other users of the host still do not.
    assert stat.S_IMODE(weights.stat().st_mode) == 0o640 and stat.S_IMODE((inputs / "model").stat().st_mode) == 0o750
    assert weights.stat().st_gid == (inputs / "model").stat().st_gid == group
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644 and shared.stat().st_gid == os.getegid()
    submission = tmp_path / "checkout"
    submission.mkdir(mode=0o700)
    with pytest.raises(SandboxUnavailable, match=r"checkout \(mode 700\) cannot be read by the sandbox's host user"):
        check_readable(submission, uid=os.geteuid() + 1)
    check_readable(submission, uid=os.geteuid())  # its owner reads it


READ_THE_MODEL = """
import hashlib, pathlib
weights = pathlib.Path("/inputs/model/model.safetensors").read_bytes()
pathlib.Path("/output/digest.txt").write_text(hashlib.sha256(weights).hexdigest())
"""


def test_a_run_reads_the_cached_model_which_stays_closed_to_other_users(
    docker_daemon: str, settings: Settings, make_job: MakeJob, script_dir, tmp_path: Path
) -> None:
    cached = tmp_path / "cache" / "model"
    cached.mkdir(parents=True, mode=0o700)
    weights = cached / "model.safetensors"
    weights.write_bytes(os.urandom(4096))
    weights.chmod(0o600)  # as the model writer leaves it
    job = make_job(script_dir(READ_THE_MODEL))
    link_tree(cached, job.inputs_dir / "model")  # as the pipeline gives a run its base model
    backend = DockerBackend(settings.sandbox, protected=(settings.hidden_dir,), docker=docker_daemon)
    result = backend.run(job)
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason
    assert (job.output_dir / "digest.txt").read_text() == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert weights.stat().st_mode & 0o007 == 0 and cached.stat().st_mode & 0o007 == 0  # never world-readable
    assert (job.inputs_dir / "model" / "model.safetensors").stat().st_ino == weights.stat().st_ino  # a link, no copy
