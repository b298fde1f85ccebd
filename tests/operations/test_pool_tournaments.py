"""The pool tournament life cycle with a fake executor: entry, the draw without replacement, the
defending champion, refusals with numbers, faults recorded against one run."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from operator_data import ROWS, FakeExecutor, OperatorData, add_tasks, register_example

from trainarena.engine import tasks_at_most
from trainarena.operations.pools import add_task, task_from_flags
from trainarena.operations.tournaments import (
    TournamentRefused,
    create_pool_tournament,
    pool_task_source,
    run_pool_tournament,
)
from trainarena.orchestrator import drive
from trainarena.pipeline import SandboxedExecutor
from trainarena.runs import RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.store import (
    TournamentStatus,
    champion_history,
    get_stored_task,
    get_tournament,
    open_store,
    remove_stored_task,
    tournament_runs,
)
from trainarena.store.competitors import StoreError, get_competitor
from trainarena.submissions import checkout_path


def _create(settings: Settings, **options):
    with open_store(settings) as store, store.transaction() as session:
        return create_pool_tournament(session, settings, kind=options.pop("kind", "text"), pool=options.pop("pool", "weekly"), **options)


def test_a_pool_tournament_enters_draws_plays_and_crowns(operator_data: OperatorData) -> None:
    settings = operator_data.settings
    for name in ("baseline", "instruct_only", "torchloop", "image_baseline"):
        register_example(settings, name)
    add_tasks(operator_data, "t1", "t2")

    created = _create(settings, seed=5)
    assert created.entrants == ("baseline", "instruct_only", "torchloop") and created.defender is None
    assert created.left_out == (("image_baseline", "registered for image tasks, not text"),)
    assert sorted(created.tasks) == ["t1", "t2"]

    executor = FakeExecutor()
    with open_store(settings) as store:
        result = run_pool_tournament(store, settings, created.id, executor=executor)
        with store.session() as session:
            played = {(run.task.match.round.index, run.task.definition["name"]) for run in tournament_runs(session, created.id)}
    assert result.champion in created.entrants and result.crowned
    assert result.weights and sum(result.weights.values()) <= 1 + 1e-9
    # Each round played one drawn task, every match of the round the same one, none twice.
    rounds = sorted(played)
    assert [name for _, name in rounds] == list(created.tasks) and len({i for i, _ in rounds}) == 2
    assert all(request.task.split_key and request.task.split_key.startswith(request.task.name + ":") for request in executor.requests)

    # The next tournament: the champion defends and needs the boss rounds' tasks too: one knockout task
    # and 3 boss tasks for each of the 5 boss rounds the paired rule may play. The two tasks played are
    # spent: the end of the tournament revealed their split seeds.
    # Both spent by one tournament: the reason is said once, for both (it was said whole for each).
    with pytest.raises(TournamentRefused, match=r"pool 'weekly' has 0 usable tasks \(2 unusable: t1, t2: its split seed was "
                       r"revealed when tournament 'text-weekly-1' ended, so its hidden rows are public; store tasks on new data \(the "
                       r"same dataset again is refused: its rows are known\)\), but 2 entrants and a defending champion can play 16"):
        _create(settings)
    add_tasks(operator_data, *(f"t{number}" for number in range(3, 19)))
    second = _create(settings, seed=6)
    assert second.defender == result.champion and result.champion not in second.entrants
    with open_store(settings) as store:
        again = run_pool_tournament(store, settings, second.id, executor=FakeExecutor())
        with store.session() as session:
            by_match = {(run.task.match.match_id, run.task.index): run.task.definition["name"]
                        for run in tournament_runs(session, second.id)}
            history = [(row.competitor.name, row.tournament_id) for row in champion_history(session, "text")]
            with pytest.raises(StoreError, match=r"was drawn by tournament.*Its dataset is spent: a new task on it is refused"):
                remove_stored_task(session, created.tasks[0])
    assert again.champion is not None and history[0] == (result.champion, created.id)
    # The knockout round plays from the start of the draw, the boss round from its end, whatever the
    # rounds before it.
    assert by_match[("r1-k001", 0)] == second.tasks[0], by_match
    assert [by_match[("boss", i)] for i in range(3)] == list(reversed(second.tasks))[:3]


def test_entry_closes_and_a_gone_repository_leave_competitors_out(operator_data: OperatorData) -> None:
    settings = operator_data.settings
    for name in ("baseline", "torchloop"):
        register_example(settings, name)
    gone = register_example(settings, "lost", "instruct_only")
    add_tasks(operator_data, "t1", "t2")
    with open_store(settings) as store, store.session() as session:
        lost = get_competitor(session, "lost")
        shutil.rmtree(checkout_path(settings, lost.commit))
    shutil.rmtree(gone)
    shutil.rmtree(settings.cache_dir / "repos")

    created = _create(settings)
    reasons = dict(created.left_out)
    assert created.entrants == ("baseline", "torchloop")
    assert reasons["lost"].startswith("its repository cannot be fetched any more")

    # One reason for all, said once (it was said whole for each competitor).
    with pytest.raises(TournamentRefused, match=r"^nobody can enter a text tournament on pool 'weekly' \(\w+, \w+, \w+: "
                       r"registered after entry closed \([^)]+\)\)$"):
        _create(settings, entry_closes=datetime.now(UTC) - timedelta(days=1))


def test_a_lone_entrant_with_no_champion_is_refused_unless_the_rules_crown_without_a_score(operator_data: OperatorData) -> None:
    settings = operator_data.settings
    register_example(settings, "baseline")
    add_tasks(operator_data, "t1")
    with pytest.raises(TournamentRefused, match="only baseline can enter a text tournament on pool 'weekly' and no champion "
                       "defends: a lone entrant plays nothing, and a title needs a valid score"):
        _create(settings)
    crowning = settings.model_copy(update={"rules": settings.rules.model_copy(update={"crown_unscored": True})})
    assert _create(crowning).entrants == ("baseline",)


def test_an_image_tournament_refuses_a_text_pool(operator_data: OperatorData) -> None:
    add_tasks(operator_data, "t1")
    with pytest.raises(TournamentRefused, match="pool 'weekly' holds text tasks, not image"):
        _create(operator_data.settings, kind="image")
    with pytest.raises(TournamentRefused, match="no task pool named 'nope'"):
        _create(operator_data.settings, pool="nope")
    # The kind first: a typo said "pool 'weekly' holds text tasks, not foo", or that the pool is missing.
    for pool in ("weekly", "nope"):
        with pytest.raises(TournamentRefused, match="kind must be text or image, got 'foo'"):
            _create(operator_data.settings, kind="foo", pool=pool)


class GoneRepositoryExecutor(FakeExecutor):
    """The real pipeline for ``gone``'s runs (it stops before any sandbox: the repository is gone), the
    fake scores for the others."""

    def __init__(self, settings: Settings, gone: str) -> None:
        super().__init__()
        self.pipeline, self.gone = SandboxedExecutor(settings, backend=None), gone  # type: ignore[arg-type]

    def execute(self, request: RunRequest) -> RunReport:
        if request.competitor.name == self.gone:
            return self.pipeline.execute(request)
        return super().execute(request)


def test_a_repository_gone_mid_tournament_fails_its_runs_and_the_tournament_goes_on(operator_data: OperatorData) -> None:
    settings = operator_data.settings
    for name in ("baseline", "instruct_only"):
        register_example(settings, name)
    gone = register_example(settings, "torchloop")
    add_tasks(operator_data, "t1", "t2")
    created = _create(settings)
    with open_store(settings) as store, store.session() as session:
        shutil.rmtree(checkout_path(settings, get_competitor(session, "torchloop").commit))
    shutil.rmtree(gone)
    shutil.rmtree(settings.cache_dir / "repos")
    with open_store(settings) as store:
        result = run_pool_tournament(store, settings, created.id, executor=GoneRepositoryExecutor(settings, "torchloop"))
        with store.session() as session:
            failed = [run for run in tournament_runs(session, created.id) if run.competitor.name == "torchloop"]
    assert result.champion in ("baseline", "instruct_only")
    assert failed and all(run.status == "failed" and run.failure_reason.startswith("submission: ") for run in failed)


def test_tasks_whose_data_is_gone_or_changed_are_not_drawn(operator_data: OperatorData) -> None:
    settings = operator_data.settings
    for name in ("baseline", "torchloop", "instruct_only"):
        register_example(settings, name)
    add_tasks(operator_data, "t1", "t2")
    with open_store(settings) as store, store.transaction() as session:
        add_task(session, settings, task_from_flags("other", "instruct", str(operator_data.model),
                 {"source": str(operator_data.csv), "field_instruction": "q", "field_output": "a"}, 5.0), "weekly")
    operator_data.jsonl.write_text(operator_data.jsonl.read_text() + '{"q": "one more", "a": "1"}\n')
    with pytest.raises(TournamentRefused, match=r"pool 'weekly' has 1 usable task \(2 unusable: t1, t2: its dataset \S+ changed"):
        _create(settings)
    operator_data.jsonl.unlink()
    with pytest.raises(TournamentRefused, match=r"t2: its dataset .*rows.jsonl is gone"):
        _create(settings)


def test_a_stopped_tournament_resumes_with_the_next_drawn_tasks(operator_data: OperatorData) -> None:
    settings = operator_data.settings
    for name in ("baseline", "torchloop", "instruct_only"):
        register_example(settings, name)
    add_tasks(operator_data, "t1", "t2", "t3")
    created = _create(settings, seed=11)
    with open_store(settings) as store:
        # Stop after the first round is created and one run played, as a killed driver would.
        drive(store, created.id, task_source=pool_task_source(store, created.id), executor=FakeExecutor(),
              rules=settings.rules, weight_rules=settings.weights, work_dir=settings.work_dir, max_steps=2)
        result = run_pool_tournament(store, settings, created.id, executor=FakeExecutor())
        with store.session() as session:
            by_round = {(run.task.match.round.index, run.task.definition["name"]) for run in tournament_runs(session, created.id)}
    assert result.champion is not None
    assert [name for _, name in sorted(by_round)] == list(created.tasks)


def _store_budget(settings: Settings, name: str, budget: object) -> None:
    """Store ``budget`` in a stored task's definition, as builds before the budget check could."""
    with open_store(settings) as store, store.transaction() as session:
        task = get_stored_task(session, name)
        task.definition = {**task.definition, "budget_seconds": budget}


def test_a_stored_task_with_no_finite_budget_is_neither_drawn_nor_run(operator_data: OperatorData) -> None:
    settings = operator_data.settings
    for name in ("baseline", "torchloop", "instruct_only"):
        register_example(settings, name)
    add_tasks(operator_data, "t1", "t2", "t3")
    created = _create(settings, seed=11)  # draws two of the three
    unusable = created.tasks[1]
    _store_budget(settings, unusable, "inf")  # the JSON column keeps an infinite float by name

    executor = FakeExecutor()
    with open_store(settings) as store:
        with pytest.raises(StoreError, match=rf"^stored task '{unusable}': budget_seconds must be a positive number, "
                           r"got 'inf'; add the task again with a finite budget in range under a new name"):
            run_pool_tournament(store, settings, created.id, executor=executor)
        with store.session() as session:
            assert tournament_runs(session, created.id) == [] and get_tournament(session, created.id).status == TournamentStatus.CREATED
            assert all(get_stored_task(session, name) is not None for name in ("t1", "t2", "t3"))
    assert executor.requests == []  # refused before the first round, not when its turn came

    # A new tournament leaves it out and says why.
    again = _create(settings, seed=11)
    assert unusable not in again.tasks
    assert [(name, reason.split(";")[0]) for name, reason in again.unusable_tasks] == [
        (unusable, "budget_seconds must be a positive number, got 'inf'")]


class _EditingExecutor(FakeExecutor):
    """Edits a file after its first run, as an operator might while a tournament plays."""

    def __init__(self, path, text: str) -> None:
        super().__init__()
        self.path, self.text = path, text

    def execute(self, request: RunRequest) -> RunReport:
        report = super().execute(request)
        if len(self.requests) == 1:
            self.path.write_text(self.text)
        return report


def test_a_drawn_task_whose_data_changed_since_it_was_stored_is_not_played(operator_data: OperatorData) -> None:
    """QA cli 1: a dataset edited after `tournament create` was played, and the champion crowned on data
    the tournament's commitment does not name. The drive refuses it, before it plays and mid-drive, and
    goes on once the file is restored as it was."""
    settings = operator_data.settings
    for name in ("baseline", "torchloop", "instruct_only"):
        register_example(settings, name)
    add_tasks(operator_data, "t1", "t2")
    created = _create(settings, seed=3)
    original = operator_data.jsonl.read_text()
    operator_data.jsonl.write_text(original.replace('"a"', '"a" ', 1))
    changed = (rf"^stored task '{created.tasks[0]}': its dataset {operator_data.jsonl} changed since it was stored "
               rf"\(sha256 differs\); tournament {created.id} drew it and commits to the data as stored, so it is not "
               r"played on the change: restore the file as it was")
    with open_store(settings) as store:
        with pytest.raises(StoreError, match=changed):
            run_pool_tournament(store, settings, created.id, executor=FakeExecutor())
        with store.session() as session:
            assert tournament_runs(session, created.id) == []

        operator_data.jsonl.write_text(original)  # restored: the first round plays; edited again during it
        editing = _EditingExecutor(operator_data.jsonl, original + original.splitlines(keepends=True)[0])
        second = changed.replace(created.tasks[0], created.tasks[1])
        with pytest.raises(StoreError, match=second):
            run_pool_tournament(store, settings, created.id, executor=editing)
        with store.session() as session:
            played = {run.task.definition["name"] for run in tournament_runs(session, created.id)}
        assert played == {created.tasks[0]}  # the second round was not created on the changed file

        operator_data.jsonl.write_text(original)
        result = run_pool_tournament(store, settings, created.id, executor=FakeExecutor())
    assert result.champion in created.entrants


def test_a_changed_base_model_folder_is_refused_too(operator_data: OperatorData) -> None:
    settings = operator_data.settings
    for name in ("baseline", "torchloop"):
        register_example(settings, name)
    add_tasks(operator_data, "t1")
    created = _create(settings, seed=3)
    (operator_data.model / "config.json").write_text((operator_data.model / "config.json").read_text() + "\n")
    with open_store(settings) as store, pytest.raises(StoreError, match=r"its base model .* changed since it was stored"):
        run_pool_tournament(store, settings, created.id, executor=FakeExecutor())


def test_the_dashboard_says_a_spent_scheduled_pool_cannot_give_a_tournament(operator_data: OperatorData) -> None:
    """A pool whose every task an ended tournament revealed was listed as "due now", though serve's
    creation is refused whoever enters."""
    from fastapi.testclient import TestClient

    from trainarena.api import create_app
    from trainarena.settings import ScheduleRules

    settings = operator_data.settings.model_copy(update={"schedule": ScheduleRules(text_pool="weekly", image_enabled=False)})
    for name in ("baseline", "torchloop"):
        register_example(settings, name)
    add_tasks(operator_data, "t1")

    def next_scheduled() -> str:
        with open_store(settings) as store, TestClient(create_app(settings, store=store)) as client:
            page = client.get("/").text
        return " ".join(re.sub(r"<[^>]+>", " ", page.split('id="next"')[1].split("</section>")[0]).split())

    shown = next_scheduled()
    assert "Kind Pool Due text weekly" in shown  # t1 is unplayed: serve would create one
    assert "a creation refused (too few tasks, nobody able to enter) is tried again every schedule.retry_after_fault" in shown
    created = _create(settings, seed=5)
    with open_store(settings) as store:
        run_pool_tournament(store, settings, created.id, executor=FakeExecutor())
    shown = next_scheduled()
    assert "Kind Pool Due" not in shown
    assert "No text tournament can be created: every task of the pool weekly was played in an ended tournament" in shown
    add_tasks(operator_data, "t2")  # a new task: due again
    assert "Kind Pool Due text weekly" in next_scheduled()


def _add_chat_task(data: OperatorData, name: str) -> Path:
    """A chat task on the operator rows as conversations, in pool 'weekly'; returns its dataset file."""
    chats = data.jsonl.parent / f"{name}.jsonl"
    chats.write_text("".join(json.dumps({"messages": [{"role": "user", "content": row["q"]},
                                                      {"role": "assistant", "content": row["a"]}]}) + "\n" for row in ROWS))
    with open_store(data.settings) as store, store.transaction() as session:
        add_task(session, data.settings, task_from_flags(name, "chat", str(data.model), {"source": str(chats)}, 5.0), "weekly",
                 allow_reused_data=True)  # each chat task's file holds the same rows: no secret kept here
    return chats


def test_entry_is_judged_on_the_task_types_the_pool_can_still_draw(operator_data: OperatorData) -> None:
    """A chat task played (revealed) or unusable kept every script without chat support out of the pool
    for good, though no chat task could be drawn: entry read every task ever stored in the pool."""
    settings = operator_data.settings
    for name in ("baseline", "crasher"):
        register_example(settings, name)
    _add_chat_task(operator_data, "c1")
    first = _create(settings, seed=1)
    assert first.tasks == ("c1",)
    with open_store(settings) as store:
        run_pool_tournament(store, settings, first.id, executor=FakeExecutor())  # its end reveals c1
    gone = _add_chat_task(operator_data, "c2")
    kept = gone.read_bytes()
    gone.unlink()  # c2 cannot be drawn while its dataset is gone
    register_example(settings, "instruct_only")
    needed = tasks_at_most(2, True, settings.rules, settings.rules.boss_tasks_text)
    add_tasks(operator_data, *(f"t{number}" for number in range(needed)))

    created = _create(settings)
    assert "instruct_only" in created.entrants and "instruct_only" not in dict(created.left_out)
    with open_store(settings) as store, store.session() as session:
        assert {get_stored_task(session, name).task_type for name in created.tasks} == {"instruct"}

    gone.write_bytes(kept)  # c2 can be drawn again: a round may play it, and instruct_only could not train it
    refused = dict(_create(settings).left_out)["instruct_only"]
    assert refused == ("its trainarena.toml supports instruct tasks, but the pool can draw chat and instruct tasks: "
                       "an entrant must support every type the pool can draw (each round plays the same tasks for "
                       "all its entrants)")
