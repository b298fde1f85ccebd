"""Every dashboard page through FastAPI's TestClient, on a store with finished tournaments (one with a
bye and a boss round) and a running one: what each page must show, its links, its live fragment, and
that nothing it loads comes from elsewhere."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from cli_store import COMPETITORS, CRASH_TAIL, LONG_NAME, LONG_URL, add_undrawn_stored_task, build_finished_store
from fastapi.testclient import TestClient
from sqlalchemy import select
from web_store import CHALLENGER, DashboardStore, customer_with_a_job, sign_in, text_of

from trainarena.api import create_app
from trainarena.operations.schedule import latest_due
from trainarena.reporting import run_files
from trainarena.reporting.competitor_history import ScorePoint, score_history
from trainarena.reporting.run_files import artifact_files
from trainarena.reporting.run_list import list_runs
from trainarena.settings import DashboardRules, ScheduleRules, Settings
from trainarena.store import Run, TaskRow, add_stored_task, get_competitor, open_store, retire_competitor
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole
from trainarena.web.templating import when


def run_of(competitor: str, tournament: str, status: str | None = None) -> int:
    with open_store(Settings()) as store, store.session() as session:
        runs = list_runs(session, tournament=tournament, competitor=competitor, status=status)
    return runs[0].run_id


def history(name: str) -> list[ScorePoint]:
    with open_store(Settings()) as store, store.session() as session:
        return score_history(session, get_competitor(session, name))


def test_home_shows_the_champion_the_running_tournament_and_the_schedule(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    words = text_of(page.text)
    assert f"Text {CHALLENGER} Since" in words and "crowned in week-2" in words
    assert "Margin: mean relative lead +50.00% over 3 boss tasks" in words  # the paired rule's reason
    assert "No image champion crowned yet." in words
    assert 'href="/competitors/challenger"' in page.text
    running = re.search(r'<div id="running"[^>]*>', page.text)
    assert running and 'data-live-state="running"' in running.group(0)
    assert "week-3 (text)" in words and "1 of 4 runs finished, round 1 (knockout)" in words
    # The scheduled pools (text, image) hold no task: nothing is due ("due now" was shown for pools that did not exist).
    for kind in ("text", "image"):
        assert f"No {kind} tournament is scheduled yet: the schedule draws them from the pool {kind} , which holds no task yet" in words
        assert f"trainarena task add NAME --file TASK_FILE --pool {kind} adds one)" in words
    assert "due now" not in words and "Kind Pool Due" not in words
    for name in ("week-1", "week-2", "week-3"):
        assert re.search(rf'<a href="/tournaments/\d+">{name}</a>', page.text)


def test_tournament_page_draws_the_bracket_byes_and_the_boss_round(client: TestClient, dashboard_store: DashboardStore) -> None:
    page = client.get(f"/tournaments/{dashboard_store.boss_id}")
    assert page.status_code == 200 and page.headers["X-Live"] == "idle"
    words = text_of(page.text)
    assert "Champion: challenger (crowned)" in words
    assert "Round 1: knockout" in words and "Bye · advance without playing" in words
    counts = re.findall(r"· (\d+) (tasks?), (?:top \d+ advance|against the champion)", words)
    assert counts and all((n == "1") == (noun == "task") for n, noun in counts)  # a count and its noun agree
    knockout = page.text.split('id="round-0"')[1].split('id="round-1"')[0]
    assert re.search(r'<li class="advanced">\s*<span class="name"><a href="/competitors/(challenger|slowpoke)">', knockout)
    assert "advances" in knockout
    assert "Boss round: challenger against" in words and "Paired rule: mean relative lead +50.00% over 3 boss tasks" in words
    assert "instruct-boss-0 0.5000 1.0000 +0.5000 +50.00% ahead yes" in words
    chart = re.search(r"<figure class=\"chart\">(.*?)</figure>", page.text, flags=re.S)
    assert chart and chart.group(1).lstrip().startswith("<svg") and "<script" not in chart.group(1)
    assert "relative lead" in chart.group(1)  # the paired rule's chart
    assert "Standings and weights" in words and re.search(r"1 challenger boss r3 \d+/\d+ 0\.\d{4}", words)
    assert "Scores per task" in words and "Round 3 (boss), boss: task instruct-boss-1" in words


def test_tournament_page_lists_failures_with_their_reasons(client: TestClient, dashboard_store: DashboardStore) -> None:
    words = text_of(client.get(f"/tournaments/{dashboard_store.finished_id}").text)
    failures = words.split("Failures")[-1]
    assert "crasher on" in failures and "exited with code 1. ZeroDivisionError: division by zero" in failures
    assert "slowpoke on" in failures and "timed out" in failures and "still running at the budget of 1 s" in failures
    assert "hostile on" in failures and "model.bin is a pickle file" in failures
    assert f"Champion: {LONG_NAME} (crowned)" in words


def test_tournament_bracket_says_which_way_its_scores_are_better(client: TestClient, dashboard_store: DashboardStore) -> None:
    """Its bracket showed bare scores (0.8000 advances): whether 0.8 beats 1.0 was left to guess (its score tables say it)."""
    words = text_of(client.get(f"/tournaments/{dashboard_store.boss_id}").text)
    assert "Bracket Scores: lower is better." in words


def test_the_live_fragment_follows_the_running_tournament(client: TestClient, dashboard_store: DashboardStore) -> None:
    page = client.get(f"/tournaments/{dashboard_store.running_id}")
    live = re.search(r'<div id="live"[^>]*>', page.text)
    assert live and 'data-live-state="running"' in live.group(0) and f'data-live="/tournaments/{dashboard_store.running_id}/live"' in live.group(0)
    before = client.get(f"/tournaments/{dashboard_store.running_id}/live")
    assert before.headers["X-Live"] == "running" and "<html" not in before.text
    assert "1 of 4 runs finished" in text_of(before.text)
    with open_store(Settings()) as store:
        dashboard_store.drive_running(store)
    after = client.get(f"/tournaments/{dashboard_store.running_id}/live")
    assert "2 of 4 runs finished" in text_of(after.text)
    assert client.get("/live/running").headers["X-Live"] == "running"
    assert client.get(f"/tournaments/{dashboard_store.boss_id}/live").headers["X-Live"] == "idle"


def test_a_tournament_only_created_is_listed_apart_from_those_running(client: TestClient) -> None:
    """It was listed under "Running now" as "0 of 0 runs finished, not started" while nothing ran (QA 14)."""
    from trainarena.store import create_tournament

    with open_store(Settings()) as store, store.transaction() as session:
        create_tournament(session, name="week-5", kind="text", seed=5, entrants=["crasher", "slowpoke"])
    for path in ("/", "/live/running"):
        words = text_of(client.get(path).text)
        running, _, waiting = words.partition("Created, not started (nothing plays until it is started):")
        assert "week-3 (text)" in running and "week-5" not in running, path
        assert "week-5 (text) created, not started Defending:" in waiting and "week-3" not in waiting.split(" entrants")[0], path



def test_competitor_page_says_where_it_stands_in_each_tournament(client: TestClient) -> None:
    """It listed each tournament by name and status only: a competitor had to open each to find its place."""
    words = text_of(client.get(f"/competitors/{LONG_NAME}").text)
    assert "week-1 (text, finished) — champion: ranked 1, reached knockout r1, 1/1 runs ok, weight 0.5000" in words
    assert "week-2 (text, finished): ranked 2, reached boss r3, 3/3 runs ok, weight 0.4000" in words
    assert "week-3 (text, running): unranked, reached knockout r1, 0/1 runs ok, weight –" in words
    crasher = text_of(client.get("/competitors/crasher").text)
    assert "week-2 (text, finished): unranked, reached knockout r2, 0/1 runs ok, weight 0.0000" in crasher
    assert "week-3 (text, running): not played yet" in text_of(client.get(f"/competitors/{CHALLENGER}").text)

def test_competitor_page_says_when_it_was_retired(client: TestClient) -> None:
    assert "Retired" not in text_of(client.get("/competitors/crasher").text)
    with open_store(Settings()) as store, store.transaction() as session:
        retired_at = retire_competitor(session, name="crasher", owner=None, by_key_id=None)[0].retired_at
    words = text_of(client.get("/competitors/crasher").text)
    assert f"Retired {when(retired_at)}: no tournament created since enters it" in words
    assert "week-2 (text, finished): unranked" in words  # its records stay


def test_competitor_page_links_the_commit_and_charts_scores_against_the_champion(client: TestClient) -> None:
    page = client.get(f"/competitors/{CHALLENGER}")
    assert page.status_code == 200
    assert '<a href="https://github.com/example/challenger.git" rel="noopener noreferrer">' in page.text
    assert f'href="https://github.com/example/challenger/commit/{"c" * 40}"' in page.text
    words = text_of(page.text)
    assert "week-2 (text, finished) — champion" in words and "week-3 (text, running)" in words
    chart = re.search(r"<figure class=\"chart\">(.*?)</figure>", page.text, flags=re.S)
    assert chart and "Scores of challenger against the champion" in chart.group(1) and ">champion<" in chart.group(1)
    assert [(p.task, p.score, p.champion, p.champion_score) for p in history(CHALLENGER) if p.champion_score is not None] == [
        (f"instruct-boss-{i}", score / 2, LONG_NAME, score) for i, score in enumerate((1.0, 1.0, 1.3))
    ]  # the champion of week-2 is the challenger itself: it is measured against the defender it beat
    assert re.search(r"run \d+ week-2 3 \(boss\) instruct-boss-0 succeeded 0\.5000", words)
    assert '<th scope="col" title="lower is better">Score↓</th>' in page.text  # every run a loss: the heading says it
    other = client.get(f"/competitors/{LONG_NAME}").text
    assert f'<a href="{LONG_URL}"' in other and "/commit/" not in other  # a host without known commit pages


def test_run_page_shows_reason_timings_log_tail_files_and_the_whole_log(client: TestClient) -> None:
    crashed = run_of("crasher", "week-1")
    page = client.get(f"/runs/{crashed}")
    words = text_of(page.text)
    assert "failed" in words and "exited with code 1." in words and "Wall time 12.5 s" in words
    assert "house script not run on this seed" in words
    tail = re.search(r'<pre class="log"[^>]*>(.*?)</pre>', page.text, flags=re.S)
    assert tail and unescape(tail.group(1)).splitlines()[-1] == CRASH_TAIL.splitlines()[-1]
    assert len(unescape(tail.group(1)).splitlines()) == Settings().dashboard.log_tail_lines
    assert f'href="/runs/{crashed}/logs/stderr.log"' in page.text and f'href="/runs/{crashed}/logs/stdout.log"' in page.text
    whole = client.get(f"/runs/{crashed}/logs/stderr.log")
    assert whole.headers["content-type"].startswith("text/plain")
    assert whole.text.startswith("stderr line 1\n") and whole.text.rstrip().endswith(CRASH_TAIL.splitlines()[-1])
    for name in ("..%2F..%2Fdata.db", "result.json", "missing.log"):
        assert client.get(f"/runs/{crashed}/logs/{name}").status_code == 404


def test_run_page_shows_the_servers_paths_to_a_signed_in_operator_only(client: TestClient) -> None:
    crashed = run_of("crasher", "week-1")
    with open_store(Settings()) as store, store.session() as session:
        log_path = session.get_one(Run, crashed).log_path
    for visitor in (None, customer_with_a_job("alice")):
        if visitor:
            sign_in(client, visitor)
        page = client.get(f"/runs/{crashed}").text
        assert "Last lines of stderr:" in text_of(page) and log_path not in page
    with open_store(Settings()) as store, store.transaction() as session:
        operator = create_key(session, "ops", ApiRole.OPERATOR).secret
    sign_in(client, operator)
    assert f"Last lines of stderr (from {Path(log_path) / 'stderr.log'}):" in text_of(client.get(f"/runs/{crashed}").text)


def test_a_run_page_hashes_no_more_artifact_bytes_than_its_budget(tmp_path: Path) -> None:
    """The budget was per file: an artifact of 100 files just under it (a run page lists 100) made every
    anonymous view of the page hash 6.4 GB; it now bounds the bytes one view hashes."""
    for index in range(5):
        (tmp_path / f"shard-{index}.safetensors").write_bytes(bytes([index]) * 40)
    lines, count = artifact_files(str(tmp_path), limit=100, hash_max_bytes=100)
    assert count == 5 and [line.sha256 is not None for line in lines] == [True, True, False, False, False]
    assert lines[1].sha256 == hashlib.sha256(bytes([1]) * 40).hexdigest()


def test_artifact_listings_keep_the_latest_by_digest_and_folder_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded: the least recently listed is dropped first; a digest with no file listed (its folder
    gone) is not kept, so a folder put back is listed; a folder changed since its listing is listed again."""
    hashed: list[str] = []
    monkeypatch.setattr(run_files, "_sha256", lambda path: hashed.append(path.parent.name) or "0" * 64)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.bin").write_bytes(b"w")
    listings = run_files.ArtifactListings(size=1)
    for digest, folder in (("1", "a"), ("1", "b"), ("2", "b"), ("1", "a"), ("3", "gone"), ("3", "a")):
        listings.listing(digest, str(tmp_path / folder), limit=10, hash_max_bytes=10)
    assert hashed == ["a", "b", "b", "a", "a"]  # another folder under one digest is listed as it is; size 1 drops the rest
    listings.listing("3", str(tmp_path / "a"), limit=10, hash_max_bytes=10)
    assert len(hashed) == 5  # kept
    (tmp_path / "a" / "model.bin").write_bytes(b"x")  # changed after the run stored its digest
    listings.listing("3", str(tmp_path / "a"), limit=10, hash_max_bytes=10)
    assert hashed == ["a", "b", "b", "a", "a", "a"]


def test_run_page_lists_the_artifact_files_with_their_digests(client: TestClient) -> None:
    scored = run_of(LONG_NAME, "week-1", status="succeeded")
    with open_store(Settings()) as store, store.session() as session:
        artifact = Path(session.get_one(Run, scored).artifact_path)
    (artifact / "model.safetensors").write_bytes(b"weights")
    words = text_of(client.get(f"/runs/{scored}").text)
    assert f"model.safetensors 7 {hashlib.sha256(b'weights').hexdigest()}" in words
    assert "Digest (sha256 over the folder): " + "ab" * 32 in words
    assert "score 1." in words and "(lower is better)" in words


def test_a_second_view_of_a_run_page_hashes_nothing_and_a_new_digest_is_listed_afresh(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every view of a run's page hashed its artifact's files (up to the per-view budget): a listing is
    kept by the artifact's digest, so a second view hashes nothing; an artifact stored with another
    digest is never shown with the old listing."""
    scored = run_of(LONG_NAME, "week-1", status="succeeded")
    with open_store(Settings()) as store, store.session() as session:
        artifact = Path(session.get_one(Run, scored).artifact_path)
    (artifact / "model.safetensors").write_bytes(b"weights")
    hashed: list[Path] = []
    hash_file = run_files._sha256
    monkeypatch.setattr(run_files, "_sha256", lambda path: hashed.append(path) or hash_file(path))
    for _view in range(2):
        assert f"model.safetensors 7 {hashlib.sha256(b'weights').hexdigest()}" in text_of(client.get(f"/runs/{scored}").text)
    assert hashed == [artifact / "model.safetensors"]
    (artifact / "model.safetensors").write_bytes(b"new weights")
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(Run, scored).counted_attempt.artifact_digest = "cd" * 32
    assert f"model.safetensors 11 {hashlib.sha256(b'new weights').hexdigest()}" in text_of(client.get(f"/runs/{scored}").text)
    assert len(hashed) == 2


def test_tasks_page_lists_every_played_task_with_a_link_to_its_page(client: TestClient) -> None:
    """/tasks redirected to /tasks/, a 404 (no task is named ''): it lists the tasks, as the nav links it."""
    with open_store(Settings()) as store, store.session() as session:
        names = sorted({run.task for run in list_runs(session)})
    for path in ("/tasks", "/tasks/"):
        page = client.get(path, follow_redirects=False)
        assert page.status_code == 200 and re.findall(r'<li><a href="/tasks/([^"]+)">', page.text) == names
    assert '<a href="/tasks">Tasks</a>' in client.get("/").text
    assert client.get("/tasks/" + names[0]).status_code == 200


def test_task_page_shows_its_definition_and_leaderboard(client: TestClient) -> None:
    page = client.get("/tasks/instruct-boss-0")
    words = text_of(page.text)
    assert "Type instruct Base model tiny" in words and "lower is better" in words
    assert re.search(r"1 challenger tournament 0\.5000 1/1 run \d+ 2 honest-baseline\S* tournament 1\.0000", words)
    assert "Best score per entrant on instruct-boss-0" in page.text
    assert '<th scope="col" title="lower is better">Best score↓</th>' in page.text  # which way is better, in the heading


def test_task_page_of_a_stored_task_shows_its_digests_and_rows(client: TestClient) -> None:
    with open_store(Settings()) as store, store.transaction() as session:
        definition = session.scalar(select(TaskRow.definition).where(TaskRow.definition["name"].as_string() == "instruct-boss-1"))
        add_stored_task(session, name="instruct-boss-1", pool="weekly", kind="text", definition=definition,
                        base_model_digest="b" * 64, dataset_digest="d" * 64, hidden_digest="h" * 64, train_rows=360, hidden_rows=40)  # fmt: skip
    words = text_of(client.get("/tasks/instruct-boss-1").text)
    assert f"Pool weekly Dataset digest {'d' * 64} Base model digest {'b' * 64} Rows 360 to train on, 40 hidden" in words


def test_a_task_named_with_a_slash_has_a_page(client: TestClient) -> None:
    """Task names are free text (`task add --name`): the link the pages write (urlencode keeps '/') must
    reach the task's page."""
    name = "arith/v2 #1?"
    with open_store(Settings()) as store, store.transaction() as session:
        for row in session.scalars(select(TaskRow)):
            if row.definition["name"] == "instruct-boss-1":
                row.definition = row.definition | {"name": name}
        run = list_runs(session, task=name)[0].run_id
    link = re.search(r'href="(/tasks/arith[^"]*)"', client.get(f"/runs/{run}").text)
    assert link is not None and link.group(1) == "/tasks/arith/v2%20%231%3F"
    page = client.get(link.group(1))
    assert page.status_code == 200 and f"Best score per entrant on {name}" in unescape(page.text)


BIG = "99999999999999999999999"  # past 2**63: SQLite refused it with OverflowError, a plain-text 500


@pytest.mark.parametrize("path", ["/tournaments/999", "/competitors/nobody", "/runs/999", "/tasks/no-such-task", "/runs/999/logs/stderr.log",
                                  f"/runs/{BIG}", f"/tournaments/{BIG}", f"/tournaments/{BIG}/live", f"/runs/{BIG}/logs/stderr.log",
                                  "/runs/2147483648", "/tournaments/-1"])  # fmt: skip
def test_missing_things_answer_a_404_page(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404 and "<h1>Not found</h1>" in answer.text


def test_a_page_address_that_is_no_page_answers_the_404_page_and_the_api_stays_json(client: TestClient) -> None:
    for path in ("/tournaments/abc", "/runs/xyz"):  # an id that is no number: a validation error, as a page
        answer = client.get(path)
        assert answer.status_code == 404 and "<h1>Not found</h1>" in answer.text, path
    browsed = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert browsed.status_code == 404 and "There is no page at /no-such-page." in browsed.text
    assert client.get("/no-such-page").json()["error"]["code"] == "not_found"  # a client that asks for no HTML
    api = client.get("/v1/tournaments/abc", headers={"Accept": "text/html"})  # unauthenticated: the API's JSON 401
    assert api.status_code == 401 and api.json()["error"]["code"] == "unauthenticated"
    assert client.get("/v1/no-such-route", headers={"Accept": "text/html"}).json()["error"]["code"] == "not_found"


def test_pages_load_every_asset_from_the_service_itself(client: TestClient, dashboard_store: DashboardStore) -> None:
    paths = ["/", f"/tournaments/{dashboard_store.boss_id}", f"/competitors/{CHALLENGER}", f"/runs/{run_of('crasher', 'week-1')}",
             "/tasks/instruct-boss-0", "/signin", "/tournaments"]  # fmt: skip
    for path in paths:
        html = client.get(path).text
        assets = re.findall(r'<(?:script|img|link)[^>]*(?:src|href)="([^"]+)"', html)
        assert assets, path
        for asset in assets:
            assert asset.startswith("/static/"), f"{path} loads {asset} from elsewhere: the dashboard must work offline"
            assert client.get(asset).status_code == 200, asset
        assert "<script" not in html.split("</head>")[1], f"{path}: no inline script (charts are plain SVG)"
    assert all(path.startswith("/v1/") for path in client.get("/openapi.json").json()["paths"])


def test_a_group_stage_shows_each_groups_ranking_points_and_advancers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for rule, value in {"GROUP_STAGE_MIN_ENTRANTS": "4", "GROUP_SIZE_MIN": "3", "GROUP_SIZE_MAX": "4"}.items():
        monkeypatch.setenv(f"TRAINARENA_RULES__{rule}", value)  # four entrants play one group
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    built = build_finished_store(tmp_path / "data")
    settings = Settings()
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as client:
        page = client.get(f"/tournaments/{built.tournament_id}").text
    group = page.split('id="round-0"')[1].split('id="standings"')[0]  # the only round: one competitor scored
    words = text_of(group)
    assert "Round 1: group" in words
    ranking = re.findall(r'href="/competitors/([^"]+)"', group)
    assert ranking[0] == LONG_NAME and sorted(ranking) == sorted(COMPETITORS)
    assert re.search(rf"{LONG_NAME} 1\.\d{{4}} \d+ pts advances", words)
    assert len(re.findall(r"\d+ pts", words)) == len(COMPETITORS)


def test_home_lists_the_latest_tournaments_and_links_to_all_of_them(dashboard_store: DashboardStore) -> None:
    settings = Settings(dashboard=DashboardRules(recent_tournaments=2))
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as client:
        home, every = client.get("/").text, client.get("/tournaments").text
    listed = re.findall(r'<a href="/tournaments/\d+">(week-\d)</a>', home.split('id="recent"')[1])
    assert listed == ["week-3", "week-2"] and '<a href="/tournaments">All 3 tournaments</a>' in home
    assert re.findall(r'<a href="/tournaments/\d+">(week-\d)</a>', every) == ["week-3", "week-2", "week-1"]


def test_home_shows_when_each_kind_is_next_due(dashboard_store: DashboardStore) -> None:
    with open_store(Settings()) as store, store.transaction() as session:
        for kind in ("text", "image"):
            add_undrawn_stored_task(session, name=f"{kind}-task", pool=kind, kind=kind)
    rules = Settings().schedule  # no tournament was drawn from the scheduled pools: both kinds are due
    with open_store(Settings()) as store, TestClient(create_app(Settings(), store=store)) as client:
        words = text_of(client.get("/").text)
    now = datetime.now(UTC)
    assert f"text text due now (since {when(latest_due('text', rules, now))})" in words
    assert f"image image due now (since {when(latest_due('image', rules, now))})" in words
    anchor = datetime(2100, 1, 4, tzinfo=UTC)  # the schedule's grid starts later: nothing is due yet
    settings = Settings(schedule=ScheduleRules(anchor=anchor, image_enabled=False))
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as client:
        words = text_of(client.get("/").text)
    assert f"Kind Pool Due text text {when(anchor)}" in words and "image image" not in words and "due now" not in words
    assert "No image tournament" not in words  # a kind the schedule leaves out is not said to lack a pool


def test_head_is_answered_as_get_without_the_body(client: TestClient, dashboard_store: DashboardStore) -> None:
    """Monitors, `curl -I` and link checkers ask with HEAD; it was 405 on every page and on /v1/health."""
    for path in ("/", f"/tournaments/{dashboard_store.boss_id}", f"/tournaments/{dashboard_store.boss_id}/live",
                 "/v1/health", "/static/dashboard.css", f"/runs/{BIG}"):  # fmt: skip
        got, head = client.get(path), client.head(path)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-type"] == got.headers["content-type"], path
    assert client.head("/v1/tournaments").status_code == 401  # the API's routes answer HEAD as GET, key and all
