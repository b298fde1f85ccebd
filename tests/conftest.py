"""Fixtures shared across the test suite."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory):
    """The offline tiny model, tokenizer and datasets, built once. Set ``$TRAINARENA_TEST_ASSETS`` to a
    directory to reuse a build across sessions; by default the cache sits beside pytest's per-session
    temporary directories, so the next session reuses it (a builder code change gives a new stamp)."""
    from trainarena.assets import ensure_assets

    configured = os.environ.get("TRAINARENA_TEST_ASSETS")
    cache = Path(configured) if configured else tmp_path_factory.getbasetemp().parent / "trainarena-assets-cache"
    return ensure_assets(cache)


@pytest.fixture(scope="session")
def image_assets(tmp_path_factory: pytest.TempPathFactory):
    """The tiny SD-shaped pipeline and image datasets, built once per machine (``$TRAINARENA_TEST_IMAGE_ASSETS``
    to place the cache elsewhere)."""
    from trainarena.assets.image import ensure_image_assets

    configured = os.environ.get("TRAINARENA_TEST_IMAGE_ASSETS")
    cache = Path(configured) if configured else tmp_path_factory.getbasetemp().parent / "trainarena-image-assets-cache"
    return ensure_image_assets(cache)


# Building the assets pre-trains a tiny model (tens of seconds): every test that needs them, directly
# or through another fixture, is slow, so ``-m "not slow"`` never builds them.
_COSTLY_FIXTURES = frozenset({"assets", "image_assets"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _COSTLY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _command_line_if_using(pid: Path, folder: str) -> str | None:
    """A process's command line when it, its working directory or one of its open files lies inside
    ``folder``; None otherwise."""
    prefix = folder.rstrip("/") + "/"
    cmdline = (pid / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
    links = [os.readlink(pid / "cwd")] + [os.readlink(fd) for fd in (pid / "fd").iterdir()]
    return cmdline if any(prefix in text + "/" for text in [cmdline, *links]) else None


@pytest.fixture
def leftover_processes():
    """``find(folder, wait=5.0)``: the live processes (other than this one) still using ``folder``
    after waiting up to ``wait`` seconds for them to go, as "pid: command line" strings. Whatever is
    still there when the test ends is killed, so that a failing test leaves no process behind."""
    found: dict[int, str] = {}

    def scan(folder: str) -> dict[int, str]:
        using = {}
        for pid in Path("/proc").iterdir():
            if not pid.name.isdigit() or int(pid.name) == os.getpid():
                continue
            try:
                cmdline = _command_line_if_using(pid, folder)
            except OSError:  # gone meanwhile, or a zombie
                continue
            if cmdline is not None:
                using[int(pid.name)] = cmdline
        return using

    def find(folder: Path, wait: float = 5.0) -> list[str]:
        deadline = time.monotonic() + wait
        while (using := scan(str(folder))) and time.monotonic() < deadline:
            time.sleep(0.1)
        found.update(using)
        return [f"{pid}: {cmdline}" for pid, cmdline in using.items()]

    yield find
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp dir of this test (``tempfile``) and of the processes it starts (``TMPDIR``)."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    monkeypatch.setenv("TMPDIR", str(root))
    return root


def _postgres_driver() -> str | None:
    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        try:
            __import__(module)
        except ImportError:
            continue
        return dialect
    return None


def _as_postgres(command_line: str) -> bool:
    result = subprocess.run(["su", "postgres", "-c", command_line], capture_output=True, text=True, check=False)
    return result.returncode == 0


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL cluster (dropped afterwards), or a skip."""
    explicit = os.environ.get("TRAINARENA_TEST_POSTGRES_URL")
    if explicit:
        yield explicit
        return
    dialect = _postgres_driver()
    if dialect is None:
        pytest.skip("no PostgreSQL driver installed (psycopg or psycopg2)")
    if shutil.which("createdb") is None and not Path("/usr/lib/postgresql").is_dir():
        pytest.skip("PostgreSQL is not installed")
    name = f"trainarena_test_{uuid.uuid4().hex[:8]}"
    user = getpass.getuser()  # local connections use peer authentication: a role named like us
    _as_postgres(f"createuser --superuser {user}")  # fails harmlessly when the role exists
    if not _as_postgres(f"createdb --owner {user} {name}"):
        pytest.skip("PostgreSQL is not running (pg_ctlcluster 15 main start)")
    try:
        yield f"{dialect}://{user}@/{name}?host=/var/run/postgresql"
    finally:
        _as_postgres(f"dropdb --if-exists {name}")


@pytest.fixture(scope="session")
def docker_daemon() -> str:
    """The docker CLI, with a daemon that answers and this host's runtime image built, once per session
    (each docker backend then finds it and builds nothing); skips, saying why, where no daemon runs.
    scripts/test starts one as root when docker.io is installed."""
    from trainarena.execution.docker_cli import DockerCli, daemon_problem, find_docker
    from trainarena.execution.docker_image import ensure_image, host_image

    problem = daemon_problem()
    if problem is not None:
        pytest.skip(f"the docker backend's tests need a Docker daemon: {problem}")
    cli = DockerCli(find_docker(), 60.0)
    image = host_image()
    ensure_image(cli, image)
    # A daemon that answers but cannot start a container with limits (no cgroups where it runs) is
    # no daemon for these tests either; a broken command line of the backend's own still fails them.
    probe = cli.call("run", "--rm", "--network", "none", "--read-only", "--memory", "64m", "--pids-limit", "64",
                     "--mount", "type=bind,source=/usr,target=/usr,readonly", image.tag, "/usr/bin/true")
    if probe.returncode != 0:
        pytest.skip(f"the Docker daemon cannot run a container here: {probe.stderr.decode(errors='replace').strip()[:300]}")
    return cli.executable
