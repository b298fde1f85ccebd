from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from trainarena.contract import Direction, RunStatus
from trainarena.engine.model import Stage, TaskOutcome
from trainarena.settings import TournamentRules
from trainarena.store import (
    ChampionHistory,
    EvaluationRow,
    MatchRow,
    Round,
    Run,
    RunAttempt,
    Store,
    StoreError,
    TaskRow,
    add_competitor,
    create_tournament,
    current_champion,
    find_tournament,
    get_competitor,
    list_tournaments,
    load_record,
    load_tournament,
    summarize_tournament,
    summarize_tournaments,
)


def _register(session, *names: str, kind: str | None = None) -> None:
    for name in names:
        add_competitor(session, name=name, repo_url="u", commit="0" * 40, tree_hash=name, source_digest=name,
                       entrypoint="train.py", kind=kind)


def test_create_tournament_refuses_what_the_record_cannot_hold(store: Store) -> None:
    with store.transaction() as session:
        _register(session, "a", "b")
        _register(session, "painter", kind="image")
        create_tournament(session, name="w1", kind="text", seed=1, entrants=["a", "b"])
    with store.session() as session:
        for kwargs, message in [
            ({"name": "w2", "kind": "audio", "entrants": ["a"]}, "kind 'audio'"),
            ({"name": "w2", "kind": "text", "entrants": ["a", "a"]}, "unique"),
            ({"name": "w1", "kind": "text", "entrants": ["a"]}, "already exists"),
            ({"name": "w2", "kind": "text", "entrants": ["a", "ghost"]}, "no competitor named 'ghost'"),
            ({"name": "w2", "kind": "text", "entrants": ["painter"]}, "registered for image"),
        ]:
            with pytest.raises(StoreError, match=message):
                create_tournament(session, seed=1, **kwargs)


def test_a_tournament_is_found_by_its_name_or_its_id_and_a_name_wins(store: Store) -> None:
    with store.transaction() as session:
        _register(session, "a", "b")
        first = create_tournament(session, name="week-1", kind="text", seed=1, entrants=["a", "b"]).id
        digits = create_tournament(session, name=str(first), kind="text", seed=1, entrants=["a", "b"]).id
        third = create_tournament(session, name="week-3", kind="text", seed=1, entrants=["a", "b"]).id
    with store.session() as session:
        assert find_tournament(session, "week-1").id == first and find_tournament(session, str(third)).id == third
        assert find_tournament(session, str(first)).id == digits  # a digits-only name is the name, not the id
        for unknown in ("week-9", str(third + 1), "0", "9" * 40, "-1", "²"):
            assert find_tournament(session, unknown) is None, unknown


def test_defending_champion_comes_from_history_unless_named(store: Store) -> None:
    now = datetime.now(UTC)
    with store.transaction() as session:
        _register(session, "a", "b", "c")
        for name, age in (("a", 2), ("b", 1)):
            session.add(ChampionHistory(kind="text", competitor=get_competitor(session, name), crowned_at=now - timedelta(days=age)))
        session.add(ChampionHistory(kind="image", competitor=get_competitor(session, "c"), crowned_at=now))
    with store.transaction() as session:
        assert current_champion(session, "text").name == "b"
        from_history = create_tournament(session, name="t", kind="text", seed=1, entrants=["a", "c"])
        named = create_tournament(session, name="t2", kind="text", seed=1, entrants=["b"], champion="c")
        assert (from_history.champion_before.name, named.champion_before.name) == ("b", "c")
        assert [e.competitor.name for e in from_history.entrants] == ["a", "c"]


def _run(session, name: str, status: RunStatus, score: float | None = None, failure: str | None = None) -> Run:
    run = Run(competitor=get_competitor(session, name), status=status.value)
    if status.finished:
        run.counted_attempt = RunAttempt(number=1, status=status.value, failure_reason=failure)
        run.attempt_records.append(run.counted_attempt)
    if score is not None:
        run.counted_attempt.evaluation = EvaluationRow(score=score, direction=Direction.HIGHER.value, per_example=[score, score])
    return run


def test_record_turns_runs_into_outcomes_and_skips_the_open_round(store: Store) -> None:
    names = ["ok", "crash", "late", "bad", "nan", "noeval"]
    with store.transaction() as session:
        _register(session, *names)
        tournament = create_tournament(session, name="t", kind="text", seed=5, entrants=names)
        task = TaskRow(index=0, definition={"name": "x"})
        task.runs = [
            _run(session, "ok", RunStatus.SUCCEEDED, 0.7),
            _run(session, "crash", RunStatus.FAILED, failure="exit code 1"),
            _run(session, "late", RunStatus.TIMED_OUT, failure="killed at the budget"),
            _run(session, "bad", RunStatus.INVALID, 0.9, failure="pickle file in the artifact"),
            _run(session, "nan", RunStatus.SUCCEEDED),
            _run(session, "noeval", RunStatus.SUCCEEDED),
        ]
        task.runs[4].counted_attempt.evaluation = EvaluationRow(score=None, direction="higher", failure="model did not load")
        match = MatchRow(match_id="r0-k01", position=0, competitors=names, tasks_count=1, advance_count=1)
        match.tasks.append(task)
        played = Round(index=0, stage=Stage.KNOCKOUT.value, byes=[])
        played.matches.append(match)
        open_task = TaskRow(index=0, definition={"name": "y"}, runs=[_run(session, "ok", RunStatus.PENDING)])
        open_match = MatchRow(match_id="r1-k01", position=0, competitors=["ok"], tasks_count=1, advance_count=1)
        open_match.tasks.append(open_task)
        open_round = Round(index=1, stage=Stage.KNOCKOUT.value, byes=[])
        open_round.matches.append(open_match)
        tournament.rounds.extend([played, open_round])
        tid = tournament.id
    with store.session() as session:
        loaded = load_tournament(session, tid)
        record = load_record(loaded, TournamentRules())
        summary = summarize_tournament(session, loaded)
    assert record.entrants == tuple(names) and record.seed == 5 and record.boss_tasks == TournamentRules().boss_tasks_text
    assert len(record.rounds) == 1  # the open round is not played yet
    played_match = record.rounds[0].matches[0]
    assert played_match.directions == (Direction.HIGHER,)
    assert played_match.tasks[0] == (
        TaskOutcome("ok", 0.7, None, (0.7, 0.7)),
        TaskOutcome("crash", None, "exit code 1"),
        TaskOutcome("late", None, "killed at the budget"),
        TaskOutcome("bad", None, "pickle file in the artifact"),
        TaskOutcome("nan", None, "model did not load"),
        TaskOutcome("noeval", None, "the artifact was not evaluated"),
    )
    assert (summary.round_index, summary.stage, summary.runs_done, summary.runs_total) == (1, "knockout", 6, 7)


def _tournament_of(session, name: str, entrants: list[str], statuses: list[RunStatus], rounds: int) -> None:
    """A tournament whose first round holds one task with a run per status (each by its own entrant)."""
    tournament = create_tournament(session, name=name, kind="text", seed=1, entrants=entrants)
    for index in range(rounds):
        played = Round(index=index, stage=(Stage.GROUP if index == 0 else Stage.KNOCKOUT).value, byes=[])
        if index == 0:
            task = TaskRow(index=0, definition={"name": name}, runs=[_run(session, e, s) for e, s in zip(entrants, statuses, strict=False)])
            match = MatchRow(match_id=f"{name}-m", position=0, competitors=entrants, tasks_count=1, advance_count=1)
            match.tasks.append(task)
            played.matches.append(match)
        tournament.rounds.append(played)


def test_summaries_of_many_tournaments_take_the_queries_of_one(store: Store) -> None:
    """A list of tournaments (GET /v1/tournaments, status, the dashboard) counted each one's runs in
    queries of its own: 50 took 4x as long once one of them held 20,000 runs."""
    with store.transaction() as session:
        _register(session, "a", "b", "c")
        session.add(ChampionHistory(kind="text", competitor=get_competitor(session, "c"), crowned_at=datetime.now(UTC)))
        session.flush()
        _tournament_of(session, "t1", ["a", "b", "c"], [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.RUNNING], rounds=2)
        _tournament_of(session, "t2", ["a"], [], rounds=0)
        _tournament_of(session, "t3", ["b", "c"], [RunStatus.PENDING, RunStatus.TIMED_OUT], rounds=1)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with store.session() as session:
        tournaments = list_tournaments(session)
        del statements[:]
        summaries = summarize_tournaments(session, tournaments)
        of_three = len(statements)
        del statements[:]
        summarize_tournaments(session, tournaments[:1])
        assert len(statements) == of_three  # grouped by tournament: no query per tournament
        assert [summarize_tournament(session, t) for t in tournaments] == summaries
        assert [t.name for t in list_tournaments(session, offset=1, limit=1)] == ["t2"]
    assert [(s.name, s.entrants, s.round_index, s.stage, s.runs_done, s.runs_total, s.champion_before) for s in summaries] == [
        ("t1", 3, 1, "knockout", 2, 3, "c"), ("t2", 1, None, None, 0, 0, "c"), ("t3", 2, 0, "group", 1, 2, "c")]


def _match_of_one_task(session, tournament, forms: dict[str, bool]) -> None:
    """A played knockout match whose one task has a succeeded run per name; ``forms[name]``: its
    per-example values are shares of the score (stored since engine.scores) or older per-example means."""
    task = TaskRow(index=0, definition={"name": "x"})
    task.runs = [_run(session, name, RunStatus.SUCCEEDED, 0.5) for name in forms]
    for run, shares in zip(task.runs, forms.values(), strict=True):
        run.counted_attempt.evaluation.details = {"per_example_form": "shares"} if shares else {}
    match = MatchRow(match_id="r0-k01", position=0, competitors=list(forms), tasks_count=1, advance_count=1)
    match.tasks.append(task)
    played = Round(index=0, stage=Stage.KNOCKOUT.value, byes=[])
    played.matches.append(match)
    tournament.rounds.append(played)


@pytest.mark.parametrize(("forms", "kept"), [((False, False), True), ((True, True), True), ((True, False), False)])
def test_per_example_values_of_two_forms_are_never_paired(store: Store, forms, kept) -> None:
    """Old rows (per-example means) load as stored, so a replay of an old tournament's gate is
    unchanged; a task mixing old and new rows passes no per-example values (the gate: 'missing')."""
    with store.transaction() as session:
        _register(session, "a", "b")
        tournament = create_tournament(session, name="t", kind="text", seed=5, entrants=["a", "b"])
        _match_of_one_task(session, tournament, dict(zip(["a", "b"], forms, strict=True)))
        tid = tournament.id
    with store.session() as session:
        record = load_record(load_tournament(session, tid), TournamentRules())
    outcomes = record.rounds[0].matches[0].tasks[0]
    assert [o.score for o in outcomes] == [0.5, 0.5]
    assert [o.per_example for o in outcomes] == ([(0.5, 0.5)] * 2 if kept else [(), ()])


@pytest.mark.parametrize(("units", "loaded"), [((None, None), ()), ((1.0, 1.0), (1.0,)), ((1.0, None), ())])
def test_a_tasks_lead_unit_comes_from_its_evaluations(store: Store, units, loaded) -> None:
    with store.transaction() as session:
        _register(session, "a", "b")
        tournament = create_tournament(session, name="t", kind="text", seed=5, entrants=["a", "b"])
        _match_of_one_task(session, tournament, {"a": True, "b": True})
        for run, unit in zip(tournament.rounds[0].matches[0].tasks[0].runs, units, strict=True):
            run.counted_attempt.evaluation.lead_unit = unit
        tid = tournament.id
    with store.session() as session:
        assert load_record(load_tournament(session, tid), TournamentRules()).rounds[0].matches[0].lead_units == loaded


def test_evaluations_of_one_task_disagreeing_on_the_lead_unit_are_refused(store: Store) -> None:
    with store.transaction() as session:
        _register(session, "a", "b")
        tournament = create_tournament(session, name="t", kind="text", seed=5, entrants=["a", "b"])
        _match_of_one_task(session, tournament, {"a": True, "b": True})
        for run, unit in zip(tournament.rounds[0].matches[0].tasks[0].runs, (1.0, 2.0), strict=True):
            run.counted_attempt.evaluation.lead_unit = unit
        tid = tournament.id
    with store.session() as session, pytest.raises(ValueError, match="disagree on the lead unit"):
        load_record(load_tournament(session, tid), TournamentRules())
