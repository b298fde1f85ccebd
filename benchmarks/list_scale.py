"""What a page of a list costs as the store grows: ``GET /v1/runs?limit=50`` (the first page, and the
last page reached by ``offset`` and by ``after``, side by side; and one tournament's last page by
``after``) and ``GET /v1/models?limit=50`` over a
small store and a large one, side by side in one process, and the ratio large / small of each, the two
stores' requests alternating so that the machine's load falls on both alike. A list that reads every
row to answer one page costs in proportion to the store (the large store holds 100x the rows: a ratio
near 100); one that pages in the database costs about the same at any size. Target: the first pages'
and the cursors' last pages' ratios under 3. The last page by ``offset`` is shown, not judged: an
offset makes the database step over the rows it skips, at any store; ``after`` (the run before the
last page, a keyset cursor) starts the page where it is.

The stores are synthetic rows (runs outside tournaments with their tasks; as many runs again in one
tournament of two rounds, ten competitors on each task, two tasks a match; registered models of one
customer), inserted directly: nothing trains. The requests go through the API app in process
(FastAPI's TestClient), authenticated as an operator, so the timing is the route, the query and the
serialisation a client pays for, without a network.

Run from the repo root: ``.venv/bin/python -m benchmarks.list_scale [--small 100] [--large 10000] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlalchemy.orm import Session

from trainarena.api import create_app
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import Competitor, MatchRow, RegisteredModel, Round, Run, RunOrigin, TaskRow, Tournament

PAGE = 50
REPEATS = 15  # median of these: the machine is shared
RUNS_PER_TASK = 100
# The tournament's shape: a round of many matches is where sorting play order costs most.
PLAYED_ROUNDS, TASKS_PER_MATCH, COMPETITORS = 2, 2, 10
TOURNAMENT = "bench-tournament"
TARGET_RATIO = 3.0
# The first pages (what a client's first request costs) and the cursors' deepest (what each request of a
# client walking every run costs).
JUDGED = ("runs_first_ms", "runs_after_ms", "played_after_ms", "models_ms")
SHOWN = (("runs_first_ms", "/v1/runs first page"), ("runs_last_ms", "/v1/runs last, offset"),
         ("runs_after_ms", "/v1/runs last, after"), ("played_after_ms", "tournament last, after"),
         ("models_ms", "/v1/models"))  # fmt: skip


@dataclass(frozen=True)
class Timing:
    rows: int
    runs_first_ms: float
    runs_last_ms: float  # the last page by offset
    runs_after_ms: float  # the same page by after
    played_after_ms: float  # the tournament's last page by after
    models_ms: float


def _fill(data_dir: Path, rows: int) -> tuple[Settings, str]:
    """A store in ``data_dir`` with ``rows`` runs outside tournaments, ``rows`` in one tournament and
    ``rows`` models; returns its settings and an operator key."""
    os.environ["TRAINARENA_DATA_DIR"] = str(data_dir)
    settings = Settings()
    with open_store(settings) as store, store.transaction() as session:
        key = create_key(session, "bench-operator", "operator")
        customer = create_key(session, "bench-customer", "customer").row.id
        tasks = [TaskRow(match_row_id=None, index=0, definition={"name": f"task-{i}"}, digest=f"{i:024x}")
                 for i in range(max(1, rows // RUNS_PER_TASK))]  # fmt: skip
        session.add_all(tasks)
        session.flush()
        session.execute(insert(Run), [{"task_id": tasks[i % len(tasks)].id, "origin": RunOrigin.ADHOC, "status": "succeeded",
                                       "source_path": f"/trees/tree-{i}"} for i in range(rows)])  # fmt: skip
        _fill_tournament(session, rows)
        session.execute(insert(RegisteredModel), [
            {"id": f"model-{i:08x}", "owner_key_id": customer, "source": "job", "task_type": "instruct", "base_model": "org/base",
             "dataset_digest": "e" * 64, "score": 0.5, "path": f"models/{i}", "digest": "f" * 64, "card": {"library": "peft"}}
            for i in range(rows)])  # fmt: skip
    return settings, key.secret


def _fill_tournament(session: Session, rows: int) -> None:
    """Tournament :data:`TOURNAMENT` with ``rows`` runs: tasks of :data:`COMPETITORS` runs, matches of
    :data:`TASKS_PER_MATCH` tasks, the matches split between :data:`PLAYED_ROUNDS` rounds."""
    competitors = [Competitor(name=f"bench-{i}", repo_url="https://example.invalid/bench", commit="0" * 40,
                              tree_hash=f"{i:x}", source_digest=f"{i:x}", entrypoint="train.py") for i in range(COMPETITORS)]  # fmt: skip
    tournament = Tournament(name=TOURNAMENT, kind="text", seed=0)
    session.add_all([*competitors, tournament])
    session.flush()
    tasks = -(-rows // COMPETITORS)
    matches = -(-tasks // TASKS_PER_MATCH)
    rounds = [Round(tournament_id=tournament.id, index=i, stage="group", byes=[]) for i in range(PLAYED_ROUNDS)]
    session.add_all(rounds)
    session.flush()
    match_ids = list(session.scalars(insert(MatchRow).returning(MatchRow.id, sort_by_parameter_order=True), [
        {"round_id": rounds[m * PLAYED_ROUNDS // matches].id, "match_id": f"m{m}", "position": m, "competitors": [],
         "tasks_count": TASKS_PER_MATCH, "advance_count": 1} for m in range(matches)]))  # fmt: skip
    task_ids = list(session.scalars(insert(TaskRow).returning(TaskRow.id, sort_by_parameter_order=True), [
        {"match_row_id": match_ids[t // TASKS_PER_MATCH], "index": t % TASKS_PER_MATCH, "definition": {"name": f"played-{t}"},
         "digest": None} for t in range(tasks)]))  # fmt: skip
    session.execute(insert(Run), [{"task_id": task_ids[i // COMPETITORS], "competitor_id": competitors[i % COMPETITORS].id,
                                   "origin": RunOrigin.TOURNAMENT, "status": "succeeded"} for i in range(rows)])  # fmt: skip


def _last_page_cursor(client: TestClient, headers: dict[str, str], listed: str, rows: int) -> str:
    """The ``after`` of the last page of ``/v1/runs?{listed}`` (filters, each ending in ``&``; ``rows``
    runs): the run before it, none when that page is the first; checked to answer the runs the offset's
    last page does."""
    if rows == PAGE:
        return ""
    before = client.get(f"/v1/runs?{listed}limit=1&offset={rows - PAGE - 1}", headers=headers).json()["data"][0]["run_id"]
    by_offset, by_after = (client.get(f"/v1/runs?{listed}limit={PAGE}&{window}", headers=headers).json()
                           for window in (f"offset={rows - PAGE}", f"after={before}"))  # fmt: skip
    if by_after != by_offset:
        raise SystemExit(f"the last page of {rows} runs of /v1/runs?{listed} by after={before} is not the one by offset")
    return f"&after={before}"


def _ms(client: TestClient, path: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    response = client.get(path, headers=headers)
    seconds = time.perf_counter() - start
    if response.status_code != 200 or len(response.json()["data"]) != PAGE:
        raise SystemExit(f"{path}: {response.status_code} {response.text[:200]}")
    return seconds * 1000


def measure(sizes: tuple[int, ...]) -> list[Timing]:
    """Each size's medians; the stores are filled first, then asked in turn, request by request."""
    with ExitStack() as stack:
        clients = []
        for rows in sizes:
            settings, secret = _fill(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trainarena-list-scale-"))), rows)
            store = stack.enter_context(open_store(settings))
            client = stack.enter_context(TestClient(create_app(settings, store=store)))
            headers = {"Authorization": f"Bearer {secret}"}
            played = f"tournament={TOURNAMENT}&"  # every run: 2 * rows, the tournament's first
            paths = {"runs_first_ms": f"/v1/runs?limit={PAGE}", "runs_last_ms": f"/v1/runs?limit={PAGE}&offset={2 * rows - PAGE}",
                     "runs_after_ms": f"/v1/runs?limit={PAGE}{_last_page_cursor(client, headers, '', 2 * rows)}",
                     "played_after_ms": f"/v1/runs?{played}limit={PAGE}{_last_page_cursor(client, headers, played, rows)}",
                     "models_ms": f"/v1/models?limit={PAGE}"}  # fmt: skip
            clients.append((client, headers, rows, paths))
        times: dict[tuple[int, str], list[float]] = {}
        for repeat in range(REPEATS + 1):  # the first round warms each app and connection, uncounted
            for client, headers, rows, paths in clients:
                for name, path in paths.items():
                    took = _ms(client, path, headers)
                    if repeat:
                        times.setdefault((rows, name), []).append(took)
    return [Timing(rows, **{name: statistics.median(times[rows, name]) for name, _ in SHOWN}) for rows in sizes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100, help="rows of each kind in the small store")
    parser.add_argument("--large", type=int, default=10_000, help="rows of each kind in the large store")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not PAGE <= args.small < args.large:
        parser.error(f"need {PAGE} <= --small < --large")
    small, large = measure((args.small, args.large))
    ratios = {name: getattr(large, name) / getattr(small, name) for name, _ in SHOWN}
    met = all(ratios[name] < TARGET_RATIO for name in JUDGED)
    if args.json:
        print(json.dumps({"small": asdict(small), "large": asdict(large), "ratios": ratios, "target_ratio": TARGET_RATIO, "met": met}))
        return 0
    print(f"A page of {PAGE}, median of {REPEATS} requests, in ms")
    print(f"{'list':<22}{args.small:>10,} rows{args.large:>10,} rows{'ratio':>9}")
    for name, label in SHOWN:
        print(f"{label:<22}{getattr(small, name):>15.1f}{getattr(large, name):>15.1f}{ratios[name]:>9.2f}")
    print(f"target: the first pages' and the cursors' ratios < {TARGET_RATIO:g} -> {'met' if met else 'NOT met'} "
          f"(the last page by offset, {2 * args.large - PAGE:,}: not judged)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
