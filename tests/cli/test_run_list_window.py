"""``list_runs`` filters and pages in the database: every window of every filter is the same slice of
the full list, across the boundary between tournament runs and runs outside tournaments; a walk by
cursor (``after``) lists every run once in play order, each query of it walking indexes in that order
(SQLite's plans); a task filter names a task or is a problem."""

from __future__ import annotations

import pytest
from cli_store import FinishedStore, add_undrawn_stored_task
from sqlalchemy import event, select

from trainarena.contract import RunStatus
from trainarena.reporting.run_list import AD_HOC, UnknownFilter, list_runs, run_filter_problem
from trainarena.runs import task_key
from trainarena.settings import Settings
from trainarena.store import MatchRow, Round, Tournament, get_competitor, open_store
from trainarena.store.adhoc import start_adhoc_run
from trainarena.store.models import Run, RunOrigin, TaskRow
from trainarena.store.owned_lists import UnknownCursor

OUTSIDE_RUNS = 5


def _add_runs_outside_tournaments(session) -> None:  # type: ignore[no-untyped-def]
    named = TaskRow(match_row_id=None, index=0, definition={"name": "adhoc-task"}, digest="feedface" * 3)
    unnamed = TaskRow(match_row_id=None, index=0, definition={}, digest=None)
    session.add_all([named, unnamed])
    session.flush()
    for i in range(OUTSIDE_RUNS):
        session.add(Run(task_id=(named if i % 2 else unnamed).id, origin=RunOrigin.ADHOC, status=RunStatus.PENDING.value,
                        source_path=f"/trees/t{i}"))  # fmt: skip
    session.add(Run(task_id=named.id, origin=RunOrigin.HOUSE, status=RunStatus.PENDING.value))
    session.flush()


def test_every_window_of_every_filter_is_a_slice_of_the_whole_list(finished_store: FinishedStore) -> None:
    with open_store(Settings()) as store, store.transaction() as session:
        _add_runs_outside_tournaments(session)
        unnamed_id = session.query(TaskRow).filter(TaskRow.digest.is_(None)).one().id
        played = list_runs(session, tournament="week-1")
        first_task = played[0].task
        filters = [{}, {"tournament": AD_HOC}, {"tournament": "week-1"}, {"competitor": "crasher"},
                   {"status": RunStatus.PENDING.value}, {"task": first_task}, {"task": "feedfa"},
                   {"task": f"task{unnamed_id}"}, {"task": "nothing-by-this-name"}]  # fmt: skip
        for query in filters:
            whole = [run.run_id for run in list_runs(session, **query)]
            for offset in range(len(whole) + 2):
                for limit in (1, 2, 3, len(whole) + 1):
                    window = [run.run_id for run in list_runs(session, **query, offset=offset, limit=limit)]
                    assert window == whole[offset:offset + limit], (query, offset, limit)
        # The filters select what they name (a window is only as good as the list it slices).
        everything = list_runs(session)
        assert [run.run_id for run in everything] == [run.run_id for run in played] + [
            run.run_id for run in list_runs(session, tournament=AD_HOC)]
        assert len(list_runs(session, tournament=AD_HOC)) == OUTSIDE_RUNS + 1
        assert {run.task for run in list_runs(session, task="feedfa")} == {"adhoc-task"}
        assert {run.task for run in list_runs(session, task=f"task{unnamed_id}")} == {f"task{unnamed_id}"}
        assert {run.task for run in list_runs(session, task=first_task)} == {first_task}
        assert {run.competitor for run in list_runs(session, competitor="crasher")} == {"crasher"}
        assert list_runs(session, task="nothing-by-this-name") == []


def _add_tournaments_played_out_of_id_order(session) -> None:  # type: ignore[no-untyped-def]
    """Tournaments "scrambled-a" and "scrambled-b" whose runs were stored in the reverse of play order:
    b's before a's, later rounds, matches and tasks before earlier ones, so that run ids alone would
    list them wrong (a cursor keyed on the id alone would skip or repeat runs)."""
    first, second = (Tournament(name=name, kind="text", seed=1) for name in ("scrambled-a", "scrambled-b"))
    session.add_all([first, second])
    session.flush()
    competitors = [get_competitor(session, name) for name in ("crasher", "slowpoke")]
    for tournament in (second, first):
        for index in (1, 0):
            round_row = Round(tournament_id=tournament.id, index=index, stage="group", byes=[])
            for position in (1, 0):
                match = MatchRow(match_id=f"r{index}m{position}", position=position, competitors=["crasher", "slowpoke"],
                                 tasks_count=2, advance_count=1)  # fmt: skip
                for task_index in (1, 0):
                    task = TaskRow(index=task_index, definition={"name": f"{tournament.name}-task"}, digest=None)
                    task.runs = [Run(competitor=competitor, status=RunStatus.PENDING.value) for competitor in competitors]
                    match.tasks.append(task)
                round_row.matches.append(match)
            session.add(round_row)
            session.flush()


def _walk(session, page: int, **query) -> list[int]:  # type: ignore[no-untyped-def]
    """Every run of ``query``, a page of ``page`` at a time, each page after the last one's run."""
    walked: list[int] = []
    while True:
        window = [run.run_id for run in list_runs(session, **query, after=walked[-1] if walked else None, limit=page)]
        walked += window
        if len(window) < page:
            return walked


def test_a_cursor_walk_lists_every_run_once_in_play_order(finished_store: FinishedStore) -> None:
    with open_store(Settings()) as store, store.transaction() as session:
        _add_tournaments_played_out_of_id_order(session)
        _add_runs_outside_tournaments(session)
        job = start_adhoc_run(session, origin=RunOrigin.JOB, definition={"name": "job-task"}, digest="0" * 24)
        everything = [run.run_id for run in list_runs(session)]
        scrambled = [run.run_id for run in list_runs(session, tournament="scrambled-a")]
        assert scrambled != sorted(scrambled) and everything != sorted(everything)  # the ids are not the order
        # play order: tournament, round, match, task, then run id (the two competitors' runs of a task)
        rows = {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(scrambled)))}
        keys = [(rows[i].task.match.round.index, rows[i].task.match.position, rows[i].task.index, i) for i in scrambled]
        assert keys == sorted(keys) and len(set(keys)) == len(keys) == 16
        filters = [{}, {"tournament": AD_HOC}, {"tournament": "scrambled-b"}, {"competitor": "crasher"},
                   {"status": RunStatus.PENDING.value}, {"task": "scrambled-a-task"}, {"task": "feedfa"},
                   {"task": "nothing-by-this-name"}]  # fmt: skip
        for query in filters:
            whole = [run.run_id for run in list_runs(session, **query)]
            for page in (1, 3, len(whole) + 1):
                assert _walk(session, page, **query) == whole, (query, page)
            # After any run of the whole list, even one the filters leave out: the listed runs past its place.
            for place, anchor in enumerate(everything):
                following = [run_id for run_id in everything[place + 1:] if run_id in whole]
                assert [run.run_id for run in list_runs(session, **query, after=anchor)] == following, (query, anchor)
                window = list_runs(session, **query, after=anchor, offset=1, limit=2)
                assert [run.run_id for run in window] == following[1:3], (query, anchor)
        for unknown in (max(everything) + 100, job.id):  # a customer's job run is no place in these lists
            with pytest.raises(UnknownCursor, match=f"after '{unknown}' is none of the listed ids"):
                list_runs(session, after=unknown)


def _plans(session, **query) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """SQLite's query plan of each statement ``list_runs(session, **query)`` runs over played runs."""
    statements: list[tuple[str, object]] = []

    def keep(_connection, _cursor, statement, parameters, _context, _executemany) -> None:  # type: ignore[no-untyped-def]
        if "JOIN round" in statement and statement.startswith("SELECT run.id \nFROM"):
            statements.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", keep)
    try:
        list_runs(session, **query)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    connection = session.connection()
    return {statement: [row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            for statement, parameters in statements}  # fmt: skip


def test_a_cursor_page_starts_at_its_place_by_the_indexes(finished_store: FinishedStore) -> None:
    with open_store(Settings()) as store, store.transaction() as session:
        if session.get_bind().dialect.name != "sqlite":
            pytest.skip("reads SQLite's query plans")
        _add_tournaments_played_out_of_id_order(session)
        played = [run.run_id for run in list_runs(session, tournament="scrambled-a")]
        # After a run mid-tournament: the rest of its task, match, round, then the later rounds, one query each.
        plans = _plans(session, tournament="scrambled-a", after=played[4], limit=len(played))
        assert len(plans) == 4
        for steps in plans.values():  # walked in play order: nothing sorted, every join by an index
            assert not any("TEMP B-TREE" in step for step in steps), steps
            assert any("ix_match_round_id_position" in step for step in steps), steps
            assert any("ix_run_task_id_id" in step for step in steps), steps
        starts = [step for steps in plans.values() for step in steps]
        assert any("ix_run_task_id_id (task_id=? AND id>?)" in step for step in starts), starts
        assert any("ix_match_round_id_position (round_id=? AND position>?)" in step for step in starts), starts
        # The first page of every run: each tournament's runs by the same indexes, unsorted.
        for steps in _plans(session, limit=3).values():
            assert not any("TEMP B-TREE" in step for step in steps), steps


def test_a_filter_naming_no_task_is_a_problem_and_a_task_without_runs_is_not(finished_store: FinishedStore) -> None:
    with open_store(Settings()) as store, store.transaction() as session:
        _add_runs_outside_tournaments(session)
        task = add_undrawn_stored_task(session)
        start_adhoc_run(session, origin=RunOrigin.JOB, definition={"name": "job-task"}, digest="0" * 24)
        played = list_runs(session, tournament="week-1")[0]

        def problem(name: str, operator: bool = False) -> UnknownFilter | None:
            return run_filter_problem(session, tournament=None, competitor=None, task=name, operator=operator)

        for known in (played.task, played.task_digest[:6], "adhoc-task", "feedfa"):
            assert problem(known) is None, known
        # a stored task no tournament drew yet: its runs are none (for the operator; a competitor may not see the pool)
        for stored in (task.name, task_key(task)[:8]):
            assert list_runs(session, task=stored) == [] and problem(stored, operator=True) is None
            assert problem(stored) == UnknownFilter("task", stored, f"no task named {stored!r}; the task filter takes "
                                                    "a task's name, or the first 6 or more characters of its digest")  # fmt: skip
        # a customer's job task, a name no task has, a digest prefix too short to be one
        for unknown in ("job-task", "0" * 8, "nosuch", played.task_digest[:5]):
            assert problem(unknown, operator=True) is not None and problem(unknown).field == "task", unknown
