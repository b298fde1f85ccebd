"""`trainarena champions`: the champion history per kind (who, since when, which tournament, margin)
and the reigning champions' code (repo@commit, license, source digest);
`trainarena champions export-code ID DIR` writes a champion's exact registered tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from trainarena.cli.output import Col, OneLineTable, fail, make_output_folder, print_fields, print_wrapped, printable
from trainarena.operations.history import Reign, champion_reigns
from trainarena.registry import ChampionSource, ExportError, NotAChampion, champion_sources, crowned_competitor, export_code
from trainarena.settings import Settings
from trainarena.store import open_store

# The champion's and tournament's names are whole (folded where they do not fit); the margin shrinks.
COLUMNS = (Col("kind"), Col("champion", handle=True), Col("since"), Col("tournament", handle=True), Col("margin", shrink_to=10))

app = typer.Typer(help="Show every crowning, oldest first: the latest of each kind reigns; its code (repo@commit, license, "
                  "source digest) follows. `export-code` writes a champion's code.", invoke_without_command=True)


def _sources(settings: Settings, reigns: list[Reign]) -> dict[str, ChampionSource | str]:
    with open_store(settings) as store, store.session() as session:
        return champion_sources(settings, session, (reign.champion for reign in reigns))


def _source_json(source: ChampionSource | str) -> dict[str, object]:
    return source.to_json() if isinstance(source, ChampionSource) else {"error": source}


@app.callback()
def champions_command(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind: text or image.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show every crowning, oldest first: the latest of each kind reigns; its code (repo@commit, license, source digest) follows."""
    if ctx.invoked_subcommand is not None:
        return
    settings = Settings()
    with open_store(settings) as store, store.session() as session:
        reigns = champion_reigns(session, settings.rules, kind)
    sources = _sources(settings, reigns)
    if json_output:
        typer.echo(json.dumps([{**reign.to_json(), "code": _source_json(sources[reign.champion])} for reign in reigns], indent=2))
        return
    if not reigns:
        typer.echo("no champion crowned yet")
        return
    console = Console(highlight=False)
    table = OneLineTable(COLUMNS, title="Champions")
    for reign in reigns:
        tournament = "-" if reign.tournament is None else f"{reign.tournament} ({reign.tournament_id})"
        table.add_row([reign.kind, reign.champion, reign.since.strftime("%Y-%m-%d %H:%M"), tournament, reign.margin])
    console.print(table)
    reigning = {reign.kind: reign for reign in reigns}  # the latest of each kind
    for reign in reigning.values():
        source = sources[reign.champion]
        console.print()
        print_wrapped(console, Text(printable(f"Reigning {reign.kind} champion {reign.champion}: its code"), style="bold"))
        if isinstance(source, str):
            print_fields(console, [("code", source)])
            continue
        print_fields(console, [("code", f"{source.repo_url}@{source.commit}"), ("license", source.license.describe()),
                               ("source digest", source.source_digest), ("tree hash", source.tree_hash),
                               ("export", f"trainarena champions export-code {reign.champion} DIR")])  # fmt: skip


def _verdict(matches: bool) -> str:
    return "matches the registered one" if matches else "DIFFERS from the registered one"


@app.command("export-code")
def export_code_command(
    champion: Annotated[str, typer.Argument(help="A champion's name (one crowned at some time), as `trainarena champions` shows it.")],
    destination: Annotated[Path, typer.Argument(help="A new or empty folder to write the code into.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Write a champion's exact registered tree (its repo@commit) into DIR and check its tree hash and source digest."""
    settings = Settings()
    with open_store(settings) as store, store.session() as session:
        try:
            competitor = crowned_competitor(session, champion)
        except NotAChampion as error:
            raise fail(f"{error} (`trainarena champions` lists every crowning)", json_output, champion=champion) from None
        make_output_folder(destination, json_output, champion=champion)
        try:
            exported = export_code(settings, competitor, destination.resolve())
        except ExportError as error:
            raise fail(str(error), json_output, champion=champion) from None
    if json_output:
        typer.echo(json.dumps({"ok": exported.verified, **exported.to_json()}))
    else:
        console = Console(highlight=False)
        print_fields(console, [("champion", champion), ("code", f"{competitor.repo_url}@{competitor.commit}"),
                               ("written", f"{exported.files} files to {exported.folder}"),
                               ("license", exported.source.license.describe()),
                               ("tree hash", f"{exported.tree_hash} ({_verdict(exported.tree_matches)})"),
                               ("source digest", f"{exported.source_digest} ({_verdict(exported.digest_matches)})")])  # fmt: skip
    if not exported.verified:
        raise typer.Exit(code=1)
