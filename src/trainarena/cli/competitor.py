"""`trainarena competitor add | list | show | retire | remove`: register a repo@commit, look at who is
registered, retire one (no new tournament enters it), remove one that no tournament has recorded."""

from __future__ import annotations

import json
import shutil
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from trainarena.cli.output import Col, OneLineTable, fail, labelled, print_fields, print_wrapped, printable
from trainarena.settings import Settings
from trainarena.store import (
    StoreError,
    competitors_at_commit,
    get_competitor,
    list_competitors,
    open_store,
    remove_competitor,
    retire_competitor,
)
from trainarena.submissions import RegistrationError, checkout_path
from trainarena.submissions.git import local_repo_path
from trainarena.submissions.service import competitor_record, register_competitor

app = typer.Typer(help="Register competitors (a git repository at a commit), inspect, retire and remove them.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

# A line per competitor: the name is whole (folded where it does not fit), the repository shrinks with
# an ellipsis at its start (its last folders name it), the task types fold between them rather than
# being cut, and the days of registration and retirement are left out before they fold; `competitor show NAME`
# prints every value whole. The day of retirement is a column only when some competitor is retired.
LIST_COLUMNS = (
    Col("name", handle=True),
    Col("repository", shrink_to=14, keep_end=True),
    Col("commit"),
    Col("entrypoint", shrink_to=10),
    Col("types"),
    Col("registered", optional=True),
)
RETIRED_COLUMN = Col("retired", optional=True)
FLAGGED_COLUMNS = (
    Col("name", handle=True),
    Col("flag"),
    Col("like", handle=True),
    Col("similarity", justify="right"),
    Col("registered"),
)
COMMIT_SHOWN = 12  # hex digits of a commit in the list (like git's short hashes, unambiguous in practice)



def _print_details(details: dict[str, Any]) -> None:
    fields = []
    for key, value in details.items():
        shown = "all" if key == "task_types" and value is None else value
        shown = ", ".join(shown) if isinstance(shown, list) else shown
        absent = "any" if key == "kind" else "none"
        fields.append((key, str(shown if shown is not None else absent)))
    print_fields(Console(highlight=False), fields)


@app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(help="Unique competitor name: letters, digits, '.', '_', '-'.")],
    repo: Annotated[str, typer.Argument(help="https or ssh URL, git@host:path, file:// URL or local path.")],
    commit: Annotated[str, typer.Argument(help="Full 40-character commit SHA (not a branch or tag).")],
    hotkey: Annotated[str | None, typer.Option(
        "--hotkey", metavar="SS58", help="Bittensor hotkey (SS58 address) the competitor's weight goes to."
    )] = None,
    replaces: Annotated[str | None, typer.Option(
        "--replaces", metavar="OLD", help="A competitor this one replaces (its earlier version): OLD is retired with this "
        "registration, or neither happens."
    )] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register REPO at COMMIT as competitor NAME (checks the manifest and the repository's content)."""
    settings = Settings()
    try:
        with open_store(settings) as store, store.transaction() as session:
            result = register_competitor(session, settings, name=name, repo=repo, commit=commit, hotkey=hotkey,
                                         hotkey_field="--hotkey", replaces=replaces)
            details = competitor_record(settings, result.competitor)
    except (RegistrationError, StoreError) as error:
        raise fail(str(error), as_json, name=name) from error
    copies = [{"kind": m.kind, "other_name": m.other_name, "message": m.message} for m in result.report.exact]
    if as_json:
        typer.echo(json.dumps({**details, "copies": copies, "warnings": result.warnings}, indent=2))
        return
    print_wrapped(Console(highlight=False), Text.assemble(("registered", "green"), printable(f" {name} at {result.registration.commit}")))
    if replaces is not None:
        print_wrapped(Console(highlight=False), Text.assemble(("retired", "green"), printable(f" {replaces}, which {name} replaces")))
    _print_details(details)
    stderr = Console(stderr=True, highlight=False, soft_wrap=True)
    for warning in result.warnings:
        stderr.print(labelled("warning", "yellow", warning))


@app.command("list")
def list_command(
    flagged: Annotated[bool, typer.Option(
        "--flagged", help="Only competitors flagged as copies, with the competitor each is like and the similarity."
    )] = False,
    as_json: JsonFlag = False,
) -> None:
    """List registered competitors, oldest first; those flagged as copies are named below the table."""
    settings = Settings()
    with open_store(settings) as store, store.transaction() as session:
        rows = [competitor_record(settings, c) for c in list_competitors(session)]
    if flagged:
        rows = [row for row in rows if row["copy_flag"] is not None]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if flagged:
        _print_flagged(rows)
        return
    if not rows:
        typer.echo("no competitors registered; add one with `trainarena competitor add NAME REPO COMMIT`")
        return
    any_retired = any(row["retired_at"] for row in rows)
    table = OneLineTable((*LIST_COLUMNS, RETIRED_COLUMN) if any_retired else LIST_COLUMNS, title="Competitors")
    for row in rows:
        types = ", ".join(row["task_types"]) if row["task_types"] else "all"
        registered = row["registered_at"][:10]  # the day
        local = local_repo_path(row["repo_url"])  # a local repository reads as its path, as `competitor add` takes it
        repository = row["repo_url"] if local is None else str(local)
        retired = [(row["retired_at"] or "")[:10]] if any_retired else []
        table.add_row([row["name"], repository, row["commit"][:COMMIT_SHOWN], row["entrypoint"], types, registered, *retired])
    Console().print(table)
    named = [row["name"] for row in rows if row["copy_flag"] is not None]
    if named:
        Console(highlight=False).print(labelled(
            "flagged as copies", "yellow", f"{', '.join(named)} (see `competitor list --flagged`)"
        ))


def _print_flagged(rows: list[dict[str, Any]]) -> None:
    if not rows:
        typer.echo("no competitor is flagged as a copy")
        return
    table = OneLineTable(FLAGGED_COLUMNS, title="Flagged as copies")
    for row in rows:
        table.add_row([row["name"], row["copy_flag"], row["similar_to"], f"{row['similarity']:.2f}", row["registered_at"][:10]])
    Console().print(table)


@app.command("show")
def show_command(name: Annotated[str, typer.Argument(help="Competitor name.")], as_json: JsonFlag = False) -> None:
    """Show one competitor's registration: repository, commit, tree hash, digest, entrypoint."""
    settings = Settings()
    with open_store(settings) as store, store.transaction() as session:
        competitor = get_competitor(session, name)
        details = None if competitor is None else competitor_record(settings, competitor)
    if details is None:
        raise fail(f"no competitor named {name!r}; see `trainarena competitor list`", as_json, name=name)
    if as_json:
        typer.echo(json.dumps(details, indent=2))
        return
    _print_details(details)


RETIRE_HELP = (
    "Retire competitor NAME: no tournament created afterwards enters it (as `competitor add --replaces` does for an "
    "earlier version). The tournaments it entered play on with it, its runs and signed records stay, and so does a "
    "title it holds until a challenger beats it. Retiring a retired competitor changes nothing."
)


@app.command("retire", help=RETIRE_HELP, short_help="Retire a competitor: no new tournament enters it.")
def retire_command(name: Annotated[str, typer.Argument(help="Competitor name.")], as_json: JsonFlag = False) -> None:
    settings = Settings()
    try:
        with open_store(settings) as store, store.transaction() as session:
            competitor, newly = retire_competitor(session, name=name, owner=None, by_key_id=None)
            details = competitor_record(settings, competitor)
    except StoreError as error:
        raise fail(str(error), as_json, name=name) from error
    if as_json:
        typer.echo(json.dumps(details, indent=2))
        return
    said = "no tournament created from now on enters it" if newly else f"already, at {details['retired_at']}"
    print_wrapped(Console(highlight=False), Text.assemble(("retired", "green"), printable(f" {name}: {said}")))


REMOVE_HELP = (
    "Remove competitor NAME from the store, with its exported checkout when no other competitor is registered at "
    "the same commit (the fetched repository stays cached for later registrations). Refused, naming the "
    "tournaments, for a competitor that has entered a tournament: tournament records stay whole (retire it instead). "
    "The name is free again afterwards."
)


@app.command("remove", help=REMOVE_HELP, short_help="Remove a competitor that no tournament has recorded.")
def remove_command(name: Annotated[str, typer.Argument(help="Competitor name.")], as_json: JsonFlag = False) -> None:
    settings = Settings()
    try:
        with open_store(settings) as store, store.transaction() as session:
            removed = remove_competitor(session, name=name)
            shared = bool(competitors_at_commit(session, removed.commit))
    except StoreError as error:
        raise fail(str(error), as_json, name=name) from error
    checkout = checkout_path(settings, removed.commit)
    checkout_removed = not shared and checkout.exists()
    if checkout_removed:
        shutil.rmtree(checkout)  # a later run of a competitor at this commit exports it again
    if as_json:
        typer.echo(json.dumps({"removed": name, "commit": removed.commit, "checkout_removed": checkout_removed}, indent=2))
        return
    kept = "kept: another competitor is registered at this commit" if shared else "removed"
    Console(highlight=False).print(Text.assemble(("removed", "green"), f" {name} ({removed.commit[:COMMIT_SHOWN]}); checkout {kept}"))
