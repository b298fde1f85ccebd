"""Retiring a competitor: the tournaments it entered play on with it, no tournament created afterwards
enters it, and a retired champion still defends its title."""

from __future__ import annotations

from operator_data import FakeExecutor, OperatorData, add_tasks, register_example

from trainarena.operations.tournaments import create_pool_tournament, run_pool_tournament
from trainarena.settings import Settings
from trainarena.store import open_store, retire_competitor, tournament_runs


def _retire(settings: Settings, name: str) -> bool:
    with open_store(settings) as store, store.transaction() as session:
        return retire_competitor(session, name=name, owner=None, by_key_id=None)[1]


def _create(settings: Settings, seed: int):
    with open_store(settings) as store, store.transaction() as session:
        return create_pool_tournament(session, settings, kind="text", pool="weekly", seed=seed)


def test_a_retired_competitor_plays_out_its_tournaments_and_enters_no_new_one(operator_data: OperatorData) -> None:
    settings = operator_data.settings
    for name in ("baseline", "instruct_only", "torchloop"):
        register_example(settings, name)
    add_tasks(operator_data, *(f"t{number}" for number in range(1, 19)))
    entered = _create(settings, seed=5)
    assert set(entered.entrants) == {"baseline", "instruct_only", "torchloop"}

    with open_store(settings) as store:
        champion = run_pool_tournament(store, settings, entered.id, executor=FakeExecutor()).champion
    retired = next(name for name in entered.entrants if name != champion)
    assert _retire(settings, retired) and not _retire(settings, retired)  # the second changes nothing

    later = _create(settings, seed=6)
    assert retired not in later.entrants and retired not in dict(later.left_out)
    assert later.defender == champion and len(later.entrants) == 1


def test_a_tournament_entered_before_the_retirement_plays_it(operator_data: OperatorData) -> None:
    settings = operator_data.settings
    for name in ("baseline", "torchloop"):
        register_example(settings, name)
    add_tasks(operator_data, "t1", "t2")
    entered = _create(settings, seed=5)
    assert _retire(settings, "torchloop")
    with open_store(settings) as store:
        run_pool_tournament(store, settings, entered.id, executor=FakeExecutor())
        with store.session() as session:
            assert {run.competitor.name for run in tournament_runs(session, entered.id)} == {"baseline", "torchloop"}


def test_a_retired_champion_still_defends_its_title(operator_data: OperatorData) -> None:
    """The title stays with the code that won it until a challenger beats it: retiring it hands nobody its weight."""
    settings = operator_data.settings
    for name in ("baseline", "torchloop"):
        register_example(settings, name)
    add_tasks(operator_data, *(f"t{number}" for number in range(1, 18)))
    with open_store(settings) as store:
        champion = run_pool_tournament(store, settings, _create(settings, seed=5).id, executor=FakeExecutor()).champion
    assert _retire(settings, champion)
    register_example(settings, "instruct_only")
    later = _create(settings, seed=6)
    assert later.defender == champion and champion not in later.entrants
