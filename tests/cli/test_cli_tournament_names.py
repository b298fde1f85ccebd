"""Every command that takes a tournament takes its name or its id (cli/named_tournaments.py, through the
store's ``find_tournament``): `tournament list` and the dashboard show the name first, and an operator
holding it got "Invalid value for 'TOURNAMENT_ID'" from every command but `runs list --tournament`.
One that names neither is refused in the same words by each. (`export` by name: tests/records.)"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from cli_store import COMPETITORS, FinishedStore
from typer.testing import CliRunner

from trainarena.cli import app, pool_tournaments
from trainarena.contract import STORE_INT_MAX
from trainarena.settings import Settings
from trainarena.store import create_tournament, open_store

UNKNOWN = "no tournament has the name or id {!r}; `trainarena tournament list` shows each one's name and id"


@pytest.fixture
def played(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids `tournament run` drives: its sandbox and its drive stand-ins (the lookup is the point)."""
    driven: list[int] = []

    def drive(store, settings, tournament_id: int, **kwargs) -> SimpleNamespace:
        driven.append(tournament_id)
        return SimpleNamespace(champion="someone", reason="took it")

    monkeypatch.setattr(pool_tournaments, "make_executor", lambda settings, unsafe: SimpleNamespace(close=lambda: None))
    monkeypatch.setattr(pool_tournaments, "run_pool_tournament", drive)
    return driven


def _create(name: str) -> int:
    with open_store(Settings()) as store, store.transaction() as session:
        return create_tournament(session, name=name, kind="text", seed=2, entrants=list(COMPETITORS)[:2]).id


@pytest.mark.parametrize("by", ["name", "id"])
def test_show_and_run_take_a_name_or_an_id(finished_store: FinishedStore, played: list[int], by: str) -> None:
    runner = CliRunner()
    named = "week-1" if by == "name" else str(finished_store.tournament_id)
    shown = runner.invoke(app, ["tournament", "show", named, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["id"] == finished_store.tournament_id
    assert "week-1" in runner.invoke(app, ["tournament", "show", named], env={"COLUMNS": "200"}).stdout
    run = runner.invoke(app, ["tournament", "run", named], env={"COLUMNS": "200"})
    assert run.exit_code == 0, run.output
    assert played == [finished_store.tournament_id]
    assert f"details: trainarena tournament show {finished_store.tournament_id}" in run.stdout  # an id to copy, as before


@pytest.mark.parametrize("by", ["name", "id"])
def test_cancel_takes_a_name_or_an_id(finished_store: FinishedStore, by: str) -> None:
    created = _create("made-by-mistake")
    result = CliRunner().invoke(app, ["tournament", "cancel", "made-by-mistake" if by == "name" else str(created),
                                      "--reason", "a typo", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    cancelled = json.loads(result.stdout)
    assert (cancelled["id"], cancelled["name"], cancelled["reason"]) == (created, "made-by-mistake", "cancelled: a typo")


def test_a_name_made_of_digits_is_found_before_the_id_it_spells(finished_store: FinishedStore) -> None:
    """The resolver's rule (names may be digits): "7" is the tournament named 7, and tournament 7 is
    still found by its own name."""
    digits = _create(str(finished_store.tournament_id))
    shown = CliRunner().invoke(app, ["tournament", "show", str(finished_store.tournament_id), "--json"])
    assert json.loads(shown.stdout)["id"] == digits != finished_store.tournament_id
    by_its_name = CliRunner().invoke(app, ["tournament", "show", "week-1", "--json"])
    assert json.loads(by_its_name.stdout)["id"] == finished_store.tournament_id


COMMANDS = {
    "show": ["tournament", "show"],
    "run": ["tournament", "run"],
    "cancel": ["tournament", "cancel"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize("named", ["week-9", "999", str(STORE_INT_MAX + 1), str(10**20)])
def test_a_tournament_named_by_neither_is_refused_naming_both_forms(
    finished_store: FinishedStore, played: list[int], command: list[str], named: str
) -> None:
    """A number past the store's ids is no id but may be a name (names may be digits): refused as unknown,
    where it was a usage error before names were taken."""
    text = CliRunner().invoke(app, [*command, named], env={"COLUMNS": "300"})
    assert (text.exit_code, text.stdout) == (1, "")
    assert text.stderr == f"error: {UNKNOWN.format(named)}\n"
    as_json = CliRunner().invoke(app, [*command, named, "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout) == {"ok": False, "tournament": named, "error": UNKNOWN.format(named)}
    assert played == []


def test_help_says_a_tournament_is_named_by_either(runner: CliRunner) -> None:
    for command in COMMANDS.values():
        said = " ".join(runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).stdout.replace("│", " ").split())
        assert "TOURNAMENT" in said and "its name or its id" in said, said
        assert "a name made of digits is found before the id it spells" in said, said
