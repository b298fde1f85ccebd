"""``sandbox.run_as_pool`` under the docker backend: each container of a root platform is a host uid of
its own, leased as bwrap's sandboxes lease theirs (``execution.uid_pool``) from before ``docker run``
until the container is removed, whatever way the run ends. The command line and the lease are tested
against a stand-in docker CLI; two live containers being two host users, against a real daemon."""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from execution_helpers import MakeJob, two_live_runs_host_uids

from trainarena.contract import RunStatus
from trainarena.execution import docker, host_user
from trainarena.execution.capabilities import probe_capabilities
from trainarena.execution.cgroups import CgroupLayout
from trainarena.execution.docker import DockerBackend, userns_refusal
from trainarena.execution.docker_cli import USERNS_REMAP_FIX, DaemonInfo, DockerCli, daemon_info
from trainarena.execution.output_tree import remove_tree, settle_modes
from trainarena.execution.runtime import SandboxUnavailable
from trainarena.execution.uid_pool import UidPool
from trainarena.settings import SandboxRules, Settings

# A range no other test uses (test_uid_pool's is 2_100_000_000..3), so leases never meet under /run.
POOL = (2_100_000_100, 4)
GID = SandboxRules().sandbox_uid

# The docker CLI, as far as a run uses it: each call logged with the uids whose lease some process
# holds at that moment; `info` answers the file `info.json` where there is one (else a plain daemon's
# facts); `run` behaves as the file `outcome` says (ok, fail, hang until `docker kill`).
FAKE_DOCKER = """#!{python}
import fcntl, json, os, signal, sys, time
from pathlib import Path
HERE, LEASES = Path({here!r}), Path({leases!r})
args = sys.argv[1:]

def held(path):
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)

leased = sorted(int(path.stem) for path in LEASES.glob("*.lock") if held(path))
with open(HERE / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"args": args, "leased": leased}}) + "\\n")
if args[0] == "info":
    info = HERE / "info.json"
    print(info.read_text() if info.exists() else json.dumps({{"CgroupVersion": "2", "DockerRootDir": "/var/lib/docker",
                                                              "SecurityOptions": ["name=seccomp,profile=builtin"]}}))
elif args[0] == "inspect":
    print("false")
elif args[0] == "kill":
    os.kill(int((HERE / (args[-1] + ".pid")).read_text()), signal.SIGTERM if "--signal" in args else signal.SIGKILL)
elif args[0] == "rm" and (HERE / "rm-fails").exists():
    sys.exit("Error response from daemon: the daemon is busy")
elif args[0] == "run":
    (HERE / (args[args.index("--name") + 1] + ".pid")).write_text(str(os.getpid()))
    outcome = (HERE / "outcome").read_text()
    if outcome == "hang":
        time.sleep(60)
    sys.exit(0 if outcome == "ok" else 1)
"""


class FakeDocker:
    def __init__(self, folder: Path, leases: Path) -> None:
        folder.mkdir()
        self.folder = folder
        self.executable = folder / "docker"
        self.executable.write_text(FAKE_DOCKER.format(python=sys.executable, here=str(folder), leases=str(leases)))
        self.executable.chmod(0o755)

    def calls(self) -> list[dict]:  # type: ignore[type-arg]
        return [json.loads(line) for line in (self.folder / "calls.jsonl").read_text().splitlines()]


@pytest.fixture
def as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[tuple[int, int]]]:
    """A root platform, as far as choosing and handing over the container's user goes: the pool's
    leases under a folder of the test's, /output handed over only on record. Returns both."""
    leases = tmp_path / "leases"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(host_user, "UidPool", lambda first, count: UidPool(first, count, leases))
    handed: list[tuple[int, int]] = []
    monkeypatch.setattr(docker, "hand_over", lambda _job, uid, gid: handed.append((uid, gid)))
    return leases, handed


def _lease_is_free(leases: Path, uid: int) -> bool:
    fd = os.open(leases / f"{uid}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@pytest.mark.parametrize(("outcome", "status"), [("ok", RunStatus.SUCCEEDED), ("fail", RunStatus.FAILED),
                                                 ("hang", RunStatus.TIMED_OUT)])
def test_a_container_runs_as_its_leased_uid_which_is_freed_once_it_is_removed(
    outcome: str, status: RunStatus, as_root: tuple[Path, list[tuple[int, int]]], make_job: MakeJob, tmp_path: Path
) -> None:
    leases, handed = as_root
    fake = FakeDocker(tmp_path / "fake", leases)
    (fake.folder / "outcome").write_text(outcome)
    first = POOL[0]
    rules = SandboxRules(run_as_pool=POOL, docker_image="trainarena-runtime:test")
    backend = DockerBackend(rules, docker=str(fake.executable))
    job = make_job("crasher", budget=1.0, grace=0.5)
    with UidPool(*POOL, leases).lease() as (taken, _):  # another live sandbox holds the pool's first uid
        assert taken == first
        result = backend.run(job)
    assert result.status is status, result.failure_reason
    calls = fake.calls()
    [run] = [call for call in calls if call["args"][0] == "run"]
    argv = run["args"]
    assert argv[argv.index("--user") + 1] == f"{first + 1}:{GID}" and handed == [(first + 1, GID)]
    assert run["leased"] == [first, first + 1]  # held while the container lives
    # Leased, then the containers of dead platforms removed (one may run as that uid), then the run.
    verbs = [call["args"][0] for call in calls]
    sweep = max(i for i, verb in enumerate(verbs) if verb == "ps")
    assert verbs[:3] == ["info", "image", "ps"] and sweep == 3 and verbs[4] == "run" and verbs[-1] == "rm"
    assert calls[sweep]["leased"] == [first, first + 1]
    if outcome == "hang":
        assert [call["args"][:3] for call in calls if call["args"][0] == "kill"][0] == ["kill", "--signal", "TERM"]
    [remove] = [call for call in calls if call["args"][0] == "rm"]
    assert remove["leased"] == [first, first + 1]  # still held until the container is gone
    assert _lease_is_free(leases, first + 1)  # and free after
    log = (job.log_dir / "sandbox.txt").read_text()
    assert f"user={first + 1}:{GID}\nhost_user=uid {first + 1} of uids {first}-{first + 3}, one per sandbox, gid {GID}" in log


def test_a_container_docker_failed_to_remove_keeps_its_uid_until_it_is_removed(
    as_root: tuple[Path, list[tuple[int, int]]], make_job: MakeJob, tmp_path: Path
) -> None:
    leases, _handed = as_root
    fake = FakeDocker(tmp_path / "fake", leases)
    (fake.folder / "outcome").write_text("ok")
    (fake.folder / "rm-fails").touch()
    backend = DockerBackend(SandboxRules(run_as_pool=POOL, docker_image="trainarena-runtime:test"), docker=str(fake.executable))
    assert backend.run(make_job("crasher")).status is RunStatus.SUCCEEDED
    assert not _lease_is_free(leases, POOL[0])  # the container may still run as it
    backend.run(make_job("crasher"))
    [first_run, second_run] = [call["args"] for call in fake.calls() if call["args"][0] == "run"]
    assert [argv[argv.index("--user") + 1] for argv in (first_run, second_run)] == [f"{POOL[0]}:{GID}", f"{POOL[0] + 1}:{GID}"]
    backend.close()  # docker still fails: both kept
    assert not _lease_is_free(leases, POOL[0]) and not _lease_is_free(leases, POOL[0] + 1)
    (fake.folder / "rm-fails").unlink()
    backend.close()
    assert _lease_is_free(leases, POOL[0]) and _lease_is_free(leases, POOL[0] + 1)


def test_without_a_pool_every_container_is_sandbox_uid_as_before(
    as_root: tuple[Path, list[tuple[int, int]]], make_job: MakeJob, tmp_path: Path
) -> None:
    leases, handed = as_root
    fake = FakeDocker(tmp_path / "fake", leases)
    (fake.folder / "outcome").write_text("ok")
    backend = DockerBackend(SandboxRules(docker_image="trainarena-runtime:test"), docker=str(fake.executable))
    job = make_job("crasher")
    assert backend.run(job).status is RunStatus.SUCCEEDED
    verbs = [call["args"][0] for call in fake.calls()]
    assert verbs[:4] == ["info", "image", "ps", "run"] and verbs.count("ps") == 1 and verbs[-1] == "rm"  # no sweep per run
    [run] = [call["args"] for call in fake.calls() if call["args"][0] == "run"]
    assert run[run.index("--user") + 1] == f"{GID}:{GID}" and handed == [(GID, GID)]
    assert not leases.exists()
    assert "host_user=" not in (job.log_dir / "sandbox.txt").read_text()


def test_a_pool_holding_the_containers_shared_uid_is_not_used_and_doctor_says_why(
    as_root: tuple[Path, list[tuple[int, int]]], tmp_path: Path
) -> None:
    rules = SandboxRules(backend="docker", run_as=1000, sandbox_uid=POOL[0] + 1, run_as_pool=POOL)
    user, line = docker.container_user(rules)
    assert user.pool is None and (user.uid, user.gid) == (POOL[0] + 1, POOL[0] + 1)
    assert line == (f"uid {POOL[0] + 1} (sandbox.sandbox_uid; sandbox.run_as_pool's uids {POOL[0]}-{POOL[0] + 3} "
                    f"hold uid {POOL[0] + 1}, the uid every sandbox without a pool shares)")

    def feature(rules: SandboxRules) -> tuple[bool, str]:
        found = probe_capabilities(rules, layout=CgroupLayout.none(), dev_root=tmp_path).features
        chosen = next(feature for feature in found if feature.name == "host uid per run")
        return chosen.ok, chosen.detail

    assert feature(rules) == (False, f"runs share one uid: {line}")
    assert feature(SandboxRules(backend="docker", run_as_pool=POOL)) == (True, f"uids {POOL[0]}-{POOL[0] + 3}")
    assert feature(SandboxRules(backend="docker")) == (False, "runs share one uid")


SEEN_AND_WAIT = """
import os, time
print(open('/inputs/train.jsonl').read()[:5], flush=True)
open('/output/uid.txt', 'w').write(str(os.getuid()))
time.sleep(3)
"""


@pytest.mark.docker
@pytest.mark.skipif(os.geteuid() != 0, reason="a uid per run is handed out by a root platform only")
def test_two_live_containers_are_two_host_users_sharing_the_inputs_group(
    docker_daemon: str, settings: Settings, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    jobs = [make_job(script_dir(SEEN_AND_WAIT)) for _ in range(2)]
    for job in jobs:
        (job.inputs_dir / "train.jsonl").chmod(0o600)  # read through the shared gid
    rules = settings.sandbox.model_copy(update={"run_as_pool": POOL})
    backend = DockerBackend(rules, protected=(settings.hidden_dir,), docker=docker_daemon)
    backend.prepare()  # the image and the sweep before the clock starts
    uids = two_live_runs_host_uids(backend, jobs, POOL, seconds=30)
    first, count = POOL
    for job, uid in zip(jobs, uids, strict=True):
        assert job.log_dir.joinpath("stdout.log").read_text().startswith('{"ins')
        written = job.output_dir / "uid.txt"
        assert written.read_text() == str(uid) and (written.stat().st_uid, written.stat().st_gid) == (uid, GID)
        assert f"host_user=uid {uid} of uids {first}-{first + count - 1}" in job.log_dir.joinpath("sandbox.txt").read_text()
        settle_modes(job.output_dir, max_depth=4, max_entries=10)  # the platform takes /output back, as after bwrap
        assert written.stat().st_uid == 0 and written.read_text() == str(uid)
        remove_tree(job.output_dir)
        assert not job.output_dir.exists()
    with UidPool(*POOL).lease() as (again, _):
        assert again == first  # both leases were given back


# `docker info`'s facts on a daemon started with --userns-remap=default (dockremap's range starts at 100000).
REMAPPING = {"CgroupVersion": "2", "DockerRootDir": "/var/lib/docker/100000.100000",
             "SecurityOptions": ["name=seccomp,profile=builtin", "name=userns", "name=cgroupns"]}


@pytest.mark.parametrize("pool", [POOL, None], ids=["pool", "sandbox_uid"])
def test_a_daemon_that_remaps_user_namespaces_is_refused_at_start_saying_what_to_do(
    pool: tuple[int, int] | None, as_root: tuple[Path, list[tuple[int, int]]], make_job: MakeJob, tmp_path: Path
) -> None:
    """Its containers' uids are other host uids than the pool's (or sandbox_uid): the output handed to
    one would not be writable by its container, and a pool's check that its uids are free says nothing."""
    leases, handed = as_root
    fake = FakeDocker(tmp_path / "fake", leases)
    (fake.folder / "info.json").write_text(json.dumps(REMAPPING))
    (fake.folder / "outcome").write_text("ok")
    backend = DockerBackend(SandboxRules(run_as_pool=pool, docker_image="trainarena-runtime:test"), docker=str(fake.executable))
    who = f"uids {POOL[0]}-{POOL[0] + 3}, one per sandbox, gid {GID} (sandbox.run_as_pool)" if pool else f"uid {GID} (sandbox.sandbox_uid)"
    refusal = (f"the Docker daemon remaps user namespaces (userns-remap: `docker info` lists name=userns), so a container "
               f"run as uid N is host uid 100000 + N: the docker backend's containers, as {who}, would not be the host users it "
               "hands /output to and shares /inputs with"
               + ("; sandbox.run_as_pool's uids were checked free on the host, not those" if pool else "")
               + '; give the docker backend a daemon without userns-remap (remove "userns-remap" '
               "from /etc/docker/daemon.json and restart dockerd, or start another dockerd with its own --data-root, "
               "--exec-root and -H socket for trainarena and point DOCKER_HOST at it), or use the bwrap backend "
               "(TRAINARENA_SANDBOX__BACKEND=bwrap)")
    with pytest.raises(SandboxUnavailable) as refused:
        backend.prepare()
    assert str(refused.value) == refusal
    with pytest.raises(SandboxUnavailable, match="remaps user namespaces"):
        backend.run(make_job("crasher"))
    assert [call["args"][0] for call in fake.calls()] == ["info", "info"]  # nothing built, swept, leased or run
    assert handed == [] and not leases.exists()


def test_the_daemons_facts_are_read_from_docker_info(tmp_path: Path) -> None:
    fake = FakeDocker(tmp_path / "fake", tmp_path / "leases")
    cli = DockerCli(str(fake.executable), 10)
    assert daemon_info(cli) == DaemonInfo("2", userns_remap=False, remapped_root=None)
    (fake.folder / "info.json").write_text(json.dumps(REMAPPING))
    assert daemon_info(cli) == DaemonInfo("2", userns_remap=True, remapped_root=100000)
    (fake.folder / "info.json").write_text(json.dumps({**REMAPPING, "DockerRootDir": "/srv/docker", "CgroupVersion": ""}))
    assert daemon_info(cli) == DaemonInfo("1", userns_remap=True, remapped_root=None)
    assert "a host uid of its subordinate range" in userns_refusal(daemon_info(cli), "uid 1000, the platform's own", pooled=False)
    (fake.folder / "info.json").write_text("WARNING: no swap limit support")
    with pytest.raises(SandboxUnavailable, match=r"answered no JSON object: 'WARNING: no swap limit support'"):
        daemon_info(cli)
    # doctor says the same of the daemon: not a daemon the docker backend runs on.
    (fake.folder / "info.json").write_text(json.dumps(REMAPPING))
    found = probe_capabilities(SandboxRules(backend="docker"), layout=CgroupLayout.none(), dev_root=tmp_path, docker=str(fake.executable))
    [daemon] = [feature for feature in found.features if feature.name == "docker daemon"]
    assert (daemon.ok, daemon.detail, daemon.fix) == (False, "answers, but remaps user namespaces (userns-remap)", USERNS_REMAP_FIX)
    assert found.verdict == "docker cannot isolate runs here: missing docker daemon."
