"""`tournament cancel` of a started tournament that no live driver holds (killed outright, its lease
expired, or stopped with its withdrawal not stored: a note in its work folder): nothing drives a
cancelled tournament again, so the cancel withdraws its attempts left running itself (no try of the
competitor's), honours and removes the notes, and clears the attempts' outputs and the early runs'
folders; its runs then read cancelled (and `--status cancelled` selects them) in `runs list`, `runs
show` (text and --json), the API and the dashboard, never running. A cancel while a live driver holds the lease leaves its attempts to it; a
cancel again, once that driver died without withdrawing them, withdraws them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner, Result

# The CLI tests' store of a killed driver (tests/cli/driverless_store.py) and their readers of its output.
sys.path[:0] = [str(Path(__file__).parents[1] / "cli")]

from box_table import read_table  # noqa: E402
from driverless_store import DRIVERLESS, DriverlessStore, build_driverless_store, hand_lease_to  # noqa: E402
from field_lines import read_fields  # noqa: E402

from trainarena.api import create_app  # noqa: E402
from trainarena.cli import app  # noqa: E402
from trainarena.runs import attempt_dir, tournament_dir  # noqa: E402
from trainarena.settings import LeaseRules, Settings  # noqa: E402
from trainarena.stopped_attempts import NOTE_PREFIX, leave_note  # noqa: E402
from trainarena.store import AttemptStatus, Run, Store, Tournament, TournamentLease, open_store  # noqa: E402
from trainarena.store.api_keys import create_key  # noqa: E402
from trainarena.store.leases import DriverIdentity, lease_holder, renew  # noqa: E402
from trainarena.store.models import ApiRole  # noqa: E402

LIST_HEADERS = ["run", "tournament", "round", "task", "competitor", "result↓", "reason"]
REASON = "cancelled: wrong entrants (after it started: its records stay)"


@pytest.fixture
def driverless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DriverlessStore:
    """Week-2, its run ``run_id`` left running by a driver killed outright, that run's attempt folder
    with logs and a half-written output, and an early run's folder, as a killed drive leaves them."""
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    left = build_driverless_store(tmp_path / "data")
    folder = attempt_dir(Settings().work_dir, left.tournament_id, left.run_id, 1)
    for name in ("logs/stderr.log", "output/half.safetensors"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")
    early = tournament_dir(Settings().work_dir, left.tournament_id) / "early" / "d1e" / "run--1" / "attempt-1"
    early.mkdir(parents=True)
    (early / "stdout.log").write_text("x")
    return left


def _invoke(*args: str, width: int = 200) -> Result:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result


def _said(*args: str) -> str:
    """What the command printed, its lines joined (wide: no line cut)."""
    return " ".join(_invoke(*args, width=400).output.split())


def _attempt(store: Store, run_id: int) -> tuple[str, str, int, str | None]:
    """(the run's status, its attempt's status, its tries, the attempt's reason)."""
    with store.session() as session:
        run = session.get_one(Run, run_id)
        [attempt] = run.attempt_records
        return run.status, attempt.status, run.tries, attempt.failure_reason


def _expire_lease(store: Store, tournament_id: int) -> None:
    """The lease of a live driver on another host, expired: that driver stalled or died."""
    hand_lease_to(store, tournament_id, "elsewhere", 4242)
    with store.transaction() as session:
        session.execute(update(TournamentLease).where(TournamentLease.tournament_id == tournament_id)
                        .values(expires_at=datetime.now(UTC) - timedelta(minutes=5)))  # fmt: skip


@pytest.mark.parametrize("lease", ["killed-here", "expired-elsewhere"])
def test_a_cancel_no_live_driver_holds_withdraws_its_running_attempts(driverless: DriverlessStore, lease: str) -> None:
    settings = Settings()
    with open_store(settings) as store:
        if lease == "expired-elsewhere":
            _expire_lease(store, driverless.tournament_id)
        with store.session() as session:
            killed = session.get_one(Run, driverless.run_id).attempt_records[0]
            driver = f"{killed.driver_host} pid {killed.driver_pid}"

        cancelled = _said("tournament", "cancel", str(driverless.tournament_id), "--reason", "wrong entrants")
        assert cancelled == (f"cancelled {DRIVERLESS} (id {driverless.tournament_id}): its records stay whole: its tasks "
                             "stay drawn and its entrants entered; withdrew 1 attempt that its driver, no longer "
                             "alive, had left running (no try counted); removed 1 early run's folder left in its "
                             "work folder")  # fmt: skip
        assert _attempt(store, driverless.run_id) == (
            "pending", AttemptStatus.WITHDRAWN, 0, f"withdrawn: its tournament was cancelled; its driver ({driver}) had stopped")
        with store.session() as session:
            assert lease_holder(session, driverless.tournament_id) is None  # the cancel's, released with it
        with store.transaction() as session:  # its driver, had it only stalled, finds its lease lost when it wakes
            assert not renew(session, driverless.tournament_id, DriverIdentity("killed-driver", "-", 0), LeaseRules())
    folder = attempt_dir(settings.work_dir, driverless.tournament_id, driverless.run_id, 1)
    assert not (folder / "output").exists() and (folder / "logs" / "stderr.log").is_file()  # its logs stay
    assert not (tournament_dir(settings.work_dir, driverless.tournament_id) / "early").exists()
    _assert_reads_cancelled(driverless, "withdrawn")


def _assert_reads_cancelled(driverless: DriverlessStore, attempt: str) -> None:
    """The run left unfinished reads cancelled, with the tournament's outcome its reason, in the CLI (text
    and --json), the API and the dashboard, its attempt ``attempt``; the run its driver finished reads as
    it ended."""
    reason = f"its tournament was {REASON}"
    listed = {run["run_id"]: run for run in json.loads(_invoke("runs", "list", "--json").output)}
    assert [listed[driverless.run_id][key] for key in ("status", "reason", "driver")] == ["cancelled", reason, None]
    assert listed[driverless.done_id]["status"] not in ("cancelled", "running")
    rows = {int(row[0]): row for row in read_table(_invoke("runs", "list").output, 200, LIST_HEADERS)}
    result, cell = rows[driverless.run_id][5:]
    assert result == "cancelled" and cell.startswith("its tournament was cancelled: wrong entrants")  # cut to fit
    for status in ("running", "pending"):  # it is neither
        assert driverless.run_id not in {run["run_id"] for run in json.loads(_invoke("runs", "list", "--status", status, "--json").output)}
    assert [run["run_id"] for run in json.loads(_invoke("runs", "list", "--status", "cancelled", "--json").output)] == [driverless.run_id]
    assert json.loads(_invoke("runs", "list", "--status", "cancelled", "--tournament", "ad hoc", "--json").output) == []
    text = _invoke("runs", "show", str(driverless.run_id), width=80).output
    fields, _ = read_fields(text, 80)
    assert fields["status"] == "cancelled" and "driver" not in fields
    shown = json.loads(_invoke("runs", "show", str(driverless.run_id), "--json").output)
    assert [shown[key] for key in ("status", "reason", "summary", "driver")] == ["cancelled", reason, reason, None]
    assert [line["status"] for line in shown["attempt_history"]] == [attempt]
    (only_try,) = shown["attempt_history"]
    if not only_try["counts"] and only_try["reason"]:  # its one try, not counted: the text says why (it did not)
        assert "attempts" in [line.strip() for line in text.splitlines()]
        assert " ".join(only_try["reason"].split())[:40] in " ".join(text.split())
    board = json.loads(_invoke("tournament", "show", str(driverless.tournament_id), "--json").output)
    assert {line["run_id"]: line["status"] for line in board["runs"]}[driverless.run_id] == "cancelled"
    bracket = _invoke("tournament", "show", str(driverless.tournament_id)).output
    assert f"run {driverless.run_id}" in bracket and "running" not in bracket

    settings = Settings()
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as client:
        with store.transaction() as session:
            headers = {"Authorization": f"Bearer {create_key(session, 'reader', ApiRole.COMPETITOR).secret}"}
        runs = {run["run_id"]: run for run in client.get("/v1/runs?limit=100", headers=headers).json()["data"]}
        cancelled = client.get("/v1/runs?status=cancelled", headers=headers).json()["data"]
        assert [(run["run_id"], run["status"]) for run in cancelled] == [(driverless.run_id, "cancelled")]
        assert [runs[driverless.run_id][key] for key in ("status", "reason", "driver")] == ["cancelled", reason, None]
        api_run = client.get(f"/v1/runs/{driverless.run_id}", headers=headers).json()
        assert (api_run["status"], api_run["driver"], api_run["attempt_history"][0]["status"]) == ("cancelled", None, attempt)
        for page in (f"/runs/{driverless.run_id}", f"/tournaments/{driverless.tournament_id}"):
            html = client.get(page).text
            assert '<span class="status status-cancelled">cancelled</span>' in html and "status-running" not in html, page


def test_a_cancel_honours_the_note_of_a_withdrawal_its_stopped_driver_could_not_store(driverless: DriverlessStore) -> None:
    settings = Settings()
    folder = tournament_dir(settings.work_dir, driverless.tournament_id)
    with open_store(settings) as store:
        with store.session() as session:
            attempt = session.get_one(Run, driverless.run_id).attempt_records[0]
            stopped = DriverIdentity("stopped-driver", str(attempt.driver_host), int(attempt.driver_pid or 0))
        with store.transaction() as session:  # it released its lease, its withdrawal not stored
            session.query(TournamentLease).filter_by(tournament_id=driverless.tournament_id).delete()
        why = f"withdrawn: its driver ({stopped.host} pid {stopped.pid}) was stopped by SIGTERM"
        leave_note(folder, stopped, why)
        assert len(list(folder.glob(f"{NOTE_PREFIX}*.json"))) == 1

        done = json.loads(_invoke("tournament", "cancel", str(driverless.tournament_id), "--reason", "wrong entrants", "--json").output)
        assert [done[key] for key in ("withdrawn", "notes_removed", "early_runs_removed")] == [1, 1, 1]
        assert _attempt(store, driverless.run_id) == ("pending", AttemptStatus.WITHDRAWN, 0, why)
    assert list(folder.glob(f"{NOTE_PREFIX}*.json")) == []
    _assert_reads_cancelled(driverless, "withdrawn")


def test_a_cancel_leaves_a_live_drivers_attempts_to_it(driverless: DriverlessStore) -> None:
    settings = Settings()
    folder = attempt_dir(settings.work_dir, driverless.tournament_id, driverless.run_id, 1)
    with open_store(settings) as store:
        hand_lease_to(store, driverless.tournament_id, "elsewhere", 4242)  # a live driver on another host
        done = json.loads(_invoke("tournament", "cancel", str(driverless.tournament_id), "--reason", "wrong entrants",
                                  "--json").output)  # fmt: skip
        assert [done[key] for key in ("status", "reason", "withdrawn", "notes_removed", "early_runs_removed")] == ["cancelled", REASON, 0, 0, 0]
        assert _attempt(store, driverless.run_id) == ("running", AttemptStatus.RUNNING, 1, None)  # its driver's to withdraw
        with store.session() as session:
            holder = lease_holder(session, driverless.tournament_id)
            assert holder is not None and (holder.host, holder.pid) == ("elsewhere", 4242)
    assert (folder / "output" / "half.safetensors").is_file()  # its runs may still be writing there
    assert (tournament_dir(settings.work_dir, driverless.tournament_id) / "early").is_dir()
    _assert_reads_cancelled(driverless, "cancelled")  # its driver is killing it: it is no longer played



CancelAgain = Callable[[], tuple[int, str]]


@contextmanager
def _cancelling_again(store: Store, surface: str, tournament_id: int) -> Iterator[CancelAgain]:
    """What cancels the tournament again by ``surface`` (the CLI or the API, as an operator), answering
    (0 or the HTTP status, what it said: the CLI's text, its lines joined, or the API's JSON)."""
    with TestClient(create_app(Settings(), store=store)) as client:
        with store.transaction() as session:
            headers = {"Authorization": f"Bearer {create_key(session, 'op', ApiRole.OPERATOR).secret}"}

        def cancel_again() -> tuple[int, str]:
            if surface == "api":
                answer = client.post(f"/v1/tournaments/{tournament_id}/cancel", json={"reason": "again"}, headers=headers)
                return answer.status_code, answer.text
            result = CliRunner().invoke(app, ["tournament", "cancel", str(tournament_id), "--reason", "again"],
                                        env={"COLUMNS": "400"})  # fmt: skip
            return result.exit_code, " ".join(result.output.split())

        yield cancel_again


def _assert_settled_again(answer: tuple[int, str], surface: str, driverless: DriverlessStore, cancelled_at: datetime,
                          counts: dict[str, int], settled: str) -> None:
    """``answer`` (of :func:`_cancelling_again`) says the tournament was cancelled already, at
    ``cancelled_at`` (its reason the first cancel's), and what it settled: the API ``counts`` (withdrawn,
    notes_removed, early_runs_removed), the CLI ``settled``."""
    code, said = answer
    if surface == "api":
        assert code == 200 and json.loads(said) == {
            "id": driverless.tournament_id, "name": DRIVERLESS, "status": "cancelled", "reason": REASON, "released": False,
            "already_cancelled_at": f"{cancelled_at:%Y-%m-%dT%H:%M:%S.%f}Z", **counts}  # fmt: skip
    else:
        assert (code, said) == (0, f"{DRIVERLESS} (id {driverless.tournament_id}) was cancelled already, at "
                                   f"{cancelled_at:%Y-%m-%d %H:%M:%S} UTC ({REASON}); {settled}")  # fmt: skip


@pytest.mark.parametrize("surface", ["cli", "api"])
def test_a_cancel_again_withdraws_what_a_driver_dead_since_left_running(driverless: DriverlessStore, surface: str) -> None:
    """A live driver held the lease at the cancel, then was killed before it withdrew its attempts: a
    cancel again withdraws them (said cancelled already, and when), and only then."""
    settings = Settings()
    folder = attempt_dir(settings.work_dir, driverless.tournament_id, driverless.run_id, 1)
    alive = subprocess.Popen(["sleep", "60"])
    with open_store(settings) as store, _cancelling_again(store, surface, driverless.tournament_id) as cancel_again:
        try:
            hand_lease_to(store, driverless.tournament_id, socket.gethostname(), alive.pid)  # a live driver of this host
            assert json.loads(_invoke("tournament", "cancel", str(driverless.tournament_id), "--reason", "wrong entrants",
                                      "--json").output)["withdrawn"] == 0  # fmt: skip
            with store.session() as session:
                cancelled_at = session.get_one(Tournament, driverless.tournament_id).finished_at
            assert f"tournament {driverless.tournament_id}: driven by {socket.gethostname()} pid {alive.pid}, withdrawing its " \
                   "runs (cancelled)" in _said("status")
            code, said = cancel_again()  # its driver is alive: it withdraws them
            assert code in (1, 409) and "holds it and withdraws its runs; should that driver have died, cancel again" in said
            assert _attempt(store, driverless.run_id) == ("running", AttemptStatus.RUNNING, 1, None)
        finally:
            alive.kill()
            alive.wait()
        hint = f"`trainarena tournament cancel {driverless.tournament_id}` withdraws its runs left running"
        assert f"tournament {driverless.tournament_id}: stopped: no driver since" in _said("status") and hint in _said("status")
        assert "driver stopped: no driver since" in _said("tournament", "show", str(driverless.tournament_id))
        shown = json.loads(_invoke("tournament", "show", str(driverless.tournament_id), "--json").output)
        assert (shown["driver"]["alive"], shown["driver"]["pid"]) == (False, alive.pid)
        _assert_settled_again(cancel_again(), surface, driverless, cancelled_at,  # killed before it withdrew them
                              {"withdrawn": 1, "notes_removed": 0, "early_runs_removed": 1},
                              "withdrew 1 attempt that its driver, no longer alive, had left running (no try counted); "
                              "removed 1 early run's folder left in its work folder")  # fmt: skip
        status, attempt, tries, reason = _attempt(store, driverless.run_id)
        assert (status, attempt, tries) == ("pending", AttemptStatus.WITHDRAWN, 0)
        assert reason is not None and reason.startswith("withdrawn: its tournament was cancelled; its driver")
        with store.session() as session:
            tournament = session.get_one(Tournament, driverless.tournament_id)
            assert (tournament.outcome_reason, tournament.finished_at) == (REASON, cancelled_at)  # as the first cancel ended it
            assert lease_holder(session, driverless.tournament_id) is None
        assert not (folder / "output").exists() and not (tournament_dir(settings.work_dir, driverless.tournament_id) / "early").exists()
        assert hint not in _said("status")  # settled: nothing left to say
        code, said = cancel_again()  # nothing left
        assert code in (1, 409) and "is cancelled already (cancelled: wrong entrants" in said and "nothing is left to settle or clear" in said
    _assert_reads_cancelled(driverless, "withdrawn")


@pytest.mark.parametrize("surface", ["cli", "api"])
def test_a_cancel_again_removes_the_files_a_driver_left_with_no_attempt_to_withdraw(driverless: DriverlessStore,
                                                                                    surface: str) -> None:
    """A driver killed after its withdrawal was stored, before it cleared its work folder, leaves its
    withdrawal notes and early runs' folders and no attempt running: a cancel again removes them and
    says so; only with nothing left is it refused. While a live driver holds it, they are its own."""
    settings = Settings()
    folder = tournament_dir(settings.work_dir, driverless.tournament_id)
    left_by = DriverIdentity("killed-driver", "elsewhere", 4242)

    def leave_files() -> None:
        """Two notes (one cut short: it says nothing, and goes too) and two drives' early runs, three folders."""
        leave_note(folder, left_by, "withdrawn: its driver (elsewhere pid 4242) was stopped by SIGTERM")
        (folder / f"{NOTE_PREFIX}garbled.json").write_text("{")
        for run in ("d1e/q1-t0-crasher", "d1e/q1-t1-crasher", "f00/q1-t0-slowpoke"):
            (folder / "early" / run / "attempt-1").mkdir(parents=True)
            (folder / "early" / run / "attempt-1" / "stdout.log").write_text("x")

    with open_store(settings) as store, _cancelling_again(store, surface, driverless.tournament_id) as cancel_again:
        assert json.loads(_invoke("tournament", "cancel", str(driverless.tournament_id), "--reason", "wrong entrants",
                                  "--json").output)["withdrawn"] == 1  # fmt: skip
        with store.session() as session:
            cancelled_at = session.get_one(Tournament, driverless.tournament_id).finished_at
        leave_files()
        hand_lease_to(store, driverless.tournament_id, "elsewhere", 4242)  # a live driver: the files are its own
        code, said = cancel_again()
        assert code in (1, 409) and "holds it and withdraws its runs" in said
        assert len(list(folder.glob(f"{NOTE_PREFIX}*.json"))) == 2 and (folder / "early").is_dir()

        _expire_lease(store, driverless.tournament_id)  # that driver died
        _assert_settled_again(cancel_again(), surface, driverless, cancelled_at,
                              {"withdrawn": 0, "notes_removed": 2, "early_runs_removed": 3},
                              "removed 2 withdrawal notes and 3 early runs' folders left in its work folder")
        assert list(folder.glob(f"{NOTE_PREFIX}*.json")) == [] and not (folder / "early").exists()
        with store.session() as session:
            tournament = session.get_one(Tournament, driverless.tournament_id)
            assert (tournament.outcome_reason, tournament.finished_at) == (REASON, cancelled_at)
            assert lease_holder(session, driverless.tournament_id) is None
        code, said = cancel_again()  # nothing left
        assert code in (1, 409) and "nothing is left to settle or clear" in said
    _assert_reads_cancelled(driverless, "withdrawn")
