"""`trainarena competitor add | list | show`: register a repo@commit and look at who is registered."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from trainarena.contract import MANIFEST_NAME
from trainarena.settings import Settings
from trainarena.store import Competitor, StoreError, get_competitor, list_competitors, open_store
from trainarena.submissions import RegistrationError, checkout_path, parse_manifest
from trainarena.submissions.service import register_competitor

app = typer.Typer(help="Register competitors (a git repository at a commit) and inspect them.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _task_types(settings: Settings, competitor: Competitor) -> list[str] | None:
    """Declared task types, read back from the exported manifest (the store keeps only the kind)."""
    manifest_file = checkout_path(settings, competitor.commit) / MANIFEST_NAME
    if not manifest_file.is_file():
        return None
    manifest = parse_manifest(manifest_file.read_text(encoding="utf-8"))
    return None if manifest.task_types is None else [t.value for t in manifest.task_types]


def _as_dict(settings: Settings, competitor: Competitor) -> dict[str, Any]:
    return {
        "name": competitor.name,
        "repo_url": competitor.repo_url,
        "commit": competitor.commit,
        "tree_hash": competitor.tree_hash,
        "source_digest": competitor.source_digest,
        "entrypoint": competitor.entrypoint,
        "kind": competitor.kind,
        "task_types": _task_types(settings, competitor),
        "registered_at": competitor.registered_at.isoformat(),
    }


def _print_details(details: dict[str, Any]) -> None:
    table = Table.grid(padding=(0, 2))
    for key, value in details.items():
        shown = "all" if key == "task_types" and value is None else value
        shown = ", ".join(shown) if isinstance(shown, list) else shown
        table.add_row(f"[bold]{key}[/bold]", str(shown if shown is not None else "any"))
    Console(soft_wrap=True).print(table)


@app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(help="Unique competitor name: letters, digits, '.', '_', '-'.")],
    repo: Annotated[str, typer.Argument(help="https or ssh URL, git@host:path, file:// URL or local path.")],
    commit: Annotated[str, typer.Argument(help="Full 40-character commit SHA (not a branch or tag).")],
    as_json: JsonFlag = False,
) -> None:
    """Register REPO at COMMIT as competitor NAME (checks the manifest and the repository's content)."""
    settings = Settings()
    try:
        with open_store(settings) as store, store.transaction() as session:
            result = register_competitor(session, settings, name=name, repo=repo, commit=commit)
            details = _as_dict(settings, result.competitor)
    except (RegistrationError, StoreError) as error:
        raise _fail(str(error)) from error
    copies = [{"kind": m.kind, "other_name": m.other_name, "message": m.message} for m in result.copies]
    if as_json:
        typer.echo(json.dumps({**details, "copies": copies}, indent=2))
        return
    Console(highlight=False).print(f"[green]registered[/green] {name} at {result.registration.commit}")
    _print_details(details)
    warnings = Console(stderr=True, highlight=False, soft_wrap=True)
    for copy in copies:
        warnings.print(f"[yellow]warning:[/yellow] {name} {copy['message']}")


@app.command("list")
def list_command(as_json: JsonFlag = False) -> None:
    """List registered competitors, oldest first."""
    settings = Settings()
    with open_store(settings) as store, store.transaction() as session:
        rows = [_as_dict(settings, c) for c in list_competitors(session)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no competitors registered; add one with `trainarena competitor add NAME REPO COMMIT`")
        return
    table = Table(title="Competitors")
    for column in ("name", "commit", "entrypoint", "task types", "registered", "repository"):
        table.add_column(column, no_wrap=column != "repository", overflow="fold")
    for row in rows:
        types = ", ".join(row["task_types"]) if row["task_types"] else "all"
        table.add_row(row["name"], row["commit"][:12], row["entrypoint"], types,
                      row["registered_at"][:19].replace("T", " "), row["repo_url"])
    Console().print(table)


@app.command("show")
def show_command(name: Annotated[str, typer.Argument(help="Competitor name.")], as_json: JsonFlag = False) -> None:
    """Show one competitor's registration: repository, commit, tree hash, digest, entrypoint."""
    settings = Settings()
    with open_store(settings) as store, store.transaction() as session:
        competitor = get_competitor(session, name)
        details = None if competitor is None else _as_dict(settings, competitor)
    if details is None:
        raise _fail(f"no competitor named {name!r}; see `trainarena competitor list`")
    if as_json:
        typer.echo(json.dumps(details, indent=2))
        return
    _print_details(details)
