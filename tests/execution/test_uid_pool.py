"""``sandbox.run_as_pool``: each live sandbox of a root platform is a host uid of its own, leased
host-wide, so two runs alive at once are different users to the kernel (neither can signal or trace
the other after an escape) while both still read the shared cached inputs through their one gid."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from execution_helpers import MakeJob, needs_bwrap, two_live_runs_host_uids
from pydantic import ValidationError
from test_host_user import needs_unprivileged

from trainarena.execution import host_user, uid_pool
from trainarena.execution.bwrap import BwrapBackend
from trainarena.execution.capabilities import probe_capabilities
from trainarena.execution.cgroups import CgroupLayout
from trainarena.execution.host_user import HostUser, choose_host_user, leased
from trainarena.execution.stdlib_sandbox import StdlibSandbox, run_stdlib_program
from trainarena.execution.uid_pool import UidPool
from trainarena.settings import SandboxRules, Settings

# A range no test elsewhere uses, so a pool test's leases never meet another's under /run.
POOL = (2_100_000_000, 4)
RUN_AS = SandboxRules().run_as


def test_concurrent_leases_get_different_uids_and_a_released_one_is_taken_again(tmp_path: Path) -> None:
    pool = UidPool(100, 3, tmp_path / "leases")
    with pool.lease() as (first, _), pool.lease() as (second, _):
        assert (first, second) == (100, 101)
        with pool.lease() as (third, waited):
            assert third == 102 and waited < 1
    with pool.lease() as (again, _):
        assert again == 100
    assert (tmp_path / "leases").stat().st_mode & 0o777 == 0o700


def test_a_uid_another_process_holds_is_skipped_and_freed_when_that_process_dies(tmp_path: Path) -> None:
    pool = UidPool(100, 2, tmp_path)
    # Another platform on the host holds uid 100 (a flock of its own); it dies without releasing it.
    with subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, time\n"
         f"fd = os.open({str(tmp_path / '100.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pool.lease() as (uid, _):
            assert uid == 101
        holder.kill()
    with pool.lease() as (uid, _):
        assert uid == 100  # the kernel dropped the dead holder's lock


def test_with_every_uid_held_a_sandbox_waits_for_one_and_says_how_long(tmp_path: Path) -> None:
    pool = UidPool(100, 1, tmp_path)
    user = HostUser(100, RUN_AS, pool=pool)
    held = threading.Event()

    def hold_for_a_moment() -> None:
        with pool.lease():
            held.set()
            time.sleep(1.2)

    holder = threading.Thread(target=hold_for_a_moment)
    holder.start()
    held.wait()
    with leased(user) as (own, line):
        assert own == HostUser(100, RUN_AS, pool=pool)
        assert line.startswith("uid 100 after ") and line.endswith(" s waiting for a free uid")
    holder.join()
    with leased(user) as (own, line):
        assert line == "uid 100"
    with leased(None) as (own, line):
        assert (own, line) == (None, "")


def test_a_root_platform_takes_the_pool_where_bwrap_can_start_as_its_uids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_user.os, "geteuid", lambda: 0)
    asked: list[tuple[int, int]] = []

    def fine(uid: int, gid: int) -> None:
        asked.append((uid, gid))

    user, line = choose_host_user(65534, fine, (2_000_000_000, 64))
    assert user == HostUser(2_000_000_000, 65534, pool=UidPool(2_000_000_000, 64))
    assert line == "uids 2000000000-2000000063, one per sandbox, gid 65534 (sandbox.run_as_pool)"
    assert asked == [(2_000_000_000, 65534), (2_000_000_063, 65534)]  # both ends of the range, with the shared gid
    # A range the host does not map: runs share run_as, and every line saying who they run as says why.
    def unmapped(uid: int, _gid: int) -> str | None:
        return "setting up uid map: Invalid argument" if uid >= 2_000_000_000 else None

    assert choose_host_user(65534, unmapped, (2_000_000_000, 64)) == (HostUser(65534, 65534), (
        "uid 65534 (sandbox.run_as; bwrap cannot start as uid 2000000000: setting up uid map: Invalid argument "
        "of sandbox.run_as_pool)"))


def test_the_pool_setting_is_checked_where_it_is_read() -> None:
    assert SandboxRules(run_as_pool=[200000, 64]).run_as_pool == (200000, 64)
    for pool, run_as in (((0, 4), 65534), ((5, 0), 65534), ((2**31 - 3, 4), 65534), ((200000, 4), 0), ((True, 16), 65534),
                         ((65530, 10), 65534)):  # a bool is no uid; the pool may not hold run_as, every other run's uid
        with pytest.raises(ValidationError, match="run_as_pool"):
            SandboxRules(run_as_pool=pool, run_as=run_as)


def test_a_pool_holding_the_hosts_accounts_or_subordinate_uids_is_not_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("alice:100000:65536\nbob:165536:65536\n")
    accounts = [("root", 0), ("daemon", 1), ("bin", 2), ("nobody", 65534)]
    assert UidPool(1, 16).holders(accounts, subuid) == ["daemon (uid 1)", "bin (uid 2)"]
    assert UidPool(160000, 10).holders(accounts, subuid) == ["alice's subordinate uids 100000-165535 (/etc/subuid)"]
    assert UidPool(2_000_000_000, 256).holders(accounts, subuid) == []
    # Held by someone: runs share run_as, and the line says who holds the pool's uids.
    monkeypatch.setattr(host_user.os, "geteuid", lambda: 0)
    monkeypatch.setattr(UidPool, "holders", lambda _pool: ["daemon (uid 1)", "bin (uid 2)", "sys (uid 3)", "sync (uid 4)"])
    assert choose_host_user(65534, lambda _uid, _gid: None, (1, 16)) == (HostUser(65534, 65534), (
        "uid 65534 (sandbox.run_as; sandbox.run_as_pool's uids 1-16 are not free here, held by daemon (uid 1), "
        "bin (uid 2), sys (uid 3) and 1 more)"))


def test_the_hosts_holders_are_read_once_per_process_for_each_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reward sandbox of a GRPO evaluation asks whether the pool is free: the user database and
    /etc/subuid are read the first time only."""
    reads = {"accounts": 0, "subuid": 0}

    def accounts() -> list[tuple[str, int]]:
        reads["accounts"] += 1
        return [("root", 0), ("daemon", 1)]

    def lines(path: Path) -> list[str]:
        assert path == uid_pool.SUBUID
        reads["subuid"] += 1
        return ["alice:100000:65536"]

    monkeypatch.setattr(uid_pool, "_accounts", accounts)
    monkeypatch.setattr(uid_pool, "_read_lines", lines)
    monkeypatch.setattr(uid_pool, "_HOST_HOLDERS", {})
    monkeypatch.setattr(host_user.os, "geteuid", lambda: 0)
    for _ in range(3):  # as run_stdlib_program asks, once per call
        assert choose_host_user(65534, lambda _uid, _gid: None, (1, 16))[0] == HostUser(65534, 65534)
    assert reads == {"accounts": 1, "subuid": 1}
    assert UidPool(1, 16).holders() == ["daemon (uid 1)"] and reads == {"accounts": 1, "subuid": 1}
    assert UidPool(160000, 10).holders() == ["alice's subordinate uids 100000-165535 (/etc/subuid)"]  # another range
    assert UidPool(160000, 10).holders() == ["alice's subordinate uids 100000-165535 (/etc/subuid)"]
    assert reads == {"accounts": 2, "subuid": 2}
    assert UidPool(1, 16).holders([("bin", 2)]) == ["bin (uid 2)"]  # given accounts are read as given, every time
    assert reads == {"accounts": 2, "subuid": 3}


@needs_bwrap
@needs_unprivileged
@pytest.mark.sandbox
def test_two_live_runs_are_two_host_users_sharing_the_inputs_group(
    settings: Settings, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    # Each run reads its 0600 cached input (shared through the gid), then lives a moment to be seen.
    script = script_dir("import time\nprint(open('/inputs/train.jsonl').read()[:5], flush=True)\ntime.sleep(2)\n")
    jobs = [make_job(script) for _ in range(2)]
    for job in jobs:
        (job.inputs_dir / "train.jsonl").chmod(0o600)
    rules = settings.sandbox.model_copy(update={"run_as_pool": POOL})
    backend = BwrapBackend(rules, protected=(settings.hidden_dir,))
    uids = two_live_runs_host_uids(backend, jobs, POOL, seconds=10)
    first, count = POOL
    for job, uid in zip(jobs, uids, strict=True):
        assert job.log_dir.joinpath("stdout.log").read_text().startswith('{"ins')
        log = job.log_dir.joinpath("sandbox.txt").read_text()
        assert f"host_user=uid {uid} of uids {first}-{first + count - 1}, one per sandbox" in log


@needs_bwrap
@needs_unprivileged
@pytest.mark.sandbox
def test_a_reward_program_takes_a_pool_uid_too(tmp_path: Path) -> None:
    job, out = tmp_path / "job", tmp_path / "out"
    job.mkdir()
    out.mkdir()
    out.chmod(0o777)
    (job / "program.py").write_text("import os\nopen('/out/report', 'w').write('x')\n")
    rules = SandboxRules()
    sandbox = StdlibSandbox(20.0, 256, rules.etc_files, rules.sandbox_uid, 16, 4, run_as=rules.run_as, run_as_pool=POOL)
    assert not run_stdlib_program(job, out, "program.py", sandbox)
    report = (out / "report").stat()
    assert POOL[0] <= report.st_uid < POOL[0] + POOL[1] and report.st_gid == rules.run_as


@needs_bwrap
@needs_unprivileged
@pytest.mark.sandbox
def test_doctor_says_whether_each_run_has_a_uid_of_its_own(tmp_path: Path) -> None:
    def feature(rules: SandboxRules, name: str) -> tuple[bool, str, str]:
        found = probe_capabilities(rules, layout=CgroupLayout.none(), dev_root=tmp_path).features
        chosen = next(feature for feature in found if feature.name == name)
        return chosen.ok, chosen.detail, chosen.consequence

    first, count = POOL
    assert feature(SandboxRules(run_as_pool=POOL), "host uid per run")[:2] == (True, f"uids {first}-{first + count - 1}")
    ok, detail, consequence = feature(SandboxRules(), "host uid per run")
    assert not ok and detail == "runs share one uid" and "signal, trace or write into the other runs" in consequence
    assert "each run's own uid" in feature(SandboxRules(run_as_pool=POOL), "cgroup pids")[2]
