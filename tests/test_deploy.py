"""docker/ and docs/deploy.md agree with the code: the compose services run commands the CLI has, with
settings that exist and validate, on the paths, ports and database the other services use; the
Dockerfiles pin what requirements.lock pins; the backup list names every folder of state."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.records.signing import retired_keys_dir
from trainarena.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
PLATFORM_IMAGE = "trainarena:latest"
# What `docker compose` would read from docker/.env: the operator's password (a stand-in here).
COMPOSE_ENV = {"POSTGRES_PASSWORD": "s3cret"}


def _interpolated(text: str) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} with COMPOSE_ENV; an unknown name without
    a default fails, as compose does."""

    def value(match: re.Match[str]) -> str:
        name, operator, fallback = match.group(1), match.group(2), match.group(3)
        if name in COMPOSE_ENV:
            return COMPOSE_ENV[name]
        assert operator == ":-", f"compose needs ${{{name}}}: {fallback}"
        return fallback

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", value, text)


def _compose(name: str = "compose.yaml") -> dict:
    return yaml.safe_load(_interpolated((DOCKER / name).read_text()))


def _services() -> dict[str, dict]:
    return _compose()["services"]


def _platform_services() -> dict[str, dict]:
    return {name: service for name, service in _services().items() if service.get("image") == PLATFORM_IMAGE}


def _dockerfile(name: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of a Dockerfile, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", (DOCKER / name).read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _instruction(name: str, instruction: str) -> list[str]:
    return [arguments for found, arguments in _dockerfile(name) if found == instruction]


def _json_array(arguments: str) -> list[str]:
    return yaml.safe_load(arguments)


def _setting_exists(variable: str) -> bool:
    """Whether TRAINARENA_SECTION__FIELD (any depth) names a field of the settings."""
    model: type = Settings
    for part in variable.removeprefix("TRAINARENA_").lower().split("__"):
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return False
        model = fields[part].annotation
    return True


def test_every_trainarena_command_in_docker_exists_in_the_cli_with_its_options() -> None:
    """`--help` after the arguments: the CLI refuses an unknown command or option before printing help."""
    (entrypoint,) = _instruction("platform.Dockerfile", "ENTRYPOINT")
    (default,) = _instruction("platform.Dockerfile", "CMD")
    assert _json_array(entrypoint) == ["trainarena"]
    commands = {"the image's CMD": _json_array(default)}
    for name, service in _platform_services().items():
        if service.get("entrypoint", ["trainarena"]) == ["trainarena"]:
            commands[name] = service["command"]
    for where, command in commands.items():
        done = CliRunner().invoke(app, [*command, "--help"])
        assert done.exit_code == 0, f"{where}: `trainarena {' '.join(command)}` is not a command line of the CLI:\n{done.output}"
    assert commands["platform"][0] == "serve", "the platform service runs the schedule with the API beside it"


def test_the_guides_trainarena_commands_exist_in_the_cli() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "docs" / "deploy.md").read_text(), flags=re.DOTALL)
    commands = [command for block in blocks for command in re.findall(r"exec platform trainarena ([^#\n]+)", block)]
    assert len(commands) >= 3
    for command in commands:
        done = CliRunner().invoke(app, [*shlex.split(command), "--help"])
        assert done.exit_code == 0, f"docs/deploy.md: `trainarena {command.strip()}` is not a command line of the CLI:\n{done.output}"


def test_every_setting_the_services_set_exists_and_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, service in _platform_services().items():
        environment = service["environment"]
        for variable in environment:
            assert variable.startswith("TRAINARENA_") and _setting_exists(variable), f"{name}: {variable} is no setting"
        for variable in [v for v in os.environ if v.startswith("TRAINARENA_")]:
            monkeypatch.delenv(variable)
        for variable, value in environment.items():
            monkeypatch.setenv(variable, str(value))
        settings = Settings()
        assert settings.db_url == environment["TRAINARENA_DATABASE_URL"]
        assert str(settings.data_dir) == environment["TRAINARENA_DATA_DIR"]
        assert settings.api.host == "0.0.0.0", f"{name}: the API must listen beyond the container"
        assert settings.sandbox.run_as_pool == (2_000_000_000, 256), f"{name}: each live run a host uid of its own"


def test_the_services_share_one_database_one_data_volume_and_the_api_port() -> None:
    services = _services()
    database = services["postgres"]["environment"]
    (data_dir,) = [arguments.split("=", 1)[1] for arguments in _instruction("platform.Dockerfile", "ENV")
                   for arguments in arguments.split() if arguments.startswith("TRAINARENA_DATA_DIR=")]
    for name, service in _platform_services().items():
        url = make_url(service["environment"]["TRAINARENA_DATABASE_URL"])
        assert (url.host, url.port, url.username, url.password, url.database) == (
            "postgres", 5432, database["POSTGRES_USER"], database["POSTGRES_PASSWORD"], database["POSTGRES_DB"]
        ), f"{name} names another database than the postgres service holds"
        assert "postgres" in service["depends_on"] or name == "ray-worker"
        assert f"data:{data_dir}" in service["volumes"], f"{name} must keep its state on the shared data volume"
    port = Settings().api.port
    assert services["platform"]["ports"] == [f"8000:{port}"]
    assert _instruction("platform.Dockerfile", "EXPOSE") == [str(port)]


def test_ray_workers_join_the_head_the_compose_file_starts() -> None:
    services = _services()
    head, worker = services["ray-head"], services["ray-worker"]
    assert head["entrypoint"] == worker["entrypoint"] == ["ray"]
    [port] = [option.split("=", 1)[1] for option in head["command"] if option.startswith("--port=")]
    assert head["command"][:2] == ["start", "--head"] and worker["command"][0] == "start"
    assert f"--address=ray-head:{port}" in worker["command"]
    # Ray's ports have no authentication: nothing of the cluster is published beyond the compose network.
    assert "ports" not in head and "ports" not in worker
    assert "--dashboard-host=127.0.0.1" in head["command"] and "--num-cpus=0" in head["command"]


def test_the_gpu_override_names_only_services_that_run_training() -> None:
    gpu = _compose("compose.gpu.yaml")["services"]
    assert set(gpu) <= set(_platform_services()) - {"ray-head"}
    for service in gpu.values():
        [device] = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]


def _lock_pins() -> dict[str, str]:
    lines = (REPO / "requirements.lock").read_text().splitlines()
    return {name.lower(): version for name, _, version in (line.partition("==") for line in lines if "==" in line)}


@pytest.mark.parametrize("dockerfile", sorted(path.name for path in DOCKER.glob("*.Dockerfile")))
def test_dockerfiles_pin_what_the_lock_pins(dockerfile: str) -> None:
    pins = _lock_pins()
    text = " ".join(_instruction(dockerfile, "RUN"))
    pinned = re.findall(r"\b([A-Za-z][\w.-]*)==([\w.+-]+)", text)
    assert pinned, f"{dockerfile} installs nothing pinned"
    for name, version in pinned:
        assert pins.get(name.lower()) == version, f"{dockerfile} installs {name}=={version}, requirements.lock pins {pins.get(name.lower())}"


def test_the_platform_image_copies_what_exists_and_installs_the_postgres_driver() -> None:
    for arguments in _instruction("platform.Dockerfile", "COPY"):
        *sources, _destination = arguments.split()
        for source in sources:
            assert (REPO / source).exists(), f"platform.Dockerfile copies {source}, which the repository lacks"
    text = " ".join(_instruction("platform.Dockerfile", "RUN"))
    extras = re.findall(r"-e '\.\[([\w,]+)\]'", text)
    assert extras and "postgres" in extras[0].split(",")
    assert "postgres" in (REPO / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1]


def test_the_backup_list_names_every_folder_of_state() -> None:
    doc = (REPO / "docs" / "deploy.md").read_text()
    backup = doc.split("## What to back up", 1)[1].split("\n## ", 1)[0]
    settings = Settings(data_dir=Path("/srv/data"))
    kept = [settings.work_dir, settings.hidden_dir, settings.uploads_dir, settings.registry_dir,
            settings.split_secret_path, settings.operator_key_path, retired_keys_dir(settings.operator_key_path),
            settings.cache_dir / "repos"]
    for path in kept:
        assert f"`{path.relative_to(settings.data_dir)}" in backup, f"docs/deploy.md's backup list misses {path.name}"
    assert "pg_dump" in backup
    # Stored tasks point at the operator's files, which the data directory holds no copy of
    # (tests/operations/test_cli_stored_tasks.py): a restore without them left every task unusable.
    assert "The operator's own datasets and base models" in backup and "`task show NAME`" in backup


def _compose_program() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_compose_accepts_the_files() -> None:
    """Compose's own check (no daemon needed): the schema, the merges, the interpolation."""
    program = _compose_program()
    if program is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed (apt-get install docker-compose)")
    environment = {**os.environ, **COMPOSE_ENV}
    for files in (["compose.yaml"], ["compose.yaml", "compose.gpu.yaml"]):
        arguments = [part for name in files for part in ("-f", name)]
        done = subprocess.run([*program, *arguments, "--profile", "ray", "config", "--quiet"], cwd=DOCKER,
                              env=environment, capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    missing = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    done = subprocess.run([*program, "config", "--quiet"], cwd=DOCKER, env=missing, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "POSTGRES_PASSWORD" in done.stderr  # no default password
