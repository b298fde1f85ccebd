"""`trainarena docker build-image | clean`: the host runtime image and the leftovers of dead platforms."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.execution.docker_cli import OWNER_LABEL, DockerCli
from trainarena.execution.docker_image import host_image


@pytest.mark.docker
def test_build_image_finds_the_image_the_session_built_and_prints_its_digest(runner: CliRunner, docker_daemon: str) -> None:
    result = runner.invoke(app, ["docker", "build-image", "--json"])
    assert result.exit_code == 0, result.output
    image = host_image()
    assert json.loads(result.stdout) == {"ok": True, "image": image.tag, "digest": image.digest, "built": False}
    text = runner.invoke(app, ["docker", "build-image"], env={"COLUMNS": "80"})
    assert text.exit_code == 0 and "state          already there" in text.stdout and image.tag in text.stdout


@pytest.mark.docker
def test_clean_removes_the_containers_of_a_dead_platform_only(runner: CliRunner, docker_daemon: str) -> None:
    cli = DockerCli(docker_daemon, 30)
    dead = f"{os.uname().nodename}:999999999:1"  # no process has this pid
    orphan = cli.text("create", "--label", f"{OWNER_LABEL}={dead}", "--label", "trainarena.run=run-dead",
                      host_image().tag, "/usr/bin/true")
    try:
        result = runner.invoke(app, ["docker", "clean", "--json"])
        assert result.exit_code == 0, result.output
        removed = json.loads(result.stdout)["removed"]
        assert {"run_id": "run-dead", "owner": dead} in [{k: r[k] for k in ("run_id", "owner")} for r in removed]
        assert cli.call("inspect", orphan).returncode != 0  # gone
    finally:
        cli.call("rm", "--force", orphan)


def test_build_image_refuses_when_a_self_contained_image_is_configured(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_SANDBOX__DOCKER_IMAGE", "acme/trainer:1")
    result = runner.invoke(app, ["docker", "build-image", "--json"])
    assert result.exit_code == 2
    assert "docker build -f docker/runtime.Dockerfile -t acme/trainer:1 ." in json.loads(result.stdout)["error"]


def test_without_a_daemon_both_commands_say_how_to_start_one(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    (fake / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    for command in ("build-image", "clean"):
        result = runner.invoke(app, ["docker", command, "--json"])
        assert result.exit_code == 2
        error = json.loads(result.stdout)["error"]
        assert "Cannot connect to the Docker daemon" in error and "dockerd --iptables=false" in error
