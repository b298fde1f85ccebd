"""`trainarena docker build-image | clean`: the docker backend's image and the containers a crashed
platform left (execution.docker_image, execution.docker_cli)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from trainarena.cli.output import fail, print_fields
from trainarena.execution.docker_cli import DockerCli, daemon_problem, find_docker, remove_leftovers
from trainarena.execution.docker_image import ensure_image, host_image
from trainarena.execution.runtime import SandboxUnavailable
from trainarena.settings import Settings
from trainarena.wording import counted

app = typer.Typer(help="The docker backend: build this host's runtime image; remove containers a crashed platform left.",
                  no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _daemon(as_json: bool) -> DockerCli:
    """The CLI of a daemon that answers, or the command's error saying how to get one."""
    try:
        docker = find_docker()
    except SandboxUnavailable as error:
        raise fail(str(error), as_json, code=2) from None
    problem = daemon_problem(docker)
    if problem is not None:
        raise fail(problem, as_json, code=2)
    return DockerCli(docker, Settings().sandbox.start_timeout_seconds)


@app.command("build-image")
def build_image_command(as_json: JsonFlag = False) -> None:
    """Build the image the docker backend runs scripts in, unless the daemon has it: an empty root onto which each run binds /usr and the training interpreter read-only, tagged by the digest of its contents (a run builds it too, when missing)."""
    configured = Settings().sandbox.docker_image
    if configured is not None:
        raise fail(f"sandbox.docker_image is {configured!r}: the docker backend runs that image, not this host's; build it "
                   f"with `docker build -f docker/runtime.Dockerfile -t {configured} .`, or unset it", as_json, code=2)
    cli = _daemon(as_json)
    image = host_image()
    try:
        built = ensure_image(cli, image)
    except SandboxUnavailable as error:
        raise fail(str(error), as_json, image=image.tag) from None
    if as_json:
        typer.echo(json.dumps({"ok": True, "image": image.tag, "digest": image.digest, "built": built}))
        return
    print_fields(Console(highlight=False, soft_wrap=True), [
        ("image", image.tag), ("rootfs sha256", image.digest), ("state", "built now" if built else "already there")])


@app.command("clean")
def clean_command(as_json: JsonFlag = False) -> None:
    """Remove the containers of runs whose platform process has died (on this host); containers of a platform still running are left alone."""
    cli = _daemon(as_json)
    try:
        removed = remove_leftovers(cli)
    except SandboxUnavailable as error:
        raise fail(str(error), as_json) from None
    if as_json:
        typer.echo(json.dumps({"ok": True, "removed": [
            {"container": item.container, "run_id": item.run_id, "owner": item.owner} for item in removed]}))
        return
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"removed {counted(len(removed), 'leftover container')}")
    for item in removed:
        console.print(f"  {item.container} (run {item.run_id}, platform {item.owner})")
