"""`trainarena audit`: a stored run re-executed from its signed record. Fake executors serve the logic
(the record's lookup and signatures, refusals, changed inputs, the measured noise band, verdicts); one
slow test audits a real `trainarena run` through the sandbox."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from field_lines import read_fields
from records_store import resign_bundle
from sqlalchemy import func, select, update
from typer.testing import CliRunner

import trainarena.cli.audit as audit_cli
from trainarena.api import create_app
from trainarena.cli import app
from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.demo.example_repos import make_example_repo
from trainarena.engine.model import Stage
from trainarena.orchestrator import create_tournament, drive
from trainarena.records.audit import (
    CannotAudit,
    NoiseBand,
    Verdict,
    audit_run,
    compare,
    noise_band,
)
from trainarena.records.bundle import export_bundle
from trainarena.records.log import entry_leaf_hash
from trainarena.records.provenance import folder_digest
from trainarena.records.recorder import Recorder
from trainarena.records.signing import envelope_payload, init_key, load_key, sign_payload
from trainarena.records.statements import PAYLOAD_TYPE, payload_digest
from trainarena.records.verify import verify_directory
from trainarena.reporting.task_board import task_board
from trainarena.runs import CompetitorInfo, DiskFull, RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.store import Store
from trainarena.store.log_tables import LogEntry
from trainarena.store.models import EvaluationRow, Run
from trainarena.submissions.service import register_competitor
from trainarena.tasks.base import Evaluation, TaskDefinition
from trainarena.workbench import Workbench, registered_script, worktree_script

MANIFEST = '[trainarena]\ncontract = 1\nentrypoint = "train.py"\ntask_types = ["instruct"]\n'
COPIER = textwrap.dedent(
    """
    import argparse, shutil
    parser = argparse.ArgumentParser()
    parser.add_argument("--model"); parser.add_argument("--output-dir")
    args, _ = parser.parse_known_args()
    shutil.copytree(args.model, args.output_dir, dirs_exist_ok=True)
    """
)


class Inputs:
    """A base model folder and prepared splits on disk: what the recorder digests and the audit checks."""

    def __init__(self, root: Path) -> None:
        self.model, self.train, self.hidden = root / "model", root / "prepared" / "train.jsonl", root / "hidden" / "hidden.jsonl"
        for path, text in ((self.model / "config.json", "{}"), (self.train, "train\n"), (self.hidden, "hidden\n")):
            path.parent.mkdir(parents=True)
            path.write_text(text)

    def digests(self, settings: Settings, task: TaskDefinition) -> dict[str, str | None]:
        return {"base_model_sha256": folder_digest(self.model), "train_split_sha256": folder_digest(self.train),
                "hidden_split_sha256": folder_digest(self.hidden.parent)}  # fmt: skip


class ScoreExecutor:
    """Hands out the given scores in turn (None: the run fails; an exception: raised, as the platform
    raises one), writing logs and an artifact as a run would."""

    def __init__(self, inputs: Inputs, scores: list[float | None | Exception]) -> None:
        self.inputs, self.scores = inputs, list(scores)
        self.calls: list[tuple[CompetitorInfo, TaskDefinition, Path]] = []

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        self.calls.append((competitor, task, run_dir))
        score = self.scores.pop(0)
        (run_dir / "logs").mkdir(parents=True)
        if isinstance(score, Exception):
            raise score
        (run_dir / "logs" / "stderr.log").write_text("step 1 loss 2.0\n")
        times = {"started_at": 1_700_000_000.0, "finished_at": 1_700_000_030.0, "log_path": run_dir / "logs",
                 "prepared_paths": {"train_file": str(self.inputs.train), "hidden_file": str(self.inputs.hidden)}}  # fmt: skip
        if score is None:
            return RunReport(RunStatus.FAILED, failure_reason="exited with code 1", **times)
        (run_dir / "output").mkdir()
        (run_dir / "output" / "model.safetensors").write_bytes(b"weights")
        return RunReport(RunStatus.SUCCEEDED, artifact_path=run_dir / "output", artifact_digest="ab" * 32,
                         evaluation=Evaluation(score, Direction.LOWER, per_example=(score,)), **times)  # fmt: skip

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        raise AssertionError("an audit never scores the base model")

    def close(self) -> None:
        pass


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return Settings()


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    return Inputs(tmp_path / "inputs")


@pytest.fixture
def task(inputs: Inputs) -> TaskDefinition:
    return TaskDefinition("units", TaskType.INSTRUCT, str(inputs.model), {"source": "units.jsonl", "field_output": "a"}, 30.0, 5)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    folder = tmp_path / "copier"
    folder.mkdir()
    (folder / "train.py").write_text(COPIER)
    (folder / "trainarena.toml").write_text(MANIFEST)
    return folder


def _runs(settings: Settings, store: Store, inputs: Inputs, tree: Path, task: TaskDefinition, scores: list[float | None]) -> list[int]:
    """The working tree run once per score (seeds 5, 6, ...), stored and recorded as `trainarena run` does."""
    executor = ScoreExecutor(inputs, scores)
    return Workbench(settings, store, executor).run(worktree_script(settings, tree), task, seeds=len(scores))


def _audit(settings: Settings, store: Store, inputs: Inputs, run_id: int, new: float | None):
    executor = ScoreExecutor(inputs, [new])
    return audit_run(settings, store, executor, run_id, inputs=inputs.digests), executor


def test_an_audit_reruns_the_recorded_tree_and_task_and_records_itself(settings: Settings, store: Store, inputs: Inputs,
                                                                       tree: Path, task: TaskDefinition) -> None:  # fmt: skip
    [run_id] = _runs(settings, store, inputs, tree, task, [2.5])
    report, executor = _audit(settings, store, inputs, run_id, 2.5)

    [(competitor, rerun_task, run_dir)] = executor.calls
    assert rerun_task == task  # type, base model, dataset and mapping, budget and seed, from the record
    assert competitor.submission_dir is not None and (competitor.submission_dir / "train.py").read_text() == COPIER
    assert run_dir == settings.work_dir / "audits" / f"run-{run_id}-{report.audit_run_id}"
    assert report.comparison.verdict == Verdict.CONSISTENT and report.comparison.difference == 0
    assert (report.record.run_index, report.record.evaluation_index) == (0, 1)
    with store.session() as session:
        audit = session.get_one(Run, report.audit_run_id)
        assert (audit.origin, audit.audit_of_id) == ("audit", run_id) and audit.snapshot_path == str(competitor.submission_dir)
        assert audit.evaluation is not None and audit.evaluation.score == 2.5
        keys = set(session.scalars(select(LogEntry.key)))
        statements = {entry.key: envelope_payload(entry.envelope) for entry in session.scalars(select(LogEntry))}
    assert {f"run:{report.audit_run_id}:attempt:1", f"evaluation:{report.audit_run_id}:attempt:1"} <= keys
    # Its signed statement names the audited run, the attempt compared with and that attempt's statement.
    audited = statements[f"run:{run_id}:attempt:1"]
    assert statements[f"run:{report.audit_run_id}:attempt:1"]["predicate"]["run"]["audit_of"] == {
        "run_id": run_id, "attempt": 1, "statement": {"log_index": 0, "payload_sha256": payload_digest(audited)}}
    assert audited["predicate"]["run"]["audit_of"] is None


def test_an_audit_run_whose_store_row_names_another_run_than_its_record_is_refused(
        settings: Settings, store: Store, inputs: Inputs, tree: Path, task: TaskDefinition) -> None:  # fmt: skip
    first, second = _runs(settings, store, inputs, tree, task, [2.5, 2.6])
    report, _ = _audit(settings, store, inputs, first, 2.5)
    with store.transaction() as session:
        session.execute(update(Run).where(Run.id == report.audit_run_id).values(audit_of_id=second))
    with pytest.raises(CannotAudit, match=rf"audited run: {second} in the store, {first} signed"):
        _audit(settings, store, inputs, report.audit_run_id, 2.5)
    with store.transaction() as session:  # the audited run deleted: the store names none, the record still does
        session.execute(update(Run).where(Run.id == report.audit_run_id).values(audit_of_id=None))
    assert _audit(settings, store, inputs, report.audit_run_id, 2.5)[0].comparison.verdict == Verdict.CONSISTENT


def test_a_run_stored_while_records_were_off_has_no_record_to_audit(settings: Settings, store: Store, inputs: Inputs, tree: Path,
                                                                    task: TaskDefinition, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    init_key(settings.operator_key_path)
    monkeypatch.setenv("TRAINARENA_RECORDS__ENABLED", "false")
    [run_id] = _runs(Settings(), store, inputs, tree, task, [2.5])
    with pytest.raises(CannotAudit, match=rf"run:{run_id}:attempt:1 is not in the transparency log.*records.enabled was off"):
        _audit(settings, store, inputs, run_id, 2.5)
    with pytest.raises(CannotAudit, match="no run 99"):
        _audit(settings, store, inputs, 99, 2.5)


def test_a_record_signed_by_another_key_is_refused(settings: Settings, store: Store, inputs: Inputs, tree: Path,
                                                   task: TaskDefinition, tmp_path: Path) -> None:  # fmt: skip
    [run_id] = _runs(settings, store, inputs, tree, task, [2.5])
    other = init_key(tmp_path / "other.pem")
    with store.transaction() as session:
        entry = session.scalars(select(LogEntry).where(LogEntry.key == f"evaluation:{run_id}:attempt:1")).one()
        forged = sign_payload(other, PAYLOAD_TYPE, envelope_payload(entry.envelope))
        entry.envelope = forged
        entry.leaf_hash = entry_leaf_hash(forged).hex()
    with pytest.raises(CannotAudit, match=rf"log entry 1 \(evaluation:{run_id}:attempt:1\): not signed by key"):
        _audit(settings, store, inputs, run_id, 2.5)


def test_a_score_changed_in_the_store_is_named(settings: Settings, store: Store, inputs: Inputs, tree: Path, task: TaskDefinition) -> None:
    [run_id] = _runs(settings, store, inputs, tree, task, [2.5])
    with store.transaction() as session:
        session.execute(update(EvaluationRow).values(score=1.5))
    with pytest.raises(CannotAudit, match=r"score: 1\.5 in the store, 2\.5 signed"):
        _audit(settings, store, inputs, run_id, 2.5)


def test_a_changed_hidden_split_is_reported_and_nothing_runs(settings: Settings, store: Store, inputs: Inputs, tree: Path,
                                                             task: TaskDefinition) -> None:  # fmt: skip
    [run_id] = _runs(settings, store, inputs, tree, task, [2.5])
    recorded = folder_digest(inputs.hidden.parent)
    inputs.hidden.write_text("hidden, with another example\n")
    with pytest.raises(CannotAudit, match=rf"inputs of run {run_id} changed.*hidden split: recorded {recorded}, now [0-9a-f]{{64}}") as caught:
        _audit(settings, store, inputs, run_id, 2.5)
    assert "train split" not in str(caught.value) and "base model" not in str(caught.value)
    with store.session() as session:
        assert session.scalars(select(Run.id)).all() == [run_id]  # no audit run was started


def test_a_snapshot_changed_or_gone_with_its_tree_cannot_be_audited(settings: Settings, store: Store, inputs: Inputs, tree: Path,
                                                                    task: TaskDefinition) -> None:  # fmt: skip
    [run_id] = _runs(settings, store, inputs, tree, task, [2.5])
    with store.session() as session:
        snapshot = Path(session.get_one(Run, run_id).snapshot_path)
    (snapshot / "train.py").write_text(COPIER + "print('changed')\n")
    with pytest.raises(CannotAudit, match=f"the snapshot {snapshot} has changed since the run"):
        _audit(settings, store, inputs, run_id, 2.5)

    shutil.rmtree(snapshot)  # the cache cleared: the unchanged source folder serves again
    report, _ = _audit(settings, store, inputs, run_id, 2.5)
    assert report.comparison.verdict == Verdict.CONSISTENT and snapshot.is_dir()

    shutil.rmtree(snapshot)
    (tree / "train.py").write_text(COPIER + "# edited since\n")
    with pytest.raises(CannotAudit, match=f"the working tree at {tree} no longer holds the tree it ran.*the tree is gone"):
        _audit(settings, store, inputs, run_id, 2.5)


def test_a_registered_checkout_is_checked_against_the_recorded_git_tree(settings: Settings, store: Store, inputs: Inputs,
                                                                        tree: Path, task: TaskDefinition, tmp_path: Path) -> None:  # fmt: skip
    repo, commit = make_example_repo(tree, tmp_path / "repo")
    with store.transaction() as session:
        result = register_competitor(session, settings, name="copier", repo=str(repo), commit=commit)
        row = result.competitor
        info = CompetitorInfo(row.name, row.repo_url, row.commit, row.tree_hash, row.entrypoint)
    [run_id] = Workbench(settings, store, ScoreExecutor(inputs, [2.5])).run(registered_script(info), task)

    report, executor = _audit(settings, store, inputs, run_id, 2.5)
    assert report.comparison.verdict == Verdict.CONSISTENT
    assert executor.calls[0][0].submission_dir == result.registration.checkout_dir
    (result.registration.checkout_dir / "train.py").write_text("print('swapped')\n")
    with pytest.raises(CannotAudit, match=f"has git tree [0-9a-f]{{12}}, the record names tree {row.tree_hash[:12]}"):
        _audit(settings, store, inputs, run_id, 2.5)


class TournamentExecutor(ScoreExecutor):
    """The orchestrator's executor: every run scores 1.5."""

    def execute(self, request: RunRequest) -> RunReport:
        self.scores = [1.5]
        return self.run_task(request.competitor, request.task, request.run_dir, f"run{request.run_id}")


def _played_tournament(settings: Settings, store: Store, inputs: Inputs, tree: Path, tmp_path: Path) -> tuple[int, int]:
    """A recorded tournament of two registered copiers; its id and its first run's."""

    def task_source(kind: str, stage: Stage, match_id: str, index: int, seed: int) -> TaskDefinition:
        return TaskDefinition(f"instruct-{match_id}-{index}", TaskType.INSTRUCT, str(inputs.model), {"seed": seed}, 1.0, seed)

    (tmp_path / "other").mkdir()
    shutil.copytree(tree, tmp_path / "other", dirs_exist_ok=True)
    (tmp_path / "other" / "train.py").write_text(COPIER + "ANOTHER_COMPETITOR = True\n")  # its own code: an exact copy is refused
    with store.transaction() as session:
        for name, source in (("copier", tree), ("other", tmp_path / "other")):
            repo, commit = make_example_repo(source, tmp_path / "repos" / name)
            register_competitor(session, settings, name=name, repo=str(repo), commit=commit)
        tournament_id = create_tournament(session, name="week-1", kind="text", seed=1, entrants=["copier", "other"]).id
    drive(store, tournament_id, task_source=task_source, executor=TournamentExecutor(inputs, []), rules=settings.rules,
          weight_rules=settings.weights, work_dir=settings.work_dir, recorder=Recorder(settings))  # fmt: skip
    with store.session() as session:
        return tournament_id, session.scalars(select(Run.id).where(Run.origin == "tournament").order_by(Run.id)).first()


def test_a_tournament_run_is_audited_until_its_repository_is_gone(settings: Settings, store: Store, inputs: Inputs,
                                                                 tree: Path, tmp_path: Path) -> None:  # fmt: skip
    _, run_id = _played_tournament(settings, store, inputs, tree, tmp_path)
    report, executor = _audit(settings, store, inputs, run_id, 1.5)
    assert report.comparison.verdict == Verdict.CONSISTENT and report.submission["kind"] == "registered"
    assert executor.calls[0][1].name.startswith("instruct-")

    shutil.rmtree(settings.cache_dir / "checkouts")
    shutil.rmtree(settings.cache_dir / "repos")
    shutil.rmtree(tmp_path / "repos")
    with pytest.raises(CannotAudit, match=r"the tree of \w+ \(.*\) is gone from the cache and cannot be fetched again"):
        _audit(settings, store, inputs, run_id, 1.5)


def test_the_tournaments_bundle_holds_its_audits_and_verify_checks_the_run_each_names(
        settings: Settings, store: Store, inputs: Inputs, tree: Path, tmp_path: Path) -> None:  # fmt: skip
    tournament_id, run_id = _played_tournament(settings, store, inputs, tree, tmp_path)
    report, _ = _audit(settings, store, inputs, run_id, 1.5)
    assert export_bundle(store, settings, tournament_id, tmp_path / "bundle").audits_left_out == ()
    verified = verify_directory(tmp_path / "bundle")
    assert verified.ok, [f.message for check in verified.checks for f in check.failures]
    [audits] = [check for check in verified.checks if check.name == "audits"]
    by = report.submission["name"]
    assert audits.checked == 1 and [note.record for note in audits.notes] == [
        f"entry {_entry_of(store, report.audit_run_id)} (run {report.audit_run_id}, attempt 1, by {by}, audit of run {run_id})"]
    assert audits.notes[0].message == (f"audits entry {_entry_of(store, run_id)} (run {run_id}, attempt 1, by {by}): "
                                       f"1.5 against {report.record.evaluation['score']:.6g} signed then")

    # An audit statement naming a run statement the bundle does not hold is named.
    key = load_key(settings.operator_key_path)

    def misname(statement: dict[str, Any]) -> None:
        audited = statement["predicate"].get("run", {}).get("audit_of")
        if audited:
            audited["statement"]["log_index"] = 10_000

    resign_bundle(tmp_path / "bundle", key, misname)
    failed = [f.message for check in verify_directory(tmp_path / "bundle").checks if check.name == "audits" for f in check.failures]
    assert failed == [f"audits run {run_id}, attempt 1, but names the run statement at entry 10000, which is not in the bundle"]


def test_an_audit_signed_before_statements_named_their_run_stays_out_of_the_bundle_and_audits_as_before(
        settings: Settings, store: Store, inputs: Inputs, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    tournament_id, run_id = _played_tournament(settings, store, inputs, tree, tmp_path)
    signed = Recorder.run_statement

    def without_audit_of(recorder: Recorder, *args: Any) -> dict[str, Any]:  # a statement as signed before the field
        statement = signed(recorder, *args)
        del statement["predicate"]["run"]["audit_of"]
        return statement

    monkeypatch.setattr(Recorder, "run_statement", without_audit_of)
    report, _ = _audit(settings, store, inputs, run_id, 1.5)
    monkeypatch.undo()
    export_bundle(store, settings, tournament_id, tmp_path / "bundle")
    verified = verify_directory(tmp_path / "bundle")
    assert verified.ok and [check.checked for check in verified.checks if check.name == "audits"] == [0]
    exported = {json.loads(line)["key"] for line in (tmp_path / "bundle" / "entries.jsonl").read_text().splitlines()}
    assert not any(key.startswith((f"run:{report.audit_run_id}:", f"evaluation:{report.audit_run_id}:")) for key in exported)
    # Auditing that audit: its record names no run, so its row's is not held against it.
    assert _audit(settings, store, inputs, report.audit_run_id, 1.5)[0].comparison.verdict == Verdict.CONSISTENT


def _entry_of(store: Store, run_id: int) -> int:
    with store.session() as session:
        return session.scalars(select(LogEntry.index).where(LogEntry.key == f"run:{run_id}:attempt:1")).one()


def test_the_band_is_measured_from_repeated_runs_of_one_tree_on_one_task(settings: Settings, store: Store, inputs: Inputs,
                                                                          tree: Path, task: TaskDefinition) -> None:  # fmt: skip
    first, *_ = _runs(settings, store, inputs, tree, task, [2.0, 2.1, 1.9])  # `trainarena run --seeds 3`
    close, _ = _audit(settings, store, inputs, first, 2.05)
    # Pairs of 2.0, 2.1, 1.9 differ by 0.1, 0.1, 0.2 over a mean of 2.0; the audit's own run is not in its band.
    assert (close.band.runs, close.band.groups, close.band.pairs) == (3, 1, 3)
    assert close.band.relative == pytest.approx(0.095)  # the 95 % quantile of 0.05, 0.05, 0.1 (interpolated)
    assert close.comparison.verdict == Verdict.CONSISTENT and close.comparison.relative == pytest.approx(0.025)
    assert close.comparison.better is False  # lower is better: 2.05 is worse than 2.0

    far, _ = _audit(settings, store, inputs, first, 1.5)
    assert far.band.runs == 4  # the first audit's run counts now
    assert far.comparison.verdict == Verdict.OUTSIDE and far.comparison.better is True
    assert far.comparison.relative == pytest.approx(-0.25)


def test_without_repeated_runs_the_band_is_unknown_and_the_difference_stands_alone(settings: Settings, store: Store,
                                                                                     inputs: Inputs, tree: Path, task: TaskDefinition) -> None:  # fmt: skip
    [run_id] = _runs(settings, store, inputs, tree, task, [2.0])
    report, _ = _audit(settings, store, inputs, run_id, 2.2)
    assert report.band.relative is None and report.band.runs == 0
    assert report.comparison.verdict == Verdict.UNJUDGED and report.comparison.relative == pytest.approx(0.1)

    failed, _ = _audit(settings, store, inputs, run_id, None)
    assert failed.comparison.verdict == Verdict.FAILED and failed.audit_status == "failed"
    assert failed.failure_reason == "exited with code 1"


def test_noise_band_pools_groups_and_needs_enough_runs() -> None:
    groups = {("task-a", "tree-1"): [1.0, 1.1], ("task-b", "tree-1"): [4.0, 4.0, 4.4], ("task-a", "tree-2"): [3.0],
              ("task-c", "tree-3"): [0.0, 0.0]}  # fmt: skip
    band = noise_band(groups, "instruct", quantile=1.0, min_runs=3)
    # single runs and zero means say nothing about relative noise; the largest pair is 0.4 over 4.133
    assert (band.runs, band.groups, band.pairs) == (5, 2, 4)
    assert band.relative == pytest.approx(0.4 / (12.4 / 3))
    assert noise_band(groups, "instruct", quantile=1.0, min_runs=6).relative is None
    assert noise_band({}, "dpo", quantile=0.95, min_runs=2) == NoiseBand("dpo", None, 0.95, 0, 0, 0, 2)


def test_compare_judges_in_the_task_direction() -> None:
    band = NoiseBand("grpo", 0.1, 0.95, 6, 2, 6, 3)
    assert compare(0.5, 0.54, Direction.HIGHER, band).verdict == Verdict.CONSISTENT
    higher = compare(0.5, 0.6, Direction.HIGHER, band)
    assert higher.verdict == Verdict.OUTSIDE and higher.better is True and higher.difference == pytest.approx(0.1)
    assert compare(0.0, 0.0, Direction.LOWER, band).verdict == Verdict.CONSISTENT
    assert compare(0.0, 0.1, Direction.LOWER, band).verdict == Verdict.OUTSIDE  # no relative difference to a zero score
    assert compare(0.5, None, Direction.LOWER, band).verdict == Verdict.FAILED


# --- the command ------------------------------------------------------------------------------------------


@pytest.fixture
def cli_executor(monkeypatch: pytest.MonkeyPatch, inputs: Inputs) -> ScoreExecutor:
    fake = ScoreExecutor(inputs, [])
    fake.cpus_given = []  # type: ignore[attr-defined] - the sandbox.cpus_per_run each audit ran with
    monkeypatch.setattr(audit_cli, "make_executor", lambda settings, unsafe: fake.cpus_given.append(settings.sandbox.cpus_per_run) or fake)
    monkeypatch.setattr("trainarena.records.audit.current_inputs", inputs.digests)
    return fake


def test_the_command_prints_the_comparison_at_80_columns_and_exits_by_verdict(settings: Settings, store: Store, inputs: Inputs,
                                                                               tree: Path, task: TaskDefinition,
                                                                               cli_executor: ScoreExecutor) -> None:  # fmt: skip
    first, *_ = _runs(settings, store, inputs, tree, task, [2.0, 2.1, 1.9])
    runner = CliRunner()
    cli_executor.scores = [2.0]
    same = runner.invoke(app, ["audit", str(first)], terminal_width=80)
    assert same.exit_code == 0, same.output
    assert "verdict" in same.output and "consistent" in same.output and "none (the same score)" in same.output
    assert "(95% of pair gaps; 3 runs, 1 tree on 1 task)" in same.output
    # every line fits 80 columns but the script's, whose path runs on as `runs show` lets a path run on
    assert all(len(line) <= 80 for line in same.output.splitlines() if not line.startswith("script"))
    assert cli_executor.cpus_given == [os.cpu_count()]  # type: ignore[attr-defined] - a run alone: every core, as `run`

    cli_executor.scores = [1.0]
    outside = runner.invoke(app, ["audit", str(first), "--json"])
    assert outside.exit_code == 1, outside.output
    data = json.loads(outside.stdout)
    assert data["verdict"] == "outside the band" and data["recorded"] == 2.0 and data["new"] == 1.0
    assert data["relative"] == pytest.approx(-0.5) and data["band"]["runs"] == 4 and data["record"]["run_entry"] == 0

    missing = runner.invoke(app, ["audit", "99", "--json"])
    assert missing.exit_code == 2 and "no run 99" in json.loads(missing.stdout)["error"]


def test_an_audit_the_platform_could_not_run_stores_nothing_and_cannot_audit(settings: Settings, store: Store,
                                                                             inputs: Inputs, tree: Path, task: TaskDefinition,
                                                                             cli_executor: ScoreExecutor) -> None:  # fmt: skip
    """A full disk is the platform's: a failed audit run would read as a run that does not reproduce."""
    first, *_ = _runs(settings, store, inputs, tree, task, [2.0, 2.1, 1.9])
    with store.session() as session:
        runs_before = session.scalar(select(func.count()).select_from(Run))
    cli_executor.scores = [DiskFull("run audit-run4 not counted: the data directory's disk is full: 1 MB free")]
    result = CliRunner().invoke(app, ["audit", str(first), "--json"])
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["error"] == (f"cannot audit run {first}: run audit-run4 not counted: the data "
                                                  "directory's disk is full: 1 MB free")
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Run)) == runs_before
    assert not list((settings.work_dir / "audits").glob(f"run-{first}-*"))


def test_an_audit_signed_after_the_key_was_replaced_is_named_by_audit_and_by_export(
        settings: Settings, store: Store, inputs: Inputs, tree: Path, tmp_path: Path, cli_executor: ScoreExecutor) -> None:  # fmt: skip
    tournament_id, run_id = _played_tournament(settings, store, inputs, tree, tmp_path)
    old = load_key(settings.operator_key_path).keyid
    new = init_key(settings.operator_key_path, force=True).keyid  # `keys init --force`
    runner = CliRunner()
    cli_executor.scores = [1.5]
    audited = runner.invoke(app, ["audit", str(run_id)], terminal_width=80)
    assert audited.exit_code == 0, audited.output
    with store.session() as session:
        audit_id = session.scalars(select(Run.id).where(Run.audit_of_id == run_id)).one()
    reason = f"signed by key {new[:16]}, not the tournament's {old[:16]}"
    said = " ".join(audited.stdout.split())
    assert (f"note: audit run {audit_id}'s records will not join the bundle of its tournament (`trainarena export`): "
            f"{reason}") in said

    exported = runner.invoke(app, ["export", str(tournament_id), str(tmp_path / "bundle")], terminal_width=80)
    assert exported.exit_code == 0, exported.output
    with store.session() as session:
        played = session.scalars(select(LogEntry.index).where(LogEntry.tournament_id == tournament_id)).all()
    assert f"{len(played)} log entries" in exported.stdout  # what is exported is unchanged: the tournament's own
    assert " ".join(exported.stderr.split()) == (f"note: audit run {audit_id} (of run {run_id}) left out: {reason}; a "
                                                 "bundle is checked against one key")
    as_json = runner.invoke(app, ["export", str(tournament_id), str(tmp_path / "bundle-json"), "--json"])
    assert json.loads(as_json.stdout)["audits_left_out"] == [
        {"run_id": audit_id, "audit_of": run_id, "signed_by": new, "tournament_key": old, "reason": reason}]
    assert verify_directory(tmp_path / "bundle").ok


def test_an_audit_run_is_labelled_as_one_and_kept_off_the_task_board(settings: Settings, store: Store, inputs: Inputs,
                                                                     tree: Path, task: TaskDefinition) -> None:  # fmt: skip
    """The QA found an audit's re-run shown as a `trainarena run` and counted on the task's board as the
    competitor's second run: had it scored better, it would have become the competitor's best."""
    [run_id] = _runs(settings, store, inputs, tree, task, [2.5])
    report, _ = _audit(settings, store, inputs, run_id, 1.0)  # better than the recorded run
    audit_id, runner = report.audit_run_id, CliRunner()
    fields, _ = read_fields(runner.invoke(app, ["runs", "show", str(audit_id)], terminal_width=80).stdout, 80)
    assert fields["played"] == f"audit of run {run_id} (`trainarena audit {run_id}`)"
    shown = json.loads(runner.invoke(app, ["runs", "show", str(audit_id), "--json"]).stdout)
    assert (shown["origin"], shown["audit_of"]) == ("audit", run_id)
    listed = {line["run_id"]: line for line in json.loads(runner.invoke(app, ["runs", "list", "--json"]).stdout)}
    assert (listed[audit_id]["origin"], listed[audit_id]["audit_of"]) == ("audit", run_id)
    assert (listed[run_id]["origin"], listed[run_id]["audit_of"]) == ("adhoc", None)
    rows = [line.split("│")[1:-1] for line in runner.invoke(app, ["runs", "list"], terminal_width=80).stdout.splitlines()
            if line.startswith("│")]  # fmt: skip
    [audit_row] = [[cell.strip() for cell in row[:3]] for row in rows if row[0].strip() == str(audit_id)]
    assert audit_row == [str(audit_id), "audit", f"of run {run_id}"]
    with store.session() as session:
        [line] = task_board(session, task.name).lines
    assert (line.best_run_id, line.best_score, line.runs) == (run_id, 2.5, 1)
    with TestClient(create_app(settings, store=store)) as client:
        page = client.get(f"/runs/{audit_id}").text
    assert f'audit of <a href="/runs/{run_id}">run {run_id}</a>, outside tournaments' in page


def test_a_difference_with_no_band_yet_exits_3_not_1(settings: Settings, store: Store, inputs: Inputs, tree: Path,
                                                      task: TaskDefinition, cli_executor: ScoreExecutor) -> None:  # fmt: skip
    [only] = _runs(settings, store, inputs, tree, task, [2.0])  # the task type's first run: no band
    cli_executor.scores = [2.2]
    unjudged = CliRunner().invoke(app, ["audit", str(only), "--json"])
    assert unjudged.exit_code == 3, unjudged.output
    assert json.loads(unjudged.stdout)["verdict"] == "no band to judge by"


# --- a real run, audited through the sandbox --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_a_real_run_audited_through_the_sandbox_scores_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, assets,
                                                                 tree: Path) -> None:  # fmt: skip
    """A copier (it hands back the base model) is deterministic: registered or run as a working tree, its
    audit trains it again in the sandbox, checks the real splits' digests, and gets the recorded score."""
    data = tmp_path / "data"
    (data / "cache").mkdir(parents=True)
    (data / "cache" / "assets").symlink_to(assets.root.parent, target_is_directory=True)  # the session's build
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(data))
    monkeypatch.setenv("TRAINARENA_SANDBOX__GRACE_SECONDS", "1")
    task = tmp_path / "task.toml"
    task.write_text(textwrap.dedent(f"""
        name = "units-audit"
        type = "instruct"
        base_model = "{assets.tiny_llama}"
        budget_seconds = 20
        [dataset]
        source = "{assets.datasets['units']}"
        field_instruction = "instruction"
        field_input = "input"
        field_output = "output"
        """))  # fmt: skip
    runner = CliRunner()
    repo, commit = make_example_repo(tree, tmp_path / "repo")
    added = runner.invoke(app, ["competitor", "add", "copier", str(repo), commit])
    assert added.exit_code == 0, added.output

    for script in (["--competitor", "copier"], ["--repo", str(tree)]):
        ran = runner.invoke(app, ["run", *script, "--task", str(task), "--json", "--no-reference"])
        assert ran.exit_code == 0, ran.output
        [run] = json.loads(ran.stdout)["runs"]
        audited = runner.invoke(app, ["audit", str(run["run_id"]), "--json"])
        assert audited.exit_code == 0, audited.output
        report = json.loads(audited.stdout)
        assert report["verdict"] == "consistent" and report["audit_status"] == "succeeded"
        assert report["new"] == report["recorded"] == run["score"] and run["score"] > 0
        assert Path(report["run_dir"], "output", "model.safetensors").is_file()
        shown = runner.invoke(app, ["runs", "show", str(report["audit_run_id"]), "--json"])
        assert shown.exit_code == 0 and json.loads(shown.stdout)["score"] == run["score"]


@pytest.mark.parametrize("committed_as_played", [True, False])
def test_a_run_on_data_its_tournament_did_not_commit_to_cannot_be_audited(
        settings: Settings, store: Store, inputs: Inputs, tree: Path, tmp_path: Path, committed_as_played: bool) -> None:  # fmt: skip
    """QA cli 1: a dataset edited after `tournament create` was played; the audit held today's files
    against the run's own record (which names the edited split) and said consistent. A pool
    tournament's run is held against the tournament's commitment too."""
    from datetime import UTC, datetime

    from trainarena.runs import definition_json
    from trainarena.store.models import TournamentDraw
    from trainarena.store.pools import add_stored_task

    stored = TaskDefinition("drawn", TaskType.INSTRUCT, str(inputs.model), {"source": "d.jsonl"}, 1.0, 0, split_key="drawn:1")
    played = folder_digest(inputs.hidden.parent)
    (tmp_path / "other").mkdir()
    shutil.copytree(tree, tmp_path / "other", dirs_exist_ok=True)
    (tmp_path / "other" / "train.py").write_text(COPIER + "ANOTHER_COMPETITOR = True\n")
    with store.transaction() as session:
        task = add_stored_task(session, name="drawn", pool="p", kind="text", definition=definition_json(stored),
                               base_model_digest=folder_digest(inputs.model), dataset_digest="d" * 64,
                               hidden_digest=played if committed_as_played else "c" * 64, train_rows=1, hidden_rows=1)
        for name, source in (("copier", tree), ("other", tmp_path / "other")):
            repo, commit = make_example_repo(source, tmp_path / "repos" / name)
            register_competitor(session, settings, name=name, repo=str(repo), commit=commit)
        tournament_id = create_tournament(session, name="week-1", kind="text", seed=1, entrants=["copier", "other"]).id
        session.add(TournamentDraw(tournament_id=tournament_id, pool_id=task.pool_id, task_names=["drawn"],
                                   entry_closes_at=datetime.now(UTC)))

    def task_source(kind: str, stage: Stage, match_id: str, index: int, seed: int) -> TaskDefinition:
        return TaskDefinition("drawn", TaskType.INSTRUCT, str(inputs.model), {"source": "d.jsonl"}, 1.0, seed, split_key="drawn:1")

    drive(store, tournament_id, task_source=task_source, executor=TournamentExecutor(inputs, []), rules=settings.rules,
          weight_rules=settings.weights, work_dir=settings.work_dir, recorder=Recorder(settings))  # fmt: skip
    with store.session() as session:
        run_id = session.scalars(select(Run.id).where(Run.origin == "tournament").order_by(Run.id)).first()
    if committed_as_played:
        assert _audit(settings, store, inputs, run_id, 1.5)[0].comparison.verdict == Verdict.CONSISTENT
        return
    with pytest.raises(CannotAudit, match=rf"^run {run_id} played on inputs its tournament had not committed to .*"
                       rf"hidden split: run {run_id} recorded {played}, the commitment \(log entry \d+\) names c{{64}}$"):
        _audit(settings, store, inputs, run_id, 1.5)


def test_todays_inputs_are_split_from_the_dataset_as_it_is_not_from_the_cache(settings: Settings, tmp_path: Path) -> None:
    """The prepared-task cache is keyed by the definition: a dataset edited since would be hidden by it."""
    from trainarena.records.audit import current_inputs
    from trainarena.records.provenance import split_digests
    from trainarena.task_preparation import TaskPreparer

    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"q": f"{i}+1", "a": str(i + 1)}) + "\n" for i in range(40)))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    task = TaskDefinition("rows", TaskType.INSTRUCT, str(tmp_path / "model"),
                          {"source": str(rows), "field_instruction": "q", "field_output": "a"}, 5.0, 1)
    cached = split_digests(TaskPreparer(settings).prepare(task).to_json())
    assert {k: v for k, v in current_inputs(settings, task).items() if k != "base_model_sha256"} == cached
    rows.write_text(rows.read_text().replace('"a": "', '"a": "CHANGED '))
    now = current_inputs(settings, task)
    assert now["hidden_split_sha256"] != cached["hidden_split_sha256"] and now["train_split_sha256"] != cached["train_split_sha256"]
    assert [p.name for p in settings.hidden_dir.iterdir() if p.name.startswith(".audit")] == []
