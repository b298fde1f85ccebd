"""serve does its schedule's other work while a drive's runs go on (``Serving.tend``, every
``schedule.tend_every``): a creation that falls due and a publishing retried after a fault are done
during a long run, not once it ended; a fault while tending is reported and the drive goes on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from operator_data import FakeExecutor, OperatorData, add_tasks, register_example

from trainarena.contract import TaskType
from trainarena.operations import serving as serving_module
from trainarena.operations.serving import ServeEvent, Serving
from trainarena.records.provenance import folder_digest
from trainarena.runs import RunReport, RunRequest, definition_json
from trainarena.settings import ScheduleRules, Settings
from trainarena.store import add_stored_task, open_store, tournament_runs
from trainarena.tasks.base import TaskDefinition
from trainarena.tasks.digests import path_digest

TEND = timedelta(seconds=0.2)
# How late tended work may be beyond the tend interval on a loaded test machine; the run it must not
# wait for lasts HOLD_SECONDS, so a drive that only yields once a run is done fails clearly.
SLACK_SECONDS = 3.0
HOLD_SECONDS = 60.0
TEXT_COMPETITORS = ("baseline", "instruct_only", "torchloop")
IMAGE_COMPETITORS = ("image_baseline", "image_defaults")


class HeldExecutor(FakeExecutor):
    """``FakeExecutor`` whose first run lasts until ``release`` is set (a run of a long budget)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = threading.Event()
        self.release = threading.Event()

    def execute(self, request: RunRequest) -> RunReport:
        if not self.in_flight.is_set():
            self.in_flight.set()
            self.release.wait(HOLD_SECONDS)
        return super().execute(request)

    def held(self) -> bool:
        return self.in_flight.is_set() and not self.release.is_set()


@dataclass
class Log:
    """serve's events, each with the monotonic time it was logged."""

    events: list[tuple[float, ServeEvent]] = field(default_factory=list)

    def __call__(self, event: ServeEvent) -> None:
        self.events.append((time.monotonic(), event))

    def named(self, name: str) -> list[tuple[float, ServeEvent]]:
        return [(at, event) for at, event in list(self.events) if event.event == name]

    def wait_for(self, name: str, what: Callable[[ServeEvent], bool] = lambda _e: True,
                 timeout: float = HOLD_SECONDS / 2) -> tuple[float, ServeEvent]:
        deadline = time.monotonic() + timeout
        while not (found := [(at, event) for at, event in self.named(name) if what(event)]):
            assert time.monotonic() < deadline, f"no {name!r} event in {timeout:g}s: {[e.event for _, e in self.events]}"
            time.sleep(0.02)
        return found[0]


@dataclass
class Clock:
    """The time serve sees: the real time, moved on by ``ahead`` (a due time falls due at once)."""

    ahead: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@contextmanager
def serving(settings: Settings, executor: HeldExecutor, log: Log, clock: Clock | None = None) -> Iterator[Serving]:
    """serve on a thread until the block ends (the held run released, then a stop)."""
    stop = threading.Event()
    with open_store(settings) as store:
        served = Serving(store, settings, executor, log, stop, clock=clock or Clock())
        thread = threading.Thread(target=served.run, name="test-serve")
        thread.start()
        try:
            yield served
        finally:
            executor.release.set()
            stop.set()
            thread.join(HOLD_SECONDS)
    assert not thread.is_alive()


def _schedule(settings: Settings, **rules: object) -> Settings:
    return settings.model_copy(update={"schedule": ScheduleRules(text_pool="weekly", image_pool="pictures",
                                                                 tend_every=TEND, **rules)})


def _add_image_tasks(data: OperatorData, count: int) -> None:
    """Image tasks in pool ``pictures``, stored as checked (the fake executor never reads them)."""
    with open_store(data.settings) as store, store.transaction() as session:
        for index in range(count):
            definition = TaskDefinition(f"img{index}", TaskType.IMAGE, str(data.model), {"source": str(data.jsonl)}, 5.0,
                                        split_key=f"img{index}:0123abcd")
            add_stored_task(session, name=definition.name, pool="pictures", kind="image",
                            definition=definition_json(definition), base_model_digest=folder_digest(data.model),
                            dataset_digest=path_digest(data.jsonl), hidden_digest="1" * 64, train_rows=30, hidden_rows=10)


@pytest.fixture
def two_kinds(operator_data: OperatorData) -> OperatorData:
    """Three text competitors and pool ``weekly`` (2 tasks), two image ones and pool ``pictures``."""
    for name in TEXT_COMPETITORS + IMAGE_COMPETITORS:
        register_example(operator_data.settings, name)
    add_tasks(operator_data, "t1", "t2")
    _add_image_tasks(operator_data, 2)
    return operator_data


def test_a_creation_falling_due_during_a_long_run_is_done_within_the_tend_interval(two_kinds: OperatorData) -> None:
    # Text is due at once; image an hour after the anchor, which serve's clock reaches mid-run.
    settings = _schedule(two_kinds.settings, anchor=datetime.now(UTC) - timedelta(minutes=1), text_every=timedelta(days=1),
                         image_every=timedelta(days=1), image_offset=timedelta(hours=1))
    executor, log, clock = HeldExecutor(), Log(), Clock()
    with serving(settings, executor, log, clock):
        assert executor.in_flight.wait(HOLD_SECONDS / 2), "the text tournament's first run never started"
        created = log.named("created")
        assert [event.fields["kind"] for _at, event in created] == ["text"]  # image is not due yet
        clock.ahead = timedelta(hours=2)
        due = time.monotonic()
        at, image = log.wait_for("created", lambda event: event.fields["kind"] == "image")
        assert executor.held() and not log.named("run_finished")  # created while the run goes on
        assert at - due <= TEND.total_seconds() + SLACK_SECONDS
        assert sorted(image.fields["entrants"]) == sorted(IMAGE_COMPETITORS)
        executor.release.set()
        _at, finished = log.wait_for("finished")
    text_id = created[0][1].fields["id"]
    assert finished.fields["tournament_id"] == text_id
    assert not log.named("fault")
    with open_store(settings) as store, store.session() as session:
        runs = tournament_runs(session, text_id)
        assert all(run.attempts == 1 and run.status == "succeeded" for run in runs)  # one drive, never cut short


def test_publishing_failed_at_start_is_retried_on_time_during_a_long_run(two_kinds: OperatorData,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    text_only = _schedule(two_kinds.settings, image_enabled=False)
    with open_store(text_only) as store:  # a finished text tournament whose weights are published
        assert Serving(store, text_only, FakeExecutor(), Log(), threading.Event()).run(once=True) == 1

    real = serving_module.publish_recorded
    calls: list[bool] = []

    def fails_first(*args, **kwargs):
        calls.append(True)
        if len(calls) == 1:
            raise OSError("the weights table is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(serving_module, "publish_recorded", fails_first)
    # The image tournament due now is created and driven; publishing at start fails, and is due again
    # half a second later, while its first run goes on.
    settings = _schedule(two_kinds.settings, retry_after_fault=timedelta(seconds=0.5))
    executor, log = HeldExecutor(), Log()
    with serving(settings, executor, log):
        fault_at, fault = log.wait_for("fault")
        assert "weights not published: OSError: the weights table is locked" in fault.message
        assert executor.in_flight.wait(HOLD_SECONDS / 2), "the image tournament's first run never started"
        at, published = log.wait_for("published")
        assert executor.held() and not log.named("run_finished")
        assert at - fault_at <= 0.5 + TEND.total_seconds() + SLACK_SECONDS
    assert published.fields["new"] is False and len(calls) >= 2  # the same tournaments: the vector stands


def test_a_fault_while_tending_is_reported_and_the_drive_goes_on(two_kinds: OperatorData,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _schedule(two_kinds.settings, image_enabled=False)
    executor, log = HeldExecutor(), Log()
    real = serving_module.kind_facts

    def locked_mid_run(*args, **kwargs):
        if executor.held():
            raise OSError("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(serving_module, "kind_facts", locked_mid_run)
    with serving(settings, executor, log):
        _at, fault = log.wait_for("fault")
        assert executor.held()
        assert fault.message.startswith("reading the schedule during a drive failed: OSError: database is locked")
        executor.release.set()
        _at, finished = log.wait_for("finished")
    faults = [event.message for _at, event in log.named("fault")]
    assert all(message.startswith("reading the schedule during a drive failed") for message in faults)
    with open_store(settings) as store, store.session() as session:
        runs = tournament_runs(session, finished.fields["tournament_id"])
        assert all(run.attempts == 1 and run.status == "succeeded" for run in runs)  # the drive went on
