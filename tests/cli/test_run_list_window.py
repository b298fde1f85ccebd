"""``list_runs`` filters and pages in the database: every window of every filter is the same slice of
the full list, across the boundary between tournament runs and runs outside tournaments."""

from __future__ import annotations

from cli_store import FinishedStore

from trainarena.contract import RunStatus
from trainarena.reporting.run_detail import AD_HOC, list_runs
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.models import Run, RunOrigin, TaskRow

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
