"""A started tournament the operator cancels ends with a signed ``cancellation`` statement: its bundle
verifies, and ``verify`` says it was cancelled, when and why, instead of failing on a missing decision;
a bundle whose end statement was dropped or changed, or that holds a result recorded after the
cancellation, still fails."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from records_store import RecordedStore, build_pool_store, read_lines, write_lines
from test_verify import failures
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.operations.cancelling import cancel_tournament
from trainarena.records.log import Subjects, append
from trainarena.records.recorder import operator_key
from trainarena.records.signing import envelope_payload
from trainarena.records.statements import Kind
from trainarena.records.verify import verify_directory
from trainarena.store import open_store

REASON = "drawn from the wrong pool"


def _cancelled(data_dir: Path, max_steps: int) -> RecordedStore:
    recorded = build_pool_store(data_dir, max_steps=max_steps)
    with open_store(recorded.settings) as store:
        cancel_tournament(store, recorded.settings, recorded.tournament_id, REASON)
    return recorded


@pytest.fixture
def cancelled(tmp_path: Path) -> RecordedStore:
    """Round 0 played and logged, round 1 half played (one run stored), then cancelled."""
    return _cancelled(tmp_path / "data", max_steps=7)


@pytest.fixture
def bundle(cancelled: RecordedStore, tmp_path: Path) -> Path:
    return cancelled.export(tmp_path / "bundle")


def _kinds(bundle: Path) -> list[str]:
    return [entry["kind"] for entry in read_lines(bundle / "entries.jsonl")]


def test_a_cancelled_tournaments_bundle_verifies_and_says_it_was_cancelled(bundle: Path) -> None:
    kinds = _kinds(bundle)
    assert kinds[0] == "commitment" and kinds[-1] == "cancellation" and kinds.count("round") == 1
    assert "decision" not in kinds and "reveal" not in kinds  # the seeds stay secret: the tasks stay usable
    report = verify_directory(bundle)
    assert report.ok, failures(report)
    notes = {check.name: [note.message for note in check.notes] for check in report.checks}
    [said] = notes["bracket"]
    assert said.startswith("the tournament was cancelled at 20") and said.endswith(f": {REASON}; no champion was decided")
    assert notes["reveal"] == ["cancelled: nothing was decided on the committed tasks, so their split seeds stay "
                               "secret (not revealed)"]
    assert notes["weights"] == ["cancelled: no weights were given"]
    checked = {check.name: check.checked for check in report.checks}
    assert checked["bracket"] > kinds.count("run") + kinds.count("evaluation")  # round 0 replayed, nothing after the end


def test_verify_prints_the_cancellation_and_its_reason(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    verified = CliRunner().invoke(app, ["verify", str(bundle)])
    assert verified.exit_code == 0, verified.output
    [line] = [line for line in verified.output.splitlines() if "was cancelled at" in line]
    assert line.strip().startswith("note: entry ") and "(cancellation of tournament 1)" in line and REASON in line


def test_a_round_complete_but_not_logged_is_logged_by_the_cancellation(tmp_path: Path) -> None:
    # Cancelled between a round's last run and the step that logs the round: the cancellation logs it first.
    recorded = _cancelled(tmp_path / "data", max_steps=5)
    bundle = recorded.export(tmp_path / "bundle")
    assert _kinds(bundle)[-2:] == ["round", "cancellation"]
    assert verify_directory(bundle).ok


def test_a_bundle_without_its_cancellation_fails(bundle: Path) -> None:
    entries = read_lines(bundle / "entries.jsonl")
    write_lines(bundle / "entries.jsonl", [e for e in entries if e["kind"] != "cancellation"])
    report = verify_directory(bundle)
    assert ("decision: the bundle has no decision statement nor a cancellation: the tournament's end is not "
            "recorded") in failures(report, "bracket")
    assert failures(report, "reveal") == ["reveal: the bundle has no reveal: the committed split seeds were never opened"]


def test_a_cancellation_changed_after_signing_fails(bundle: Path) -> None:
    entries = read_lines(bundle / "entries.jsonl")
    end = entries[-1]
    statement = envelope_payload(end["envelope"])
    statement["predicate"]["reason"] = "the champion asked for it"
    end["envelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    write_lines(bundle / "entries.jsonl", entries)
    report = verify_directory(bundle)
    label = f"entry {end['index']} (cancellation of tournament 1)"
    assert any(f.startswith(label) and "changed after signing" in f for f in failures(report, "signatures")), failures(report)


def test_a_run_recorded_after_the_cancellation_fails(cancelled: RecordedStore, bundle: Path, tmp_path: Path) -> None:
    # What a driver that stored a run despite the cancellation would have logged.
    statement = envelope_payload(read_lines(bundle / "entries.jsonl")[1]["envelope"])
    assert statement["predicate"]["run"]["attempt"] == 1
    statement["predicate"]["run"]["attempt"] = 2
    run_id = statement["predicate"]["run"]["id"]
    with open_store(cancelled.settings) as store, store.transaction() as session:
        append(session, operator_key(cancelled.settings), f"run:{run_id}:attempt:2", Kind.RUN, statement,
               Subjects(tournament_id=cancelled.tournament_id, run_id=run_id))
    report = verify_directory(cancelled.export(tmp_path / "after"))
    late = f"(run {run_id}, attempt 2, by "
    assert any(late in f and "logged after the tournament was cancelled (entry " in f for f in failures(report, "bracket")), \
        failures(report)


def test_a_database_that_no_longer_says_cancelled_fails(cancelled: RecordedStore, bundle: Path, tmp_path: Path) -> None:
    cancelled.query("UPDATE tournament SET status = 'running' WHERE id = ?", cancelled.tournament_id)
    report = verify_directory(cancelled.export(tmp_path / "after"))
    label = f"entry {_kinds(bundle).index('cancellation')} (cancellation of tournament 1)"
    assert failures(report, "claims") == [f"{label}: signed, but the database does not say the tournament was cancelled"]


def test_a_decided_tournament_the_database_says_was_cancelled_fails(tmp_path: Path) -> None:
    # The mirror of the test above: the signed end is a decision, the database was changed to say cancelled.
    decided = build_pool_store(tmp_path / "data")
    decided.query("UPDATE tournament SET status = 'cancelled', outcome_reason = 'cancelled: never played' WHERE id = ?",
                  decided.tournament_id)
    bundle = decided.export(tmp_path / "bundle")
    label = f"entry {_kinds(bundle).index('decision')} (decision of tournament 1)"
    assert failures(verify_directory(bundle), "claims") == [
        f"{label}: signed, but the database says the tournament was cancelled: a tournament ends once"]


def test_audit_names_a_run_the_cancellation_left_unplayed_cancelled_as_every_listing_does(
        cancelled: RecordedStore, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    [(run_id,)] = cancelled.query("SELECT id FROM run WHERE status = 'pending' ORDER BY id LIMIT 1")
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(cancelled.data_dir))
    monkeypatch.setenv("TRAINARENA_DATABASE_URL", cancelled.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    audited = CliRunner().invoke(app, ["audit", str(run_id)])
    listed = CliRunner().invoke(app, ["runs", "show", str(run_id), "--json"])
    assert json.loads(listed.output)["status"] == "cancelled", listed.output
    assert audited.exit_code == 2 and f"run {run_id} has no counted attempt (status cancelled)" in audited.output, audited.output
