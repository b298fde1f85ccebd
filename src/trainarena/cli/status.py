"""`trainarena status`: the tournaments in the store and where each stands, and the latest runs made
outside tournaments (`trainarena run`), so a competitor's last score is not only in scrollback.

A thin shell: builds ``Settings()`` and opens the store inside the command, reads summaries from the
store's repository functions, and renders them as rich tables or, with ``--json``, one JSON object.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from trainarena.cli.output import Col, OneLineTable, print_wrapped, printable
from trainarena.cli.runs import runs_table
from trainarena.reporting.run_list import AD_HOC, RunSummary, latest_runs_outside_tournaments
from trainarena.settings import Settings
from trainarena.store import (
    TournamentSummary,
    current_champion,
    list_competitors,
    list_tournaments,
    open_store,
    summarize_tournaments,
)
from trainarena.store.tournaments import TOURNAMENT_KINDS

# A line per tournament: its name and the champion's are whole (folded where they do not fit). Where it
# stands ("round 1 (knockout)", "not started") is a short value, kept whole (folded between its words at
# the least): as free text it was cut first, to "round 1…" and "not sta…" at 80 columns. The outcome is
# the free text: cut with an ellipsis, or left out (named under the table) where the rest needs its room;
# `status --json` has every value whole.
STATUS_COLUMNS = (
    Col("id", justify="right"),
    Col("name", handle=True),
    Col("kind"),
    Col("status"),
    Col("where"),
    Col("runs", justify="right"),
    Col("champion", handle=True),
    Col("outcome", shrink_to=7),
)


# How many of the latest runs outside tournaments `status` shows (all of them: `runs list --tournament "ad hoc"`).
RECENT_ADHOC_RUNS = 5


def where_cell(summary: TournamentSummary) -> str:
    if summary.round_index is None:
        return "not started"
    return f"round {summary.round_index + 1} ({summary.stage})"  # round_index counts from 0; people count from 1


def champion_cell(summary: TournamentSummary) -> str:
    if summary.status == "finished":
        return summary.champion_after or "no winner"
    return f"{summary.champion_before} (defending)" if summary.champion_before else "-"


def print_drivers(console: Console, summaries: list[TournamentSummary]) -> None:
    """Under a table of tournaments: who drives each running one, or since when none does."""
    for s in summaries:
        if s.driver is not None:
            print_wrapped(console, Text(f"tournament {s.id}: {s.driver.describe()}", style="" if s.driver.alive else "yellow"))


def print_status(
    console: Console, summaries: list[TournamentSummary], champions: dict[str, str | None], competitors: int,
    adhoc: list[RunSummary],
) -> None:
    reigning = ", ".join(f"{kind}: {name or '-'}" for kind, name in champions.items())
    print_wrapped(console, Text.assemble((str(competitors), "bold"), printable(f" competitors registered; champions: {reigning}")))
    if not summaries:
        console.print("No tournaments yet.")
    else:
        table = OneLineTable(STATUS_COLUMNS, title="Tournaments")
        for s in summaries:
            table.add_row([str(s.id), s.name, s.kind, s.status, where_cell(s), f"{s.runs_done}/{s.runs_total}",
                                     champion_cell(s), s.reason or ""])  # fmt: skip
        console.print(table)
        print_drivers(console, summaries)
    if adhoc:
        console.print(runs_table(adhoc, "Latest runs outside tournaments"))
        console.print(Text(f'all of them: trainarena runs list --tournament "{AD_HOC}"'), soft_wrap=True)


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """List the tournaments in the store and where each stands (round, runs done, champion), and the latest runs made outside tournaments."""
    settings = Settings()
    with open_store(settings) as store, store.session() as session:
        tournaments = list_tournaments(session)
        summaries = summarize_tournaments(session, tournaments)
        champions = {}
        for kind in TOURNAMENT_KINDS:
            champion = current_champion(session, kind)
            champions[kind] = None if champion is None else champion.name
        competitors = len(list_competitors(session))
        adhoc = latest_runs_outside_tournaments(session, RECENT_ADHOC_RUNS)
    if as_json:
        payload = {
            "competitors": competitors,
            "champions": champions,
            "tournaments": [s.to_json() for s in summaries],
            "latest_adhoc_runs": [run.to_json() for run in adhoc],
        }
        typer.echo(json.dumps(payload))
    else:
        print_status(Console(), summaries, champions, competitors, adhoc)
