"""Fixtures shared across the test suite."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from postgres_databases import PostgresDatabases, postgres_dialect

# Property tests check what holds, not how fast: on a loaded machine (scripts/test's two workers, a
# CI neighbour) Hypothesis' 200 ms deadline failed correct examples as flaky, and for the same reason
# its too_slow health check (data generation timed against the wall clock) is off.
hypothesis_settings.register_profile("trainarena", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("trainarena")


def _kept_across_sessions(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A cache folder beside pytest's numbered session folders, so the next session reuses it. An xdist
    worker's temporary folder sits one level deeper, inside its session's."""
    session = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        session = session.parent
    return session.parent / name


# Where ``scripts/setup`` builds the assets (``python -m trainarena.assets``: the default data folder's cache).
_SETUP_ASSETS = Path(__file__).resolve().parents[1] / ".trainarena" / "cache" / "assets"


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory):
    """The offline tiny model, tokenizer and datasets, built once. Set ``$TRAINARENA_TEST_ASSETS`` to a
    directory to reuse a build across sessions. By default: the build ``scripts/setup`` made in the
    repository's own cache when it is there with this builder's stamp (CI runs setup, then the suite:
    it need not pre-train the same model twice; nothing writes into the assets), else a cache beside
    pytest's per-session temporary directories, so the next session reuses it."""
    from trainarena.assets import assets_stamp, ensure_assets

    configured = os.environ.get("TRAINARENA_TEST_ASSETS")
    if configured:
        return ensure_assets(Path(configured))
    if (_SETUP_ASSETS / f"assets-{assets_stamp()}-seed0").is_dir():
        return ensure_assets(_SETUP_ASSETS)
    return ensure_assets(_kept_across_sessions(tmp_path_factory, "trainarena-assets-cache"))


@pytest.fixture
def settings(tmp_path: Path):
    """Default settings over a data folder of the test's own (a test folder's conftest may give others)."""
    from trainarena.settings import Settings

    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(settings) -> Iterator:
    """The store of ``settings``, open for the test."""
    from trainarena.store import open_store

    with open_store(settings) as opened:
        yield opened


@pytest.fixture(scope="session")
def image_assets(tmp_path_factory: pytest.TempPathFactory):
    """The tiny SD-shaped pipeline and image datasets, built once per machine (``$TRAINARENA_TEST_IMAGE_ASSETS``
    to place the cache elsewhere)."""
    from trainarena.assets.image import ensure_image_assets

    configured = os.environ.get("TRAINARENA_TEST_IMAGE_ASSETS")
    cache = Path(configured) if configured else _kept_across_sessions(tmp_path_factory, "trainarena-image-assets-cache")
    return ensure_image_assets(cache)


# Building the assets pre-trains a tiny model (tens of seconds): every test that needs them, directly
# or through another fixture, is slow, so ``-m "not slow"`` never builds them.
_COSTLY_FIXTURES = frozenset({"assets", "image_assets"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _COSTLY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if config.getoption("--skip-store-independent"):
        same = [item for item in items if not runs_on_the_chosen_store(item)]
        if same:
            config.hook.pytest_deselected(items=same)
            items[:] = [item for item in items if runs_on_the_chosen_store(item)]


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
def sigterm_handler() -> Iterator[None]:
    """SIGUSR1 stops a drive as the CLI's SIGTERM handler does (cli/demo.py, stop_at_once_on_signals)."""
    from trainarena.runs import DriverStopped, deferred_in_database_call

    assert threading.current_thread() is threading.main_thread()

    def stop(signum: int, frame: FrameType | None) -> None:
        if not deferred_in_database_call(signum, frame):
            raise DriverStopped(signal.SIGTERM)

    previous = signal.signal(signal.SIGUSR1, stop)
    yield
    signal.signal(signal.SIGUSR1, previous)


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp dir of this test (``tempfile``) and of the processes it starts (``TMPDIR``)."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    monkeypatch.setenv("TMPDIR", str(root))
    return root


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """The session's throwaway databases on the local PostgreSQL cluster (tests/postgres_databases.py)."""
    databases = PostgresDatabases()
    yield databases
    databases.close()


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A throwaway database with no schema on the local PostgreSQL cluster (dropped afterwards), or a skip."""
    explicit = os.environ.get("TRAINARENA_TEST_POSTGRES_URL")
    if explicit:
        yield explicit
        return
    if postgres_dialect() is None:
        pytest.skip("no PostgreSQL driver installed (psycopg or psycopg2)")
    if shutil.which("createdb") is None and not Path("/usr/lib/postgresql").is_dir():
        pytest.skip("PostgreSQL is not installed")
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    if databases.unavailable:
        pytest.skip(databases.unavailable)
    url = databases.empty()
    yield url
    databases.drop(url)


# --- The whole suite on PostgreSQL ----------------------------------------------------------------
# `pytest --store postgresql` (scripts/test --postgresql) gives every test that has a folder of its own
# (tmp_path: where a store would live) a fresh, migrated PostgreSQL database instead, as
# TRAINARENA_DATABASE_URL, which the settings read in this process and in every process a test starts.
# Tests of SQLite itself name a sqlite:/// URL; tests of the embedded default clear TRAINARENA_*.
STORES = ("sqlite", "postgresql")
_FOLDER_FIXTURES = frozenset({"tmp_path", "tmp_path_factory"})
# Fixtures through which a test names its database itself, whatever --store says.
_OWN_DATABASE_FIXTURES = frozenset({"url_on_each_backend", "postgres_url"})


def runs_on_the_chosen_store(item: pytest.Item) -> bool:
    """Whether --store changes what a test runs on: it has a folder of its own (where its store lives,
    or the database --store gives it) and names no database itself. The others run the same on either
    store, so a second pass (--skip-store-independent) leaves them to the first."""
    names = set(getattr(item, "fixturenames", ()))
    return bool(_FOLDER_FIXTURES & names) and not _OWN_DATABASE_FIXTURES & names


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store", choices=STORES, default=os.environ.get("TRAINARENA_TEST_STORE", "sqlite"),
        help="the database every store of the tests uses: sqlite (the default: a file in the test's folder) or "
        "postgresql (a fresh database per test on the local cluster); default $TRAINARENA_TEST_STORE or sqlite",
    )
    parser.addoption(
        "--skip-store-independent", action="store_true",
        help="deselect the tests that run the same on either store (see runs_on_the_chosen_store): for a second "
        "pass with --store postgresql after a first one that ran them (scripts/test)",
    )


def on_postgresql(config: pytest.Config) -> bool:
    return config.getoption("--store") == "postgresql"


@pytest.fixture
def sqlite_only(request: pytest.FixtureRequest) -> None:
    """For tests of the SQLite store's own files (the database beside the data, its lock files):
    skipped under --store postgresql, whose store has none."""
    if on_postgresql(request.config):
        pytest.skip("a test of the SQLite store's own files, which a PostgreSQL store has none of")


def pytest_report_header(config: pytest.Config) -> str:
    return f"stores: {config.getoption('--store')}"


@pytest.fixture(scope="session")
def store_databases(request: pytest.FixtureRequest) -> PostgresDatabases | None:
    """The session's PostgreSQL databases under ``--store postgresql`` (failing the test when the cluster
    cannot make them), else None: the tests' stores are SQLite files."""
    if not on_postgresql(request.config):
        return None
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    if databases.unavailable:
        pytest.fail(f"--store postgresql: {databases.unavailable}")
    return databases


@pytest.fixture(params=STORES)
def url_on_each_backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store's database URL on each backend in turn: a SQLite file, then an empty PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store_of_its_own(store_databases: PostgresDatabases | None) -> Iterator[Callable[[Path], str]]:
    """``store_of_its_own(data_dir)``: the database URL of one more store, apart from the test's own (the
    SQLite file in ``data_dir``, or a fresh PostgreSQL database), for tests comparing several stores."""
    made: list[str] = []

    def url(data_dir: Path) -> str:
        if store_databases is None:
            return f"sqlite:///{data_dir.resolve() / 'trainarena.db'}"
        made.append(store_databases.fresh())
        return made[-1]

    yield url
    for database in made:
        store_databases.release(database)


@pytest.fixture(autouse=True)
def _database_of_the_test(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not on_postgresql(request.config) or not _FOLDER_FIXTURES & set(request.fixturenames):
        yield
        return
    databases: PostgresDatabases = request.getfixturevalue("store_databases")
    url = databases.fresh()
    monkeypatch.setenv("TRAINARENA_DATABASE_URL", url)
    yield
    databases.release(url)


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
