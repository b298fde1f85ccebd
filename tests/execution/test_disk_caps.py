"""Disk caps that hold while a run writes: a sized /tmp, each /output file at the cap, the /output
total measured while the run lives (a run past it is stopped and fails, saying why)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from execution_helpers import FORK_BOMB, SANDBOXES, MakeJob, needs_cgroups, processes_of_run, sandbox_backend

from trainarena.contract import RunStatus
from trainarena.execution.base import Backend
from trainarena.execution.bwrap import tmpfs_size_supported
from trainarena.execution.disk import MB, DiskCap, used_bytes
from trainarena.execution.local import LocalUnsafeBackend, UnsafeBackendWarning
from trainarena.settings import Settings


def test_used_bytes_counts_sparse_files_at_length_links_once_and_hidden_folders(tmp_path: Path) -> None:
    with (tmp_path / "sparse").open("wb") as fh:
        fh.truncate(3 * MB)  # no block written: counts at its length all the same
    (tmp_path / "data").write_bytes(b"x" * MB)
    os.link(tmp_path / "data", tmp_path / "data-again")  # one file, two names
    (tmp_path / "escape").symlink_to("/usr")  # never followed
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "inside").write_bytes(b"y" * MB)
    locked.chmod(0)  # what a script may do to hide a folder from the measure
    expected = 3 * MB + MB + 4096 + 4096 + MB  # sparse, data, the link itself, the folder, inside
    assert expected <= used_bytes(tmp_path) <= expected + 4 * 4096
    assert DiskCap("/output", tmp_path, 5 * MB).breach() == "wrote more than 5 MB to /output (the run's cap)"
    assert DiskCap("/output", tmp_path, 6 * MB).breach() is None
    assert used_bytes(tmp_path / "absent") == 0


ONE_BIG_FILE_EACH = '''
import errno
def fill(path, limit):
    written = 0
    try:
        with open(path, "wb") as fh:
            while written < limit:
                fh.write(b"x" * 65536)
                fh.flush()
                written += 65536
    except OSError as exc:
        return written, errno.errorcode[exc.errno]
    return written, "none"
print("TMP", *fill("/tmp/big", 64 << 20), flush=True)
print("OUTPUT", *fill("/output/big", 64 << 20), flush=True)
'''

MANY_FILES = '''
import time
for i in range(200):
    with open(f"/output/part-{i}", "wb") as fh:
        fh.write(b"x" * (1 << 20))
    time.sleep(0.01)
print("wrote all 200 MB", flush=True)
'''


@pytest.fixture(params=SANDBOXES)
def capped(request: pytest.FixtureRequest, settings: Settings) -> Backend:
    rules = settings.sandbox.model_copy(update={"tmp_max_mb": 4, "output_max_mb": 8, "disk_check_seconds": 0.1})
    return sandbox_backend(request, request.param, rules, (settings.data_dir,))


def test_tmp_and_each_output_file_stop_at_their_caps(
    capped: Backend, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    if capped.name == "bwrap" and not tmpfs_size_supported("bwrap"):
        pytest.skip("this bwrap cannot --size a tmpfs (bubblewrap < 0.7, or setuid)")
    job = make_job(script_dir(ONE_BIG_FILE_EACH))
    result = capped.run(job)
    lines = dict(line.split(" ", 1) for line in result.stdout_path.read_text().splitlines())
    tmp_written, tmp_error = lines["TMP"].split()
    output_written, output_error = lines["OUTPUT"].split()
    assert tmp_error == "ENOSPC" and int(tmp_written) <= 4 * MB  # the tmpfs is full
    assert output_error == "EFBIG" and int(output_written) == 8 * MB  # RLIMIT_FSIZE, exactly
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason  # it kept to the cap in total
    report = (job.log_dir / "sandbox.txt").read_text()
    assert f"tmp=tmpfs:{4 * MB}" in report and f"output=rlimit-fsize+measured-every-0.1s:{8 * MB}" in report


DEV_WRITES = ONE_BIG_FILE_EACH.split("print(", 1)[0] + '''
print("SHM", *fill("/dev/shm/big", 64 << 20), flush=True)
try:
    open("/dev/planted", "w")
    print("DEV writable", flush=True)
except OSError as exc:
    print("DEV", errno.errorcode[exc.errno], flush=True)
open("/dev/null", "w").write("devices still work")
'''


def test_dev_shm_is_capped_and_dev_is_read_only_in_bwrap(capped: Backend, make_job: MakeJob, script_dir: Callable[[str], Path]) -> None:
    """bwrap's own /dev is an unsized tmpfs: without a memory cgroup nothing bounded what a run put there."""
    if capped.name != "bwrap" or not tmpfs_size_supported("bwrap"):
        pytest.skip("bwrap's /dev only (sized where bwrap can size a tmpfs)")
    result = capped.run(make_job(script_dir(DEV_WRITES)))
    lines = dict(line.split(" ", 1) for line in result.stdout_path.read_text().splitlines())
    shm_written, shm_error = lines["SHM"].split()
    assert shm_error == "ENOSPC" and int(shm_written) <= 4 * MB
    assert lines["DEV"] == "EROFS"
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason


def test_a_run_writing_past_the_output_cap_is_stopped_and_fails_saying_why(
    capped: Backend, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    job = make_job(script_dir(MANY_FILES), budget=30)
    result = capped.run(job)
    assert result.status is RunStatus.FAILED
    assert (result.failure_reason or "").startswith("wrote more than 8 MB to /output (the run's cap); the run was stopped")
    assert "wrote all" not in result.stdout_path.read_text()
    # Stopped within about one measurement interval of passing the cap, far from the 200 MB it wanted.
    assert 8 * MB < used_bytes(job.output_dir) < 40 * MB
    assert result.wall_seconds < 10
    assert processes_of_run(job.spec.run_id) == []


QUICK_BURST = '''
for i in range(3):
    open(f"/output/part-{i}", "wb").write(b"x" * (4 << 20))
'''


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_burst_past_the_cap_between_two_measurements_still_fails_the_run(
    request: pytest.FixtureRequest, sandbox: str, settings: Settings, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    rules = settings.sandbox.model_copy(update={"output_max_mb": 8, "disk_check_seconds": 60})
    result = sandbox_backend(request, sandbox, rules, (settings.data_dir,)).run(make_job(script_dir(QUICK_BURST)))
    assert result.exit_code == 0 and result.status is RunStatus.FAILED
    assert (result.failure_reason or "").startswith(
        "wrote more than 8 MB to /output (the run's cap); found when the run ended")


FILL_TMP_THEN_FORK = FORK_BOMB + '''
import os
print(f"FORKED {children} {error}", flush=True)
with open(os.path.join(os.environ["TMPDIR"], "big"), "wb") as fh:
    for _ in range(200):
        fh.write(b"x" * (1 << 20))
        fh.flush()
        time.sleep(0.01)
print("filled /tmp", flush=True)
'''


@needs_cgroups
def test_the_unsafe_backend_keeps_the_process_and_scratch_caps_too(
    settings: Settings, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    rules = settings.sandbox.model_copy(update={"max_processes": 10, "tmp_max_mb": 4, "disk_check_seconds": 0.1})
    with pytest.warns(UnsafeBackendWarning):
        backend = LocalUnsafeBackend(rules)
    job = make_job(script_dir(FILL_TMP_THEN_FORK))
    result = backend.run(job)
    forked, error = result.stdout_path.read_text().split()[1:3]
    assert 0 < int(forked) <= 9 and error == "BlockingIOError"  # the script and at most 9 children
    assert result.status is RunStatus.FAILED
    assert (result.failure_reason or "").startswith("wrote more than 4 MB to /tmp (the run's cap)")
    assert "processes=cgroup-v" in (job.log_dir / "sandbox.txt").read_text()
    assert processes_of_run(job.spec.run_id) == []
