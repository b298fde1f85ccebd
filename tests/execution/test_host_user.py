"""A platform running as root starts bwrap as an unprivileged host uid (``sandbox.run_as``): the script
sees the same uid inside, the host sees its processes and files as ``run_as``, and what root alone may
read stays unreadable though bound. Where the platform is not root, or this host does not let ``run_as``
start bwrap, the runs that need it are skipped (saying why)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from execution_helpers import FORK_BOMB, MakeJob, needs_bwrap, processes_of_run

from trainarena.contract import RunStatus
from trainarena.execution import bwrap, host_user
from trainarena.execution.bwrap import BwrapBackend, gpu_groups, root_links, run_as_problem
from trainarena.execution.bwrap import host_user as host_user_of
from trainarena.execution.capabilities import Feature, probe_capabilities
from trainarena.execution.cgroups import CgroupLayout
from trainarena.execution.host_user import STAGE, HostUser, as_host_user, choose_host_user
from trainarena.execution.output_tree import settle_modes
from trainarena.execution.runtime import TrainingPython
from trainarena.execution.stdlib_sandbox import StdlibSandbox, run_stdlib_program
from trainarena.settings import SandboxRules, Settings

RUN_AS = SandboxRules().run_as


def _why_not_unprivileged() -> str | None:
    if os.geteuid() != 0:
        return "the platform is not root here: runs keep its own uid, there is nothing to drop"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    problem = run_as_problem(bwrap, RUN_AS)
    return None if problem is None else f"bwrap cannot start as uid {RUN_AS} here: {problem}"


_WHY_NOT = _why_not_unprivileged()
needs_unprivileged = pytest.mark.skipif(_WHY_NOT is not None, reason=str(_WHY_NOT))

# Reports its uid inside and whether it could read the bound root-only file, leaves a file in
# /output, then stays alive a moment for the host to look at its processes.
WHO_AM_I = """
import os, time
try:
    with open("/submission/root-only.txt") as secret:
        secret_read = "read " + secret.read()
except PermissionError:
    secret_read = "denied"
with open("/output/mine.txt", "w") as out:
    out.write("x")
print(f"uid={os.getuid()} gid={os.getgid()} secret={secret_read}", flush=True)
time.sleep(float(os.environ.get("WHO_AM_I_SLEEP", "0")))
"""


@pytest.fixture
def who_am_i(script_dir: Callable[[str], Path]) -> Path:
    submission = script_dir(WHO_AM_I)
    secret = submission / "root-only.txt"
    secret.write_text("ROOT-ONLY")
    secret.chmod(0o600)
    return submission


@needs_bwrap
@needs_unprivileged
@pytest.mark.sandbox
def test_the_script_keeps_its_uid_inside_while_the_host_sees_run_as(
    settings: Settings, make_job: MakeJob, who_am_i: Path
) -> None:
    job = make_job(who_am_i, extra_env={"WHO_AM_I_SLEEP": "3"})
    (job.inputs_dir / "train.jsonl").chmod(0o600)  # as the platform's caches leave files: shared with run_as
    backend = BwrapBackend(settings.sandbox, protected=(settings.hidden_dir,))
    seen: list[int] = []  # real, effective, saved and filesystem uids of each process

    def watch() -> None:  # the host's view of the script's processes while it lives
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            for pid in processes_of_run(job.spec.run_id):
                status = Path(f"/proc/{pid}/status").read_text()
                uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
                seen.extend(int(uid) for uid in uids)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = backend.run(job)
    watcher.join()
    stdout = job.log_dir.joinpath("stdout.log").read_text()
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason
    uid = SandboxRules().sandbox_uid
    assert f"uid={uid} gid={uid} secret=denied" in stdout
    assert seen and set(seen) == {RUN_AS}
    assert job.output_dir.joinpath("mine.txt").stat().st_uid == RUN_AS
    assert f"host_user=uid {RUN_AS} (sandbox.run_as)" in job.log_dir.joinpath("sandbox.txt").read_text()
    # Settled afterwards, the output is root's again with the platform's modes.
    settle_modes(job.output_dir, max_depth=4, max_entries=10)
    mine = job.output_dir.joinpath("mine.txt").stat()
    assert (mine.st_uid, mine.st_gid, stat.S_IMODE(mine.st_mode)) == (0, 0, 0o644)


@needs_bwrap
@pytest.mark.sandbox
@pytest.mark.skipif(os.geteuid() != 0, reason="only a root platform can run scripts as host root")
def test_run_as_zero_keeps_todays_behaviour_and_says_so(settings: Settings, make_job: MakeJob, who_am_i: Path) -> None:
    job = make_job(who_am_i)
    result = BwrapBackend(SandboxRules(run_as=0), protected=(settings.hidden_dir,)).run(job)
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason
    assert "uid=65534 gid=65534 secret=read ROOT-ONLY" in job.log_dir.joinpath("stdout.log").read_text()
    assert job.output_dir.joinpath("mine.txt").stat().st_uid == 0
    assert "host_user=root (sandbox.run_as is 0)" in job.log_dir.joinpath("sandbox.txt").read_text()


@needs_bwrap
@needs_unprivileged
@pytest.mark.sandbox
def test_a_run_whose_gpu_nodes_only_root_may_open_stays_root_and_says_so(
    settings: Settings, make_job: MakeJob, who_am_i: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bwrap, "gpu_groups", lambda _devices: None)
    job = make_job(who_am_i)
    result = BwrapBackend(settings.sandbox, protected=(settings.hidden_dir,)).run(job)
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason
    assert job.output_dir.joinpath("mine.txt").stat().st_uid == 0
    assert "host_user=root (the run's GPU device nodes open to root only)" in job.log_dir.joinpath("sandbox.txt").read_text()


@needs_bwrap
@needs_unprivileged
@pytest.mark.sandbox
def test_doctor_reports_the_unprivileged_host_uid(tmp_path: Path) -> None:
    def features(rules: SandboxRules) -> dict[str, Feature]:
        found = probe_capabilities(rules, layout=CgroupLayout.none(), dev_root=tmp_path).features
        return {feature.name: feature for feature in found}

    as_run_as, as_root = features(SandboxRules()), features(SandboxRules(run_as=0))
    assert as_run_as["unprivileged host uid"] == Feature("unprivileged host uid", True, f"uid {RUN_AS} (sandbox.run_as)", False)
    root = as_root["unprivileged host uid"]
    assert not root.ok and root.detail == "root (sandbox.run_as is 0)" and "is root's" in root.consequence
    assert root.fix == "set sandbox.run_as (TRAINARENA_SANDBOX__RUN_AS=65534)"
    # Without a pids cgroup, RLIMIT_NPROC binds the run_as uid, never root.
    assert f"every process of uid {RUN_AS} on the host" in as_run_as["cgroup pids"].consequence
    assert "RLIMIT_NPROC does not bind root" in as_root["cgroup pids"].consequence


@needs_bwrap
@needs_unprivileged
@pytest.mark.sandbox
def test_without_a_pids_cgroup_rlimit_nproc_caps_a_run_as_run(
    settings: Settings, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    rules = settings.sandbox.model_copy(update={"max_processes": 20})
    job = make_job(script_dir(FORK_BOMB + "print(children, error)\n"))
    result = BwrapBackend(rules, protected=(settings.hidden_dir,), cgroups=CgroupLayout.none()).run(job)
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason
    forked, error = job.log_dir.joinpath("stdout.log").read_text().split()
    # Root is exempt from RLIMIT_NPROC; as run_as the run stops below 20 processes of that uid.
    assert 0 < int(forked) < 20 and error == "BlockingIOError"
    assert "processes=rlimit-nproc:20" in job.log_dir.joinpath("sandbox.txt").read_text()


@needs_bwrap
@needs_unprivileged
@pytest.mark.sandbox
def test_a_reward_program_runs_as_run_as_too(tmp_path: Path) -> None:
    job, out = tmp_path / "job", tmp_path / "out"  # under pytest's 0700 temp folder, as rewards' are not
    job.mkdir()
    out.mkdir()
    out.chmod(0o777)
    (job / "root-only.txt").write_text("ROOT-ONLY")
    (job / "root-only.txt").chmod(0o600)
    (job / "program.py").write_text(
        "import os\ntry:\n    seen = open('/job/root-only.txt').read()\nexcept PermissionError:\n    seen = 'denied'\n"
        "open('/out/report', 'w').write(f'{os.getuid()} {seen}')\n")
    rules = SandboxRules()
    sandbox = StdlibSandbox(20.0, 256, rules.etc_files, rules.sandbox_uid, 16, 4, run_as=rules.run_as)
    assert not run_stdlib_program(job, out, "program.py", sandbox)
    assert (out / "report").read_text() == f"{rules.sandbox_uid} denied"
    assert (out / "report").stat().st_uid == RUN_AS


@needs_bwrap
@needs_unprivileged
@pytest.mark.sandbox
def test_a_training_interpreter_run_as_cannot_start_keeps_runs_root(tmp_path: Path) -> None:
    def interpreter(name: str, mode: int) -> TrainingPython:
        prefix = tmp_path / name
        prefix.mkdir(mode=0o755)
        (prefix / "python").write_text("#!/bin/sh\nexit 0\n")
        (prefix / "python").chmod(mode)
        return TrainingPython(prefix / "python", (prefix,))

    rules, bwrap_path = SandboxRules(), shutil.which("bwrap") or "bwrap"
    user, line = host_user_of(bwrap_path, rules, interpreter("locked", 0o700))  # root's alone
    assert user is None and line.startswith(f"root (bwrap cannot start as uid {RUN_AS}: ")
    assert "Permission denied" in line
    assert host_user_of(bwrap_path, rules, interpreter("open", 0o755))[0] == HostUser(RUN_AS, RUN_AS)


def test_a_root_platform_falls_back_to_root_when_run_as_cannot_start_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_user.os, "geteuid", lambda: 0)
    assert choose_host_user(65534, lambda _uid, _gid: None) == (HostUser(65534, 65534), "uid 65534 (sandbox.run_as)")
    assert choose_host_user(65534, lambda _uid, _gid: "setting up uid map: Permission denied") == (
        None, "root (bwrap cannot start as uid 65534: setting up uid map: Permission denied)")
    monkeypatch.setattr(host_user.os, "geteuid", lambda: 1000)
    assert choose_host_user(65534, lambda _uid, _gid: "never asked") == (None, "uid 1000, the platform's own")


def test_bind_sources_are_staged_and_nothing_else_is_taken_for_a_bind(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    argv = ["bwrap", "--unshare-all", "--ro-bind", str(folder), "/inputs", "--setenv", "X", "--bind",
            "--ro-bind-try", str(tmp_path / "missing"), "/etc/missing", "--bind", str(folder), "/output",
            "--", "python", "--bind", "a", "b"]
    staged, preexec = as_host_user(HostUser(65534, 65534), argv, None)
    assert staged == ["bwrap", "--unshare-all", "--ro-bind", f"{STAGE}/0", "/inputs", "--setenv", "X", "--bind",
                      "--bind", f"{STAGE}/1", "/output", "--", "python", "--bind", "a", "b"]
    assert preexec is not None
    assert as_host_user(None, argv, None) == (argv, None)
    with pytest.raises(ValueError, match="unknown bwrap option '--bind-fd' at position 1"):
        as_host_user(HostUser(65534, 65534), ["bwrap", "--bind-fd", "3", "/x"], None)
    with pytest.raises(FileNotFoundError):
        as_host_user(HostUser(65534, 65534), ["bwrap", "--ro-bind", str(tmp_path / "missing"), "/x"], None)


@pytest.mark.skipif(os.geteuid() != 0, reason="making device nodes (mknod) needs root")
def test_gpu_nodes_not_open_to_every_user_give_their_group_never_root(tmp_path: Path) -> None:
    def node(name: str, mode: int, gid: int) -> None:
        os.mknod(tmp_path / name, stat.S_IFCHR | mode, os.makedev(1, 3))  # /dev/null's numbers: harmless
        os.chown(tmp_path / name, 0, gid)
        (tmp_path / name).chmod(mode)

    node("nvidiactl", 0o666, 0)
    node("nvidia-uvm", 0o666, 0)
    node("nvidia0", 0o660, 44)  # NVreg_DeviceFileMode=0660, group video
    node("nvidia1", 0o600, 0)
    (tmp_path / "nvidia-caps").mkdir(mode=0o755)  # a folder: bound, never a reason for a group
    assert gpu_groups((0,), dev_root=tmp_path) == (44,)
    assert gpu_groups((0, 1), dev_root=tmp_path) is None  # open to root alone: the run stays root
    assert gpu_groups((), dev_root=tmp_path) == ()


@needs_bwrap
@needs_unprivileged
@pytest.mark.sandbox
def test_the_host_user_holds_its_groups_and_no_others(tmp_path: Path) -> None:
    device = tmp_path / "device"
    device.mkdir(mode=0o755)
    node = device / "group-only"
    node.write_text("GROUP")
    os.chown(node, 0, 4242)
    node.chmod(0o640)
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--ro-bind", "/usr", "/usr", *root_links(),
            "--ro-bind", str(device), "/device", "--", "/usr/bin/cat", "/device/group-only"]

    def read_as(user: HostUser) -> subprocess.CompletedProcess[str]:
        staged, preexec = as_host_user(user, argv, None)
        return subprocess.run(staged, preexec_fn=preexec, capture_output=True, text=True, timeout=20, check=False)

    assert read_as(HostUser(RUN_AS, RUN_AS, groups=(4242,))).stdout == "GROUP"
    denied = read_as(HostUser(RUN_AS, RUN_AS))
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
