"""`trainarena serve` with a fake executor: `--once` creates, finishes and publishes; a refusal is
logged and tried again after schedule.retry_after_fault; a serve killed mid-tournament and started again runs every
run once per attempt and crowns one champion; SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import typer
from operator_data import FakeExecutor, OperatorData, add_tasks, register_example
from sqlalchemy import select

from trainarena.cli.serve import serve_with
from trainarena.operations.serving import ServeEvent, Serving
from trainarena.operations.tournaments import create_pool_tournament
from trainarena.settings import ScheduleRules, Settings
from trainarena.store import Run, Tournament, champion_history, open_store, tournament_runs
from trainarena.store.api_keys import create_key
from trainarena.store.leases import DriverIdentity, try_acquire
from trainarena.store.models import ApiRole
from trainarena.store.weight_vectors import latest_vector

SCHEDULE = {"text_pool": "weekly", "image_enabled": False}



def _serve_once(settings: Settings, events: list[ServeEvent]) -> int:
    with open_store(settings) as store:
        return Serving(store, settings, FakeExecutor(), events.append, threading.Event()).run(once=True)


def _serve_until(settings: Settings, last: str, on_event: Callable[[ServeEvent], None] | None = None) -> list[ServeEvent]:
    """The events of a serve (in a thread, a minute at most) stopped once it logs a ``last`` event;
    ``on_event`` sees each as it is logged."""
    events: list[ServeEvent] = []
    stop = threading.Event()

    def log(event: ServeEvent) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)
        if event.event == last:
            stop.set()

    with open_store(settings) as store:
        thread = threading.Thread(target=Serving(store, settings, FakeExecutor(), log, stop).run)
        thread.start()
        thread.join(60)
        stop.set()
        thread.join(10)
    return events


@pytest.fixture
def scheduled(operator_data: OperatorData) -> OperatorData:
    for name in ("baseline", "instruct_only", "torchloop"):
        register_example(operator_data.settings, name)
    settings = operator_data.settings.model_copy(update={"schedule": ScheduleRules(**SCHEDULE)})
    return OperatorData(operator_data.model, operator_data.jsonl, operator_data.csv, operator_data.saved, settings)


def test_once_creates_finishes_and_publishes_then_nothing_is_due(scheduled: OperatorData) -> None:
    add_tasks(scheduled, "t1", "t2")
    events: list[ServeEvent] = []
    assert _serve_once(scheduled.settings, events) == 1
    kinds = [event.event for event in events]
    assert kinds[0] == "started" and kinds[-1] == "stopped"
    assert kinds.count("created") == 1 and kinds.count("finished") == 1 and kinds.count("published") == 1
    assert kinds.index("created") < kinds.index("finished") < kinds.index("published")
    finished = next(event for event in events if event.event == "finished")
    with open_store(scheduled.settings) as store, store.session() as session:
        assert [entry.competitor.name for entry in champion_history(session, "text")] == [finished.fields["champion"]]
        vector = latest_vector(session)
        assert vector is not None and vector.text_tournament_id == finished.fields["tournament_id"]

    # Run again in the same due period: nothing is created, the weights are not published twice.
    again: list[ServeEvent] = []
    assert _serve_once(scheduled.settings, again) == 0
    assert [event.event for event in again] == ["started", "stopped"]


def test_a_refused_creation_is_tried_again_after_retry_after_fault_not_at_the_next_due_time(scheduled: OperatorData) -> None:
    """A pool too short was tried again only at the next due time, 14 days later by default, though the
    operator tops it up within minutes: it is tried again after schedule.retry_after_fault."""
    add_tasks(scheduled, "t1")  # 3 entrants need 2 tasks
    settings = scheduled.settings.model_copy(update={"schedule": ScheduleRules(**SCHEDULE, retry_after_fault=timedelta(seconds=0.3))})

    def top_up(event: ServeEvent) -> None:
        if event.event == "refused":
            add_tasks(scheduled, "t2")  # the operator tops the pool up

    events = _serve_until(settings, "created", top_up)
    refused = [event for event in events if event.event == "refused"]
    assert len(refused) == 1 and "pool 'weekly' has 1 usable task" in refused[0].message
    retry_at = datetime.fromisoformat(refused[0].fields["retry_at"])
    assert timedelta(0) < retry_at - refused[0].at <= timedelta(seconds=0.3)
    assert refused[0].message.endswith(f"tried again at {retry_at.isoformat(timespec='seconds')} (schedule.retry_after_fault)")
    assert [event.event for event in events].count("created") == 1


def test_a_refusal_is_logged_once_per_once_pass_even_where_due_times_pass_meanwhile(scheduled: OperatorData) -> None:
    """With schedule.text_every PT0.001S, `serve --once` logged the same refusal four times in one pass: the
    next due time had come by the time the pass asked again (QA of the CLI, finding 11). Intervals are at
    least a minute now; a pass that outlasts one (a clock running 61 s a reading after the refusal, here)
    still logs it once."""
    add_tasks(scheduled, "t1")  # refused: 3 entrants need 2 tasks
    settings = scheduled.settings.model_copy(update={"schedule": ScheduleRules(**SCHEDULE, text_every=timedelta(minutes=1))})
    now = [datetime.now(UTC)]
    running = [0]  # readings left that move the clock on

    def clock() -> datetime:
        if running[0]:
            running[0] -= 1
            now[0] += timedelta(seconds=61)
        return now[0]

    events: list[ServeEvent] = []

    def log(event: ServeEvent) -> None:
        events.append(event)
        if event.event == "refused" and [e.event for e in events].count("refused") == 1:  # the first one
            running[0] = 10

    with open_store(settings) as store:
        Serving(store, settings, FakeExecutor(), log, threading.Event(), clock=clock).run(once=True)
    assert [event.event for event in events].count("refused") == 1, [event.message for event in events]


def _executions(path: Path) -> list[tuple[str, int, int, int]]:
    if not path.exists():
        return []
    return [(what, int(run), int(attempt), int(pid)) for what, run, attempt, pid in
            (line.split() for line in path.read_text().splitlines())]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_STARTED: list[subprocess.Popen[str]] = []  # every serve process a test started, ended at its teardown


@pytest.fixture(autouse=True)
def _no_serve_left_behind() -> Iterator[None]:
    """A test that fails between starting a serve process and ending it left the process running (one
    was found alive 90 minutes after its test failed, training on a loaded machine): end it here."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
        if process.stdout is not None and not process.stdout.closed:
            process.communicate()


def _start_serve(tmp_path: Path, executions: Path, port: int | None = None, seconds: float = 0.5) -> subprocess.Popen[str]:
    environment = {**os.environ, "TRAINARENA_DATA_DIR": str(tmp_path / "data"), "TRAINARENA_SCHEDULE__TEXT_POOL": "weekly",
                   "TRAINARENA_SCHEDULE__IMAGE_ENABLED": "false", "TRAINARENA_SCHEDULE__TEXT_EVERY": "3600",
                   "TRAINARENA_API__PORT": str(port or _free_port()),  # serve serves the API beside its schedule
                   "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    process = subprocess.Popen([sys.executable, str(Path(__file__).parent / "serve_process.py"), str(executions),
                                "--seconds", str(seconds)],
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _STARTED.append(process)
    return process


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_serve_killed_mid_tournament_resumes_runs_each_attempt_once_and_stops_on_sigterm(
    scheduled: OperatorData, tmp_path: Path
) -> None:
    add_tasks(scheduled, "t1", "t2")
    executions = tmp_path / "executions.log"
    first = _start_serve(tmp_path, executions)
    # Kill it while a run is in flight, after at least one run finished.
    _wait_for(lambda: any(e[0] == "end" for e in _executions(executions)) and _executions(executions)[-1][0] == "start",
              "a finished run and one in flight")
    first.kill()
    first.communicate()
    in_flight = _executions(executions)[-1]

    second = _start_serve(tmp_path, executions)
    with open_store(scheduled.settings) as store:
        _wait_for(lambda: latest_vector_id(store) is not None, "the weights to be published")
    second.send_signal(signal.SIGTERM)
    stdout, stderr = second.communicate(timeout=30)
    assert second.returncode == 0, stderr
    log = [json.loads(line) for line in stdout.splitlines()]
    assert log[-1]["event"] == "stopped" and "on request" in log[-1]["message"]
    assert any(entry["event"] == "stopping" and "SIGTERM" in entry["message"] for entry in log)
    assert [entry["event"] for entry in log].count("created") == 0  # resumed, not created again
    [resumed] = [entry for entry in log if entry["event"] == "resumed"]  # and said so, with the run cut short
    assert resumed["runs_interrupted"] == 1 and "1 of them cut short and run again" in resumed["message"]

    runs = _executions(executions)
    starts = [(run, attempt) for what, run, attempt, _ in runs if what == "start"]
    ends = [run for what, run, _, _ in runs if what == "end"]
    assert len(starts) == len(set(starts))  # every attempt executed once
    assert sorted(ends) == sorted(set(ends))  # every run finished once
    assert (in_flight[1], in_flight[2] + 1) in starts  # the run cut short ran again as a new attempt
    with open_store(scheduled.settings) as store, store.session() as session:
        assert len(champion_history(session, "text")) == 1
        vector = latest_vector(session)
        stored = tournament_runs(session, vector.text_tournament_id)
        assert sorted(ends) == sorted(run.id for run in stored)


def test_a_second_stop_signal_leaves_the_run_in_flight_withdrawn_not_interrupted(scheduled: OperatorData, tmp_path: Path) -> None:
    """Stopped by a second signal amid a run, serve exits at once (130), leaving the note of that run's
    withdrawal: its next start withdraws the attempt (no try counted) and plays the run again."""
    add_tasks(scheduled, "t1", "t2")
    executions = tmp_path / "executions.log"
    first = _start_serve(tmp_path, executions, seconds=600)  # its first run trains until it is stopped
    _wait_for(lambda: bool(_executions(executions)), "a run in flight")
    _, run_id, attempt, _ = _executions(executions)[0]
    first.send_signal(signal.SIGTERM)
    assert first.stdout is not None
    while '"stopping"' not in (line := first.stdout.readline()):  # it waits for the run under way
        assert line, "serve ended before it said it was stopping"
    first.send_signal(signal.SIGTERM)  # leaves at once
    stdout, stderr = first.communicate(timeout=30)
    assert first.returncode == 130 and "runs in flight are withdrawn (no try counted)" in stdout, stderr
    [note] = scheduled.settings.work_dir.glob("tournament-*/withdrawal-*.json")

    second = _start_serve(tmp_path, executions)
    with open_store(scheduled.settings) as store:
        _wait_for(lambda: latest_vector_id(store) is not None, "the weights to be published")
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=30)
        with store.session() as session:
            run = session.get_one(Run, run_id)
            assert [(a.number, a.status) for a in run.attempt_records] == [(attempt, "withdrawn"), (attempt + 1, "succeeded")]
            assert run.attempt_records[0].failure_reason == (
                f"withdrawn: its driver ({socket.gethostname()} pid {first.pid}) was stopped by a second stop signal (SIGTERM)")
    assert not note.exists()


def latest_vector_id(store) -> int | None:
    with store.session() as session:
        vector = latest_vector(session)
        return None if vector is None else vector.id


def test_a_tournament_driven_elsewhere_is_waited_for_not_played_nor_created_again(scheduled: OperatorData) -> None:
    add_tasks(scheduled, "t1", "t2")
    events: list[ServeEvent] = []
    executor = FakeExecutor()
    with open_store(scheduled.settings) as store:
        with store.transaction() as session:  # `tournament create`, and another live driver (pid 1) drives it
            created = create_pool_tournament(session, scheduled.settings, kind="text", pool="weekly")
            assert try_acquire(session, created.id, DriverIdentity("other", socket.gethostname(), 1), scheduled.settings.lease) is None
        serving = Serving(store, scheduled.settings, executor, events.append, threading.Event())
        assert serving.run(once=True) == 0
    assert [event.event for event in events] == ["started", "waiting", "stopped"]
    assert "pid 1" in events[1].message and not executor.requests
    assert serving.held_back["text"] > events[1].at


class BrokenExecutor(FakeExecutor):
    def execute(self, request):
        raise RuntimeError("the sandbox backend is gone")


def test_faults_are_logged_the_other_kind_goes_on_and_a_cut_run_is_a_new_attempt(scheduled: OperatorData) -> None:
    add_tasks(scheduled, "t1", "t2")
    settings = scheduled.settings.model_copy(update={"schedule": ScheduleRules(text_pool="weekly")})  # image too
    events: list[ServeEvent] = []
    with open_store(settings) as store:
        assert Serving(store, settings, BrokenExecutor(), events.append, threading.Event()).run(once=True) == 0
        refused = next(event for event in events if event.event == "refused")
        assert refused.fields["kind"] == "image" and "no task pool named 'image'" in refused.message
        fault = next(event for event in events if event.event == "fault")
        assert "RuntimeError: the sandbox backend is gone" in fault.message
        assert [event.event for event in events].count("created") == 1  # text went on despite image

        # The next start drives it on: the run the fault cut short is played again as attempt 2.
        assert _serve_once(settings, []) == 1
        with store.session() as session:
            runs = tournament_runs(session, fault.fields["tournament_id"])
            assert sorted(run.attempts for run in runs)[-1] == 2 and all(run.status == "succeeded" for run in runs)


def test_a_store_failing_for_a_moment_is_logged_and_serve_goes_on(scheduled: OperatorData, monkeypatch) -> None:
    """The schedule read, a creation and publishing each fail once (the store locked past its timeout):
    each is logged as a fault, and the same serve then creates, finishes and publishes the tournament."""
    from sqlalchemy.exc import OperationalError

    from trainarena.operations import serving

    add_tasks(scheduled, "t1", "t2")
    settings = scheduled.settings.model_copy(update={"schedule": ScheduleRules(**SCHEDULE, retry_after_fault=timedelta(seconds=0.2))})

    def fails_once(real):
        calls = []

        def call(*args, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                raise OperationalError("SELECT ...", {}, Exception("database is locked"))
            return real(*args, **kwargs)

        return call

    for name in ("kind_facts", "create_pool_tournament", "publish_recorded"):
        monkeypatch.setattr(serving, name, fails_once(getattr(serving, name)))
    events = _serve_until(settings, "published")
    faults = [event.message for event in events if event.event == "fault"]
    assert any(m.startswith("reading the schedule failed: OperationalError") for m in faults)
    assert any(m.startswith("creating a text tournament failed: OperationalError") for m in faults)
    assert any(m.startswith("weights not published: OperationalError") for m in faults)
    kinds = [event.event for event in events]
    assert kinds.count("created") == 1 and kinds.count("finished") == 1 and "published" in kinds


def test_with_both_kinds_disabled_serve_says_so_and_waits_for_a_stop(scheduled: OperatorData) -> None:
    settings = scheduled.settings.model_copy(update={"schedule": ScheduleRules(text_enabled=False, image_enabled=False)})
    events: list[ServeEvent] = []
    stop = threading.Event()
    with open_store(settings) as store:
        thread = threading.Thread(target=Serving(store, settings, FakeExecutor(), events.append, stop).run)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive()
        stop.set()
        thread.join(10)
    assert [(e.event, e.message) for e in events][1] == ("sleeping", "nothing is scheduled (both kinds disabled); waiting for a stop")
    assert [e.event for e in events] == ["started", "sleeping", "stopped"]


def _in_flight(executions: Path) -> tuple[int, int] | None:
    runs = _executions(executions)
    return (runs[-1][1], runs[-1][2]) if runs and runs[-1][0] == "start" else None


def test_sigterm_mid_run_finishes_that_run_then_exits_and_a_second_one_leaves_at_once(
    scheduled: OperatorData, tmp_path: Path
) -> None:
    add_tasks(scheduled, "t1", "t2")
    executions = tmp_path / "executions.log"
    first = _start_serve(tmp_path, executions)
    _wait_for(lambda: _in_flight(executions) is not None, "a run in flight")
    run = _in_flight(executions)
    first.send_signal(signal.SIGTERM)
    stdout, stderr = first.communicate(timeout=30)
    assert first.returncode == 0, stderr
    assert [(what, r, a) for what, r, a, _ in _executions(executions)] == [("start", *run), ("end", *run)]
    assert json.loads(stdout.splitlines()[-1])["event"] == "stopped"

    second = _start_serve(tmp_path, executions)
    _wait_for(lambda: _in_flight(executions) is not None, "the next run in flight")
    cut = _in_flight(executions)
    second.send_signal(signal.SIGTERM)
    while json.loads(second.stdout.readline())["event"] != "stopping":  # the first signal was handled
        pass
    second.send_signal(signal.SIGTERM)
    stdout, _ = second.communicate(timeout=30)
    assert second.returncode == 130 and "stopping now" in stdout.splitlines()[-1]
    assert _in_flight(executions) == cut  # left unfinished: the next start plays it as a new attempt


def test_serve_answers_the_api_beside_its_schedule_and_stops_both_on_sigterm(scheduled: OperatorData, tmp_path: Path) -> None:
    add_tasks(scheduled, "t1", "t2")
    with open_store(scheduled.settings) as store, store.transaction() as session:
        key = create_key(session, "watcher", ApiRole.COMPETITOR).secret
    port = _free_port()
    serve = _start_serve(tmp_path, tmp_path / "executions.log", port)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/v1/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    _wait_for(answers, "the API to answer")
    headers = {"Authorization": f"Bearer {key}"}
    # The schedule runs beside it: the tournament it created is visible through the API while it plays.
    _wait_for(lambda: httpx.get(f"{base}/v1/tournaments", headers=headers).json()["data"], "the scheduled tournament")
    serve.send_signal(signal.SIGTERM)
    stdout, stderr = serve.communicate(timeout=30)
    assert serve.returncode == 0, stderr
    log = [json.loads(line) for line in stdout.splitlines()]
    assert log[-1]["event"] == "stopped" and any("SIGTERM" in e["message"] for e in log if e["event"] == "stopping")
    assert not answers()


def test_a_port_in_use_stops_serve_before_its_schedule_creates_or_plays_anything(
        scheduled: OperatorData, capsys: pytest.CaptureFixture[str]) -> None:
    """The API was bound after its services started: the schedule created a tournament and played a
    run, then serve logged "stopped on request" though nobody had asked."""
    add_tasks(scheduled, "t1", "t2")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(typer.Exit) as ended:
            serve_with(scheduled.settings, FakeExecutor(), once=False, parallel=1, json_output=True, host="127.0.0.1", port=port)
    said = capsys.readouterr()
    assert ended.value.exit_code == 1 and said.out == ""  # the schedule logged nothing: it never started
    assert said.err.startswith(f"error: the API cannot listen on 127.0.0.1 port {port}: Address already in use; nothing was started")
    with open_store(scheduled.settings) as store, store.session() as session:
        assert session.scalars(select(Tournament)).all() == []
