"""The tournament a command names, by its name or its id: `tournament run | show | cancel` and `export`
resolve it here, through the store's ``find_tournament`` as `runs list --tournament` filters by it, so
an operator holding either (lists and the dashboard show the name first) reaches the same tournament
and one that names none gets the same refusal everywhere."""

from __future__ import annotations

from typing import Any

import typer

from trainarena.cli.output import fail
from trainarena.store import Store, find_tournament, id_spelled_by, unknown_tournament

# How a command's help says what its TOURNAMENT takes (find_tournament's rule: a name wins).
NAME_OR_ID = "its name or its id (`tournament list` shows both; a name made of digits is found before the id it spells)"


def tournament_argument(help: str) -> Any:
    """The typer argument of a tournament: ``help`` says which, then what it takes (``NAME_OR_ID``)."""
    return typer.Argument(metavar="TOURNAMENT", help=f"{help}: {NAME_OR_ID}.")


def tournament_id_of(store: Store, name_or_id: str, json_output: bool, *, log_only: bool = False) -> int:
    """The id of the tournament ``name_or_id`` names; where it names none, the command's end: exit 1 with
    ``unknown_tournament`` (``{"ok": false, "tournament": name_or_id, ...}`` with --json). With
    ``log_only`` a number that no tournament row holds is taken as an id all the same: `export` bundles
    a tournament whose row is gone from the store from its transparency log, and refuses one neither
    knows in the same words."""
    with store.session() as session:
        found = find_tournament(session, name_or_id)
    if found is not None:
        return found.id
    if log_only and (spelled := id_spelled_by(name_or_id)) is not None:
        return spelled
    raise fail(f"{unknown_tournament(name_or_id)}; `trainarena tournament list` shows each one's name and id",
               json_output, tournament=name_or_id)
