"""The ``trainarena`` command line: one typer app, one module per command group."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from trainarena.cli import api, champions, competitor, demo, doctor, keys, models, run, runs, serve, status, tournament, weights
from trainarena.cli import audit as audit_cli
from trainarena.cli import docker as docker_cli
from trainarena.cli import jobs as jobs_cli
from trainarena.cli import records as records_cli
from trainarena.cli import task as task_cli
from trainarena.settings import Settings
from trainarena.settings.problems import misspelt_variables, setting_problems, settings_error_problems
from trainarena.store import StoreFileLost, StoreUnavailable

app = typer.Typer(
    name="trainarena",
    help="Training scripts compete: register repo@commit, run sandboxed, score on hidden data, crown a champion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tournament.app, name="tournament")
app.add_typer(competitor.app, name="competitor")
app.add_typer(runs.app, name="runs")
app.add_typer(task_cli.app, name="task")
app.add_typer(weights.app, name="weights")
app.add_typer(keys.app, name="keys")
app.add_typer(models.app, name="models")
app.add_typer(champions.app, name="champions")
app.add_typer(jobs_cli.app, name="jobs")
app.add_typer(docker_cli.app, name="docker")
app.command("run")(run.run_command)
app.command("audit")(audit_cli.audit_command)
app.command("status")(status.status_command)
app.command("demo")(demo.demo_command)
app.command("doctor")(doctor.doctor_command)
app.command("serve")(serve.serve_command)
app.command("api")(api.api_command)
app.command("export")(records_cli.export_command)
app.command("verify")(records_cli.verify_command)


def main() -> None:
    """The ``trainarena`` entry: a bad ``TRAINARENA_*`` setting is one line naming the variable, not a traceback."""
    for misspelt in misspelt_variables(Settings):  # a warning: the test suite's or compose's own may look alike
        typer.echo(f"warning: {misspelt}", err=True)
    try:
        app()
    except ValidationError as error:
        if error.title != Settings.__name__:  # another model's failure is a bug: keep its traceback
            raise
        problems = setting_problems(error, Settings)
    except SettingsError as error:
        problems = settings_error_problems(error)
    except StoreFileLost as error:  # the setting is right: the file under it changed
        problems = [error.restart_needed("the command")]
    except StoreUnavailable as error:
        problems = [f"{error} (TRAINARENA_DATABASE_URL)"]
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    raise SystemExit(1)
