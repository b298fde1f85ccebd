"""scripts/test on a fresh clone: it runs scripts/setup first when .venv is missing or stale, and only
then. The real scripts/test and its stamp helper run here; setup, the venv's python and ruff are
stand-ins that record their calls (reinstalling the pinned stack would take minutes)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Stand-ins. Setup makes the venv's two programs and writes the install stamp as the real one does.
SETUP = """#!/bin/sh
set -e
echo setup >> calls.log
mkdir -p .venv/bin
cp "$STUBS/python" "$STUBS/ruff" .venv/bin/
. scripts/install-stamp.sh
install_hash > "$INSTALL_STAMP"
"""
PYTHON = '#!/bin/sh\necho "python $*" >> calls.log\n'
RUFF = "#!/bin/sh\necho ruff >> calls.log\n"
NO_POSTGRES = "#!/bin/sh\n"  # pg_lsclusters listing no cluster: scripts/test starts no PostgreSQL here
# A Docker daemon that answers while $STUBS/daemon.up exists; dockerd makes it until it is stopped.
DOCKER = '#!/bin/sh\n[ "$1" = info ] && [ -f "$STUBS/daemon.up" ]\n'
DOCKERD = """#!/bin/sh
echo "dockerd $*" >> calls.log
touch "$STUBS/daemon.up"
trap 'rm -f "$STUBS/daemon.up"; echo "dockerd stopped" >> calls.log; exit 0' TERM
while :; do sleep 0.05; done
"""
ONLINE_POSTGRES = "#!/bin/sh\necho '15 main 5432 online postgres /var/lib/postgresql/15/main /var/log/pg.log'\n"


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    for name in ("test", "install-stamp.sh"):
        shutil.copy2(REPO / "scripts" / name, root / "scripts" / name)
    for name in ("pyproject.toml", "requirements.lock"):
        shutil.copy2(REPO / name, root / name)
    _executable(root / "scripts" / "setup", SETUP)
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    _executable(stubs / "python", PYTHON)
    _executable(stubs / "ruff", RUFF)
    _executable(stubs / "pg_lsclusters", NO_POSTGRES)
    _executable(stubs / "docker", DOCKER)
    _executable(stubs / "dockerd", DOCKERD)
    (stubs / "daemon.up").touch()  # a daemon runs already: scripts/test starts none
    monkeypatch.setenv("STUBS", str(stubs))
    monkeypatch.setenv("PATH", f"{stubs}{os.pathsep}{os.environ['PATH']}")
    return root


def _run(project: Path, arguments: Sequence[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run scripts/test from elsewhere (it changes into its own root): how it ended, the calls it made."""
    log = project / "calls.log"
    log.unlink(missing_ok=True)
    done = subprocess.run([str(project / "scripts" / "test"), *arguments], cwd="/", capture_output=True, text=True, timeout=60)
    return done, log.read_text().splitlines()


def _scripts_test(project: Path, arguments: Sequence[str] = ("-q",), status: int = 0) -> list[str]:
    done, calls = _run(project, arguments)
    assert done.returncode == status, done.stderr
    return calls


def test_scripts_test_sets_up_a_fresh_clone_then_only_when_stale(project: Path) -> None:
    tests = ["ruff", "python -m pytest -q"]
    assert _scripts_test(project) == ["setup", *tests]  # no .venv
    assert _scripts_test(project) == tests  # current: setup is not run again
    with (project / "requirements.lock").open("a") as lock:
        lock.write("# a new pin\n")
    assert _scripts_test(project) == ["setup", *tests]  # stale stamp
    (project / ".venv" / ".trainarena-installed").unlink()
    assert _scripts_test(project) == ["setup", *tests]  # a venv nobody finished installing


@pytest.mark.skipif(os.geteuid() != 0, reason="scripts/test starts a Docker daemon only as root")
def test_scripts_test_starts_a_docker_daemon_only_when_none_answers_and_stops_only_its_own(project: Path) -> None:
    stubs = Path(os.environ["STUBS"])
    _scripts_test(project)  # set up once
    assert _scripts_test(project) == ["ruff", "python -m pytest -q"]  # one answers: used, left running
    assert (stubs / "daemon.up").exists()
    (stubs / "daemon.up").unlink()
    started = ["dockerd --iptables=false --ip6tables=false --bridge=none", "ruff", "python -m pytest -q", "dockerd stopped"]
    assert _scripts_test(project) == started
    assert not (stubs / "daemon.up").exists()
    _executable(project / ".venv" / "bin" / "python", PYTHON + "exit 1\n")  # failing tests: the status comes back
    assert _scripts_test(project, status=1) == started


PARALLEL = "-n 2 --dist loadfile"
# With no arguments: the suite on two workers but for the tests that assert timing, then those alone.
SQLITE_PASSES = [f"python -m pytest {PARALLEL} -m not serial --durations=25", "python -m pytest -m serial"]


def _postgres_pass(project: Path) -> str:
    """The pytest call of scripts/test's PostgreSQL pass, with the test paths scripts/test names."""
    paths = re.search(r"^POSTGRES_PASS=\(([^)]*)\)", (project / "scripts" / "test").read_text(), flags=re.MULTILINE)
    assert paths is not None
    for path in paths.group(1).split():
        assert (REPO / path).exists(), f"scripts/test's PostgreSQL pass names {path}, which is gone"
    return f"python -m pytest {PARALLEL} --store postgresql --skip-store-independent -m not slow and not browser {paths.group(1)}"


def test_scripts_test_runs_the_store_heavy_tests_again_on_postgresql_when_a_cluster_is_up(project: Path) -> None:
    stubs = Path(os.environ["STUBS"])
    assert _scripts_test(project, ["tests/store"]) == ["setup", "ruff", "python -m pytest tests/store"]  # arguments: one pass
    assert _scripts_test(project, ["--postgresql", "-q"]) == ["ruff", "python -m pytest --store postgresql -q"]
    assert _scripts_test(project, ["--postgresql"]) == ["ruff", "python -m pytest --store postgresql"]
    done, calls = _run(project, [])
    assert done.returncode == 0 and "the PostgreSQL pass is skipped" in done.stdout  # no cluster here
    assert calls == ["ruff", *SQLITE_PASSES]
    _executable(stubs / "pg_lsclusters", ONLINE_POSTGRES)
    assert _scripts_test(project, []) == ["ruff", *SQLITE_PASSES, _postgres_pass(project)]


def test_scripts_test_fails_when_either_pass_fails_and_still_runs_the_second(project: Path) -> None:
    stubs = Path(os.environ["STUBS"])
    _executable(stubs / "pg_lsclusters", ONLINE_POSTGRES)
    _scripts_test(project)  # set up
    for failing in ("not serial --durations=25$", "-m serial$", "--store postgresql"):
        _executable(project / ".venv" / "bin" / "python", PYTHON + f'echo "python $*" | grep -q -- "{failing}" && exit 1\nexit 0\n')
        done, calls = _run(project, [])
        assert done.returncode == 1, f"a failing pass ({failing}) must fail scripts/test"
        assert calls == ["ruff", *SQLITE_PASSES, _postgres_pass(project)]
