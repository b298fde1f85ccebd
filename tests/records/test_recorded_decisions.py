"""A published weight vector is logged as a signed ``weights`` statement that names the decisions of
the tournaments it came from; the hardware attestation slot says plainly that no report exists."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_store import COMPETITORS, ScriptedExecutor, fake_task
from sqlalchemy import select

from trainarena.orchestrator import create_tournament, drive
from trainarena.records.hardware import NoHardwareAttestation, hardware_provider
from trainarena.records.recorder import Recorder, publish_recorded
from trainarena.records.signing import open_envelope
from trainarena.records.statements import PAYLOAD_TYPE, Kind, kind_of, payload_digest
from trainarena.settings import Settings
from trainarena.store import add_competitor, open_store
from trainarena.store.log_tables import LogEntry


def _played(settings: Settings) -> Recorder:
    recorder = Recorder(settings)
    with open_store(settings) as store:
        with store.transaction() as session:
            for i, name in enumerate(COMPETITORS):
                add_competitor(session, name=name, repo_url=f"https://github.com/x/{i}", commit=f"{i}" * 40,
                               tree_hash=f"t{i}", source_digest=f"s{i}", entrypoint="train.py")
            tournament_id = create_tournament(session, name="week-1", kind="text", seed=1, entrants=list(COMPETITORS)).id
        drive(store, tournament_id, task_source=fake_task, executor=ScriptedExecutor(), rules=settings.rules,
              weight_rules=settings.weights, work_dir=settings.work_dir, recorder=recorder)
    return recorder


def test_a_new_weight_vector_is_logged_once_with_its_tournament_decision(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    recorder = _played(settings)
    with open_store(settings) as store:
        with store.transaction() as session:
            vector, new = publish_recorded(session, settings, datetime.now(UTC))
        with store.transaction() as session:
            _again, new_again = publish_recorded(session, settings, datetime.now(UTC))
        with store.session() as session:
            weights = session.scalars(select(LogEntry).where(LogEntry.kind == Kind.WEIGHTS.value)).all()
            decision = session.scalar(select(LogEntry).where(LogEntry.key == "tournament:1:decision"))
            assert decision is not None
            assert (new, new_again) == (True, False)
            assert [entry.key for entry in weights] == [f"weights:{vector.id}"]
            stored = {e.competitor.name: e.weight for e in session.get_one(type(vector), vector.id).entries}
            statement = open_envelope(weights[0].envelope, recorder.key.public, PAYLOAD_TYPE)
            decided = open_envelope(decision.envelope, recorder.key.public, PAYLOAD_TYPE)
    assert kind_of(statement) is Kind.WEIGHTS
    predicate = statement["predicate"]
    assert predicate["decisions"] == {"text": {"log_index": decision.index, "payload_sha256": payload_digest(decided)}}
    assert {w["competitor"]: w["weight"] for w in predicate["weights"]} == stored
    assert set(stored) == set(decided["predicate"]["weights"])


def test_publishing_with_records_off_logs_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    _played(settings)
    off = settings.model_copy(update={"records": settings.records.model_copy(update={"enabled": False})})
    with open_store(off) as store:
        with store.transaction() as session:
            _vector, new = publish_recorded(session, off, datetime.now(UTC))
        with store.session() as session:
            assert new
            assert session.scalars(select(LogEntry).where(LogEntry.kind == Kind.WEIGHTS.value)).all() == []


def test_the_default_hardware_provider_reports_that_no_attestation_was_available() -> None:
    report = hardware_provider("none").report((0,), nonce="ab" * 32)
    assert report == {"provider": "none", "available": False, "reason": NoHardwareAttestation().report((), "")["reason"]}
    assert "no hardware attestation provider is configured" in report["reason"]
    with pytest.raises(ValueError, match="unknown hardware attestation provider 'sgx'; known: none"):
        hardware_provider("sgx")
