"""Export and verify: an untampered bundle checks out; every tampering of the issue (a score changed in
the database, an artifact file swapped, a log entry dropped, entries reordered, records re-signed with
another key) is caught, and the failure names the record and what changed."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from records_store import RecordedStore, read_lines, resign_bundle, write_lines

from trainarena.records.bundle import BundleError
from trainarena.records.log import TREE_HEAD_TYPE, append
from trainarena.records.signing import OperatorKey, envelope_payload, init_key, load_key, sign_payload
from trainarena.records.statements import Kind, make_statement, subject
from trainarena.records.verify import Report, verify_directory
from trainarena.store import open_store


def failures(report: Report, check: str | None = None) -> list[str]:
    return [f"{f.record}: {f.message}" for c in report.checks if check in (None, c.name) for f in c.failures]


def entry_index(bundle: Path, key: str) -> int:
    return next(e["index"] for e in read_lines(bundle / "entries.jsonl") if e["key"] == key)


def scored_run(recorded: RecordedStore) -> tuple[int, float]:
    """The first run with a score: its id and score."""
    [(run_id, score)] = recorded.query(
        "SELECT a.run_id, e.score FROM evaluation e JOIN run_attempt a ON a.id = e.attempt_id ORDER BY a.run_id LIMIT 1")
    return run_id, score


def test_an_untampered_bundle_verifies_with_every_check_counted(recorded: RecordedStore, clean_bundle: Path) -> None:
    report = verify_directory(clean_bundle, trusted_key=None)
    assert report.ok, failures(report)
    checked = {c.name: c.checked for c in report.checks}
    entries = read_lines(clean_bundle / "entries.jsonl")
    assert checked["inclusion"] == checked["signatures"] == len(entries) > 10
    assert checked["consistency"] == len(read_lines(clean_bundle / "tree_heads.jsonl")) - 1 > 0
    assert checked["bracket"] > 1 and checked["weights"] == 6 and checked["claims"] > len(entries) // 2
    kinds = {e["kind"] for e in entries}
    assert kinds == {"commitment", "run", "evaluation", "round", "decision", "reveal"}
    assert recorded.finished.champion in json.loads((clean_bundle / "claims.json").read_text())["weights"]
    assert len(list((clean_bundle / "per_example").glob("*.json"))) > 5  # the boss round's bootstrap data included
    assert report.key_source == "the bundle's public_key.pem" and report.to_json()["key"]["trusted"] is False


def test_the_operators_public_key_given_with_key_verifies(recorded: RecordedStore, clean_bundle: Path, tmp_path: Path) -> None:
    trusted = tmp_path / "operator.pem"
    trusted.write_text((clean_bundle / "public_key.pem").read_text())
    report = verify_directory(clean_bundle, trusted_key=trusted)
    assert report.ok, failures(report)
    assert report.key_source == f"--key {trusted}"


def test_export_refuses_a_folder_that_is_not_empty(recorded: RecordedStore, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not an empty folder"):
        recorded.export(tmp_path / "full")
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"


def test_export_refuses_a_tournament_without_records(recorded: RecordedStore, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no tournament has the name or id '99': neither the database nor the transparency log knows it"):
        replace(recorded, tournament_id=99).export(tmp_path / "none")


# --- The database changed after the fact ------------------------------------------------------------


def test_a_score_changed_in_the_database_is_caught(store_copy: RecordedStore, tmp_path: Path) -> None:
    run_id, score = scored_run(store_copy)
    store_copy.query("UPDATE evaluation SET score = ? WHERE attempt_id = (SELECT id FROM run_attempt WHERE run_id = ?)",
                     score - 0.25, run_id)
    report = verify_directory(store_copy.export(tmp_path / "bundle"))
    assert not report.ok
    [claim] = failures(report, "claims")
    assert f"(evaluation of run {run_id}, attempt 1)" in claim
    assert f"the database says {score - 0.25}, the signed evaluation {score}" in claim
    assert failures(report, "inclusion") == failures(report, "signatures") == []  # the log itself is intact


def test_a_lead_unit_set_in_the_database_is_caught(store_copy: RecordedStore, tmp_path: Path) -> None:
    # A task's lead unit changes how a boss lead is measured: one slipped in after the fact is a changed claim.
    run_id, _score = scored_run(store_copy)
    store_copy.query("UPDATE evaluation SET lead_unit = 0.001 WHERE attempt_id = (SELECT id FROM run_attempt WHERE run_id = ?)",
                     run_id)
    [claim] = failures(verify_directory(store_copy.export(tmp_path / "bundle")), "claims")
    assert f"(evaluation of run {run_id}, attempt 1)" in claim and "lead_unit: the database says 0.001, the signed evaluation None" in claim


def test_a_registration_and_a_run_status_changed_in_the_database_are_caught(store_copy: RecordedStore, tmp_path: Path) -> None:
    [(name,)] = store_copy.query("SELECT c.name FROM competitor c JOIN tournament_entrant e ON e.competitor_id = c.id "
                                 "ORDER BY e.position LIMIT 1")
    store_copy.query("UPDATE competitor SET commit_sha = ?, hotkey = ? WHERE name = ?", "f" * 40, "5Forged", name)
    run_id, _score = scored_run(store_copy)
    store_copy.query("UPDATE run SET status = 'failed' WHERE id = ?", run_id)
    report = verify_directory(store_copy.export(tmp_path / "bundle"))
    claims = failures(report, "claims")
    assert any(f"{name}'s commit: the database says {'f' * 40!r}" in f for f in claims), claims
    assert any(f"{name}'s hotkey: the database says '5Forged'" in f for f in claims), claims
    assert any(f"(run {run_id}, attempt 1, by " in f and "run status: the database says 'failed'" in f for f in claims), claims


def test_a_log_entry_deleted_from_the_database_is_caught(store_copy: RecordedStore, tmp_path: Path) -> None:
    run_id, _ = scored_run(store_copy)
    key = f"evaluation:{run_id}:attempt:1"
    [(index,)] = store_copy.query("SELECT \"index\" FROM log_entry WHERE key = ?", key)
    store_copy.query("DELETE FROM log_entry WHERE key = ?", key)
    report = verify_directory(store_copy.export(tmp_path / "bundle"))
    assert not report.ok
    references = failures(report, "references")
    assert any(f"names the evaluation statement at entry {index}, which is not in the bundle" in f for f in references), references
    assert any(f"(run {run_id}, attempt 1" in f and "the bundle has no signed evaluation of it" in f for f in failures(report, "claims"))
    assert failures(report, "inclusion")  # the leaves no longer lead to the signed roots


def test_two_log_entries_with_swapped_indices_in_the_database_are_caught(store_copy: RecordedStore, tmp_path: Path) -> None:
    run_id, _ = scored_run(store_copy)
    [(run_index,)] = store_copy.query("SELECT \"index\" FROM log_entry WHERE key = ?", f"run:{run_id}:attempt:1")
    [(evaluation_index,)] = store_copy.query("SELECT \"index\" FROM log_entry WHERE key = ?", f"evaluation:{run_id}:attempt:1")
    for old, new in ((run_index, -1), (evaluation_index, run_index), (-1, evaluation_index)):
        store_copy.query("UPDATE log_entry SET \"index\" = ? WHERE \"index\" = ?", new, old)
    report = verify_directory(store_copy.export(tmp_path / "bundle"))
    inclusion = failures(report, "inclusion")
    assert any(f.startswith(f"entry {run_index} (evaluation of run {run_id}, attempt 1)") for f in inclusion), inclusion
    assert any(f.startswith(f"entry {evaluation_index} (run {run_id}, attempt 1") for f in inclusion), inclusion
    assert any(f"names the run statement at entry {run_index}, which is entry {run_index} (evaluation" in f
               for f in failures(report, "references"))


# --- The bundle changed -------------------------------------------------------------------------------


def test_a_line_dropped_from_entries_jsonl_is_caught(bundle: Path) -> None:
    lines = read_lines(bundle / "entries.jsonl")
    crashed = next(e for e in lines if e["kind"] == "run" and "evaluation:" + e["key"].removeprefix("run:")
                   not in {x["key"] for x in lines})
    write_lines(bundle / "entries.jsonl", [e for e in lines if e is not crashed])
    report = verify_directory(bundle)
    run_id = crashed["key"].split(":")[1]
    assert any(f"run {run_id}, attempt 1 has no run statement in the bundle" in f for f in failures(report, "references"))
    assert any(f"claims.json run {run_id}, attempt 1: the database has this run" in f for f in failures(report, "claims"))
    assert any("bundle.json: lists entries" in f for f in failures(report, "statements"))


def test_the_decision_dropped_from_the_bundle_is_caught(bundle: Path) -> None:
    write_lines(bundle / "entries.jsonl", [e for e in read_lines(bundle / "entries.jsonl") if e["kind"] != "decision"])
    report = verify_directory(bundle)
    assert ("decision: the bundle has no decision statement nor a cancellation: the tournament's end is not recorded"
            in failures(report, "bracket"))


def test_two_entries_with_swapped_indices_in_the_bundle_are_caught(bundle: Path) -> None:
    lines = read_lines(bundle / "entries.jsonl")
    first, second = lines[1], lines[2]
    first["index"], second["index"] = second["index"], first["index"]
    lines[1], lines[2] = second, first
    write_lines(bundle / "entries.jsonl", lines)
    inclusion = failures(verify_directory(bundle), "inclusion")
    assert any(f.startswith(f"entry {first['index']} (") and "not in the log the latest head signs" in f for f in inclusion)
    assert any(f.startswith(f"entry {second['index']} (") for f in inclusion)


def test_entries_reordered_in_the_bundle_are_caught(bundle: Path) -> None:
    lines = read_lines(bundle / "entries.jsonl")
    write_lines(bundle / "entries.jsonl", [lines[0], lines[3], lines[1], lines[2], *lines[4:]])
    statements = failures(verify_directory(bundle), "statements")
    assert any("out of log order in entries.jsonl: index 1 after index 3" in f for f in statements), statements


def test_a_score_edited_in_a_signed_statement_breaks_its_signature(bundle: Path) -> None:
    lines = read_lines(bundle / "entries.jsonl")
    evaluation = next(e for e in lines if e["kind"] == "evaluation")
    statement = json.loads(base64.b64decode(evaluation["envelope"]["payload"]))
    statement["predicate"]["score"] = 0.001
    evaluation["envelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    write_lines(bundle / "entries.jsonl", lines)
    report = verify_directory(bundle)
    assert any(f.startswith(f"entry {evaluation['index']} (evaluation of run") and "does not match the content: it was changed after signing" in f
               for f in failures(report, "signatures"))
    assert failures(report, "inclusion")


def test_records_resigned_with_another_key_are_caught(bundle: Path, tmp_path: Path) -> None:
    forger = init_key(tmp_path / "forger.pem")
    operator_keyid = json.loads((bundle / "bundle.json").read_text())["log_id"]
    resign_bundle(bundle, forger)
    report = verify_directory(bundle)
    signatures = failures(report, "signatures")
    assert len(signatures) == len(read_lines(bundle / "entries.jsonl"))
    assert f"not signed by key {operator_keyid[:16]} (signed by {forger.keyid[:16]})" in signatures[0]
    assert any(f"the records are signed with {forger.keyid[:16]}, not with the key {operator_keyid[:16]}" in f
               for f in failures(report, "key"))


def test_a_bundle_resigned_and_its_public_key_replaced_is_caught_with_the_trusted_key(bundle: Path, tmp_path: Path) -> None:
    trusted = tmp_path / "operator.pem"
    shutil.copy(bundle / "public_key.pem", trusted)
    forger = init_key(tmp_path / "forger.pem")
    resign_bundle(bundle, forger)
    (bundle / "public_key.pem").write_text(forger.public_pem())
    assert verify_directory(bundle).ok  # self-consistent: the bundle's own key is no trust anchor
    report = verify_directory(bundle, trusted_key=trusted)
    assert not report.ok
    key_failure, log_id = failures(report, "key")
    assert f"the bundle's public key is {forger.keyid[:16]}, not the trusted key" in key_failure
    assert f"its records are signed with {forger.keyid[:16]}" in key_failure
    assert log_id.startswith(f"bundle.json: log_id is {forger.keyid[:16]}")
    assert len(failures(report, "signatures")) == len(read_lines(bundle / "entries.jsonl"))


def test_a_per_example_file_changed_is_caught(bundle: Path) -> None:
    path = next(p for p in sorted((bundle / "per_example").glob("*.json")) if json.loads(p.read_text()))
    values = json.loads(path.read_text())
    path.write_text(json.dumps([values[0] - 0.5, *values[1:]]))
    per_example = failures(verify_directory(bundle), "per_example")
    assert any(f.startswith(f"per_example/{path.stem}.json: its values hash to") for f in per_example), per_example


# --- Artifact folders ---------------------------------------------------------------------------------


def artifact_of(recorded: RecordedStore, run_id: int) -> Path:
    [(path,)] = recorded.query("SELECT artifact_path FROM run_attempt WHERE run_id = ?", run_id)
    return Path(path)


def test_an_artifact_folder_verifies_against_its_run_statement(recorded: RecordedStore, clean_bundle: Path) -> None:
    run_id, _ = scored_run(recorded)
    report = verify_directory(clean_bundle, artifacts={run_id: artifact_of(recorded, run_id)})
    assert report.ok, failures(report)
    assert next(c for c in report.checks if c.name == "artifacts").checked == 2


def test_a_swapped_artifact_file_is_caught(recorded: RecordedStore, clean_bundle: Path, tmp_path: Path) -> None:
    run_id, _ = scored_run(recorded)
    [(other,)] = recorded.query("SELECT artifact_path FROM run_attempt WHERE run_id != ? AND artifact_path IS NOT NULL LIMIT 1", run_id)
    folder = Path(shutil.copytree(artifact_of(recorded, run_id), tmp_path / "artifact"))
    shutil.copy(Path(other) / "model.safetensors", folder / "model.safetensors")
    (folder / "config.json").unlink()
    (folder / "extra.bin").write_bytes(b"\0")
    artifacts = failures(verify_directory(clean_bundle, artifacts={run_id: folder}), "artifacts")
    assert len(artifacts) == 3
    assert f"(run {run_id}, attempt 1" in artifacts[0] and "model.safetensors changed: its sha256 is" in artifacts[0]
    assert "config.json is missing from the folder" in artifacts[1]
    assert "extra.bin is in the folder but not in the statement" in artifacts[2]


def test_an_artifact_of_an_unknown_run_is_reported(clean_bundle: Path, tmp_path: Path) -> None:
    assert failures(verify_directory(clean_bundle, artifacts={9999: tmp_path}), "artifacts") == [
        "artifact of run 9999: the bundle has no run statement of this run"]


def test_a_run_that_never_received_its_tasks_data_is_no_disagreement(recorded: RecordedStore, bundle: Path) -> None:
    """A crash before the split was made (or a task type a script does not support) leaves a run
    statement with no hidden split: the other runs of its task still agree, and the bundle verifies."""

    def forget_the_split(statement: dict) -> None:
        if statement["predicate"].get("submission", {}).get("name") == "crasher":
            statement["predicate"]["task"]["hidden_split_sha256"] = None

    resign_bundle(bundle, load_key(recorded.settings.operator_key_path), forget_the_split)
    report = verify_directory(bundle)
    assert report.ok, failures(report)


def test_records_signed_before_a_key_rotation_still_export_and_verify(store_copy: RecordedStore, tmp_path: Path) -> None:
    """`keys init --force` keeps the replaced key's public half: the older tournament's bundle carries
    that key and the heads it signed, and verifies with it while newer records use the new key."""
    settings = store_copy.settings
    old = load_key(settings.operator_key_path)
    new = init_key(settings.operator_key_path, force=True)
    assert (settings.operator_key_path.parent / "retired-keys" / f"{old.keyid}.pem").read_text() == old.public_pem()
    with open_store(settings) as store, store.transaction() as session:  # the log goes on under the new key
        append(session, new, "after-rotation", Kind.ROUND, make_statement(Kind.ROUND, [subject("x", "0" * 64)], {"n": 1}))
    trusted = tmp_path / "old.pem"
    trusted.write_text(old.public_pem())
    report = verify_directory(store_copy.export(tmp_path / "bundle"), trusted_key=trusted)
    assert report.ok, failures(report)
    assert report.keyid == old.keyid != new.keyid


def _resign_heads(bundle: Path, key: OperatorKey, edits: dict[int, Callable[[dict[str, Any]], None]]) -> list[dict[str, Any]]:
    """Edit the payloads of tree_heads.jsonl's lines at the given positions and sign them again with
    ``key`` (the operator's own: the signatures verify); returns the lines as they were before."""
    lines = read_lines(bundle / "tree_heads.jsonl")
    edited = [dict(line) for line in lines]
    for position, edit in edits.items():
        payload = envelope_payload(lines[position]["envelope"])
        edit(payload)
        edited[position]["envelope"] = sign_payload(key, TREE_HEAD_TYPE, payload)
    write_lines(bundle / "tree_heads.jsonl", edited)
    return lines


def test_tree_heads_whose_times_go_backwards_are_caught_though_their_signatures_verify(recorded: RecordedStore,
                                                                                       bundle: Path) -> None:  # fmt: skip
    key = load_key(recorded.settings.operator_key_path)
    lines = read_lines(bundle / "tree_heads.jsonl")
    assert len(lines) > 3
    before = envelope_payload(lines[1]["envelope"])["timestamp"]
    earlier = (datetime.fromisoformat(before) - timedelta(hours=1)).isoformat(timespec="microseconds")
    _resign_heads(bundle, key, {2: lambda payload: payload.update(timestamp=earlier)})
    report = verify_directory(bundle)
    assert failures(report) == [f"tree head of size {lines[2]['size']}: signed at {earlier}, before the tree head of size "
                                f"{lines[1]['size']} signed at {before}: a log's time only moves forward"]  # fmt: skip


@pytest.mark.parametrize("timestamp", [None, 1_700_000_000, "yesterday", "2026-12-01T02:00:00"], ids=["missing", "a number",
                                                                                                     "words", "no zone"])
def test_a_tree_head_without_a_readable_time_is_caught(recorded: RecordedStore, bundle: Path, timestamp: object) -> None:
    def edit(payload: dict[str, Any]) -> None:
        if timestamp is None:
            del payload["timestamp"]
        else:
            payload["timestamp"] = timestamp

    lines = _resign_heads(bundle, load_key(recorded.settings.operator_key_path), {1: edit})
    report = verify_directory(bundle)
    assert failures(report) == [f"tree head of size {lines[1]['size']}: timestamp {timestamp!r} is not an ISO 8601 time with a zone"]


def test_heads_signed_before_the_time_rule_whose_times_go_back_are_noted_not_failed(recorded: RecordedStore,
                                                                                   bundle: Path) -> None:  # fmt: skip
    """A log signed before heads promised non-decreasing times took the raw clock: a clock that stepped
    back then broke no rule, and a bundle that verified before still verifies, saying so."""
    key = load_key(recorded.settings.operator_key_path)
    lines = read_lines(bundle / "tree_heads.jsonl")
    before = envelope_payload(lines[1]["envelope"])["timestamp"]
    earlier = (datetime.fromisoformat(before) - timedelta(hours=1)).isoformat(timespec="microseconds")

    def as_before_the_rule(payload: dict[str, Any], timestamp: str | None = None) -> None:
        del payload["time_rule"]
        if timestamp is not None:
            payload["timestamp"] = timestamp

    _resign_heads(bundle, key, {1: as_before_the_rule, 2: lambda payload: as_before_the_rule(payload, earlier)})
    report = verify_directory(bundle)
    assert report.ok, failures(report)
    [heads] = [check for check in report.checks if check.name == "tree_heads"]
    assert [f"{n.record}: {n.message}" for n in heads.notes] == [
        f"tree head of size {lines[2]['size']}: signed at {earlier}, before the tree head of size {lines[1]['size']} signed "
        f"at {before} (signed before tree heads promised non-decreasing times)"]
