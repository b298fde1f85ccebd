"""The hostile example against each sandbox backend: one run per backend, one assertion per isolation
property."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from execution_helpers import EXAMPLES, SANDBOXES, MakeJob, processes_of_run, sandbox_backend

from trainarena.contract import RunStatus
from trainarena.execution.artifacts import validate_artifact
from trainarena.execution.base import RunResult, SandboxJob
from trainarena.settings import ArtifactRules, Settings

SECRET = "TOP-SECRET-HIDDEN-ROW-4242"
ATTEMPT = re.compile(r"^ATTEMPT (?P<name>.+?): (?P<outcome>BLOCKED|SUCCEEDED) (?P<detail>.*)$", re.MULTILINE)
EXPECTED_ATTEMPTS = {
    "net-tcp-localhost", "net-tcp-external", "net-udp-external", "net-dns", "read /etc/shadow",
    "read /root/.ssh/id_rsa", "read /work/main/src", "read $TRAINARENA_DATA_DIR", "hunt-hidden-split",
    "see-host-processes", "leaked-environment", "write /submission/pwned.txt", "write /inputs/pwned.txt",
    "write /work/pwned.txt",
}


@dataclass(frozen=True)
class HostileRun:
    job: SandboxJob
    result: RunResult
    stdout: str
    hidden_file: Path
    sibling_file: Path


@pytest.fixture(scope="module", params=SANDBOXES)
def hostile(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> HostileRun:
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    settings = Settings(data_dir=data_dir)
    hidden_file = settings.hidden_dir / "task-1" / "test.jsonl"
    hidden_file.parent.mkdir(parents=True)
    hidden_file.write_text(f'{{"instruction": "q", "output": "{SECRET}"}}\n')
    sibling_file = settings.work_dir / "other-run" / "output" / "model.safetensors"
    sibling_file.parent.mkdir(parents=True)
    sibling_file.write_text(SECRET)
    run_dir = settings.work_dir / "hostile-run"
    (run_dir / "inputs").mkdir(parents=True)
    (run_dir / "inputs" / "train.jsonl").write_text('{"instruction": "say hi", "output": "hi"}\n')
    from trainarena.contract import RunSpec, TaskType

    spec = RunSpec(run_id="hostile-run", task_type=TaskType.INSTRUCT, dataset_file="train.jsonl", budget_seconds=30, seed=1)
    probes = ":".join(str(p) for p in (hidden_file, hidden_file.parent, sibling_file, settings.work_dir, data_dir))
    job = SandboxJob(spec=spec, entrypoint="train.py", submission_dir=EXAMPLES / "hostile", inputs_dir=run_dir / "inputs",
                     output_dir=run_dir / "output", log_dir=run_dir / "logs", grace_seconds=1, memory_limit_mb=2048,
                     log_max_bytes=1_000_000, extra_env={"HOSTILE_PROBE_PATHS": probes})
    backend = sandbox_backend(request, request.param, settings.sandbox, (settings.hidden_dir, settings.data_dir))
    result = backend.run(job)
    return HostileRun(job, result, result.stdout_path.read_text(), hidden_file, sibling_file)


def test_the_run_completes_and_every_attempt_is_logged(hostile: HostileRun) -> None:
    assert hostile.result.status is RunStatus.SUCCEEDED, hostile.result.failure_reason
    names = {m["name"] for m in ATTEMPT.finditer(hostile.stdout)}
    assert names >= EXPECTED_ATTEMPTS, f"missing attempts: {EXPECTED_ATTEMPTS - names}"
    assert f"read {hostile.hidden_file}" in names and f"read {hostile.sibling_file}" in names


def test_every_attempt_is_blocked(hostile: HostileRun) -> None:
    breaches = [m.group(0) for m in ATTEMPT.finditer(hostile.stdout) if m["outcome"] == "SUCCEEDED"]
    assert breaches == []


def test_network_fails_without_waiting_for_timeouts(hostile: HostileRun) -> None:
    outcomes = {m["name"]: m["detail"] for m in ATTEMPT.finditer(hostile.stdout)}
    # No interface at all: failures are immediate "unreachable"/resolution errors, not 2 s timeouts.
    assert "timed out" not in outcomes["net-tcp-external"]
    assert "gaierror" in outcomes["net-dns"] or "Temporary failure" in outcomes["net-dns"]


def test_hidden_split_and_sibling_run_are_invisible(hostile: HostileRun) -> None:
    logs = hostile.stdout + hostile.result.stderr_path.read_text()
    assert SECRET not in logs
    for path in (hostile.hidden_file, hostile.sibling_file):
        detail = next(m["detail"] for m in ATTEMPT.finditer(hostile.stdout) if m["name"] == f"read {path}")
        assert "FileNotFoundError" in detail


def test_writes_outside_output_leave_no_trace_on_the_host(hostile: HostileRun) -> None:
    assert not (EXAMPLES / "hostile" / "pwned.txt").exists()
    assert not (hostile.job.inputs_dir / "pwned.txt").exists()
    assert not Path("/tmp/hostile_scratch.txt").exists()  # its /tmp was private
    assert "SCRATCH /tmp/hostile_scratch.txt written" in hostile.stdout


def test_daemon_is_dead_and_its_marker_never_appears(hostile: HostileRun) -> None:
    assert "DAEMON started" in hostile.stdout
    time.sleep(1.5)  # the daemon would write its marker every 0.25 s
    assert processes_of_run(hostile.job.spec.run_id) == []
    assert not (hostile.job.output_dir / "daemon_marker").exists()


def test_nothing_valid_is_left_in_output(hostile: HostileRun) -> None:
    check = validate_artifact(hostile.job.output_dir, hostile.job.spec.task_type, ArtifactRules())
    assert not check.ok


ARTIFACT_TRICKS = '''
import os
open("/output/config.json", "w").write("{}")
os.symlink(os.environ["HIDDEN_FILE"], "/output/model.safetensors")  # scored, it would read the hidden split
open("/output/optimizer.pt", "wb").write(b"\\x80\\x04")  # a pickle: code run when loaded
try:
    os.link("/inputs/train.jsonl", "/output/linked.jsonl")
    print("LINK made", flush=True)
except OSError as exc:
    print("LINK refused", type(exc).__name__, flush=True)
os.makedirs("/output/locked")
open("/output/locked/weights", "w").write("x" * 4096)
os.chmod("/output/locked", 0)  # hidden from whoever checks the artifact?
'''


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_artifact_tricks_are_refused_and_the_platform_still_owns_the_output(
    request: pytest.FixtureRequest, sandbox: str, settings: Settings, make_job: MakeJob,
    script_dir: Callable[[str], Path],
) -> None:
    hidden_file = settings.hidden_dir / "task-1" / "test.jsonl"
    hidden_file.parent.mkdir(parents=True)
    hidden_file.write_text(SECRET)
    job = make_job(script_dir(ARTIFACT_TRICKS), extra_env={"HIDDEN_FILE": str(hidden_file)})
    backend = sandbox_backend(request, sandbox, settings.sandbox, (settings.hidden_dir, settings.data_dir))
    result = backend.run(job)
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason
    assert "LINK refused" in result.stdout_path.read_text()  # /inputs is another mount: no hard link into it
    check = validate_artifact(job.output_dir, job.spec.task_type, ArtifactRules())
    assert not check.ok and f"symlink model.safetensors -> {hidden_file}" in (check.reason or "")
    assert hidden_file.read_text() == SECRET
    shutil.rmtree(job.output_dir)  # whatever the run's user left, the platform can remove it
    assert not job.output_dir.exists()
