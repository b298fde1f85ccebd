"""What only replaying the records can catch: an operator who signs, with the right key, a decision the
engine would not make, a reveal that does not open its commitment, or runs scored on another hidden
split than the one committed. Each store here is recorded by a recorder that lies in one way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from records_store import POOL_TASKS, RecordedStore, build_pool_store, build_recorded_store, resign_bundle
from sqlalchemy.orm import Session

from trainarena.contract import TaskType
from trainarena.records.recorder import Recorder
from trainarena.records.signing import envelope_payload, load_key
from trainarena.records.statements import Kind
from trainarena.records.verify import Report, verify_directory
from trainarena.store.models import Tournament
from trainarena.tasks.base import TaskDefinition
from trainarena.tasks.secret_split import noise_master_seed


def failures(report: Report, check: str) -> list[str]:
    return [f"{f.record}: {f.message}" for c in report.checks if c.name == check for f in c.failures]


class CrownsTheRunnerUp(Recorder):
    """Signs a decision that crowns the runner-up and pays it the champion's weight."""

    def _append_tournament(self, session: Session, tournament: Tournament, what: str, kind: Kind, predicate: dict[str, Any]) -> None:
        if what == "decision":
            end = predicate["decided"]["end"]
            winner, runner_up = end["champion"], end["standings"][1]
            weights = {**predicate["weights"], winner: predicate["weights"][runner_up], runner_up: predicate["weights"][winner]}
            predicate = {**predicate, "decided": {**predicate["decided"], "end": {**end, "champion": runner_up}}, "weights": weights}
        super()._append_tournament(session, tournament, what, kind, predicate)


class RevealsAnotherSeed(Recorder):
    """Commits to the split seeds, then reveals others."""

    revealing = False

    def _reveal(self, session: Session, tournament: Tournament) -> None:
        self.revealing = True
        super()._reveal(session, tournament)

    def _split_seed(self, split_key: str | None) -> int:
        return super()._split_seed(split_key) + (1 if self.revealing else 0)


def test_a_signed_decision_the_engine_would_not_make_is_caught(tmp_path: Path) -> None:
    recorded = build_recorded_store(tmp_path / "data", recorder=CrownsTheRunnerUp)
    champion, runner_up = recorded.finished.standings[:2]
    report = verify_directory(recorded.export(tmp_path / "bundle"))
    assert not report.ok
    for check in ("signatures", "inclusion", "consistency", "references"):
        assert failures(report, check) == [], check  # properly signed and logged: only the replay catches it
    bracket = failures(report, "bracket")
    assert any(f"(decision of tournament {recorded.tournament_id}): decided.end.champion: the decision says {runner_up!r}, "
               f"the replayed bracket gives {champion!r}" in f for f in bracket), bracket
    weights = failures(report, "weights")
    assert any(f"weight of {champion}: the decision says" in f and "recomputed 0.5" in f for f in weights), weights
    assert any(f"champion: the database says {champion!r}, the signed decision {runner_up!r}" in f for f in failures(report, "claims"))


def test_a_pool_tournament_verifies_its_commitment_and_reveal(tmp_path: Path) -> None:
    recorded = build_pool_store(tmp_path / "data")
    report = verify_directory(recorded.export(tmp_path / "bundle"))
    assert report.ok, [f"{f.record}: {f.message}" for f in report.failures]
    checked = {c.name: c.checked for c in report.checks}
    assert checked["reveal"] == 1 + len(POOL_TASKS)  # every committed seed opened
    assert checked["hidden_splits"] >= 6  # the runs and evaluations of the tasks played


def test_a_reveal_that_does_not_open_the_commitment_is_caught(tmp_path: Path) -> None:
    recorded = build_pool_store(tmp_path / "data", recorder=RevealsAnotherSeed)
    report = verify_directory(recorded.export(tmp_path / "bundle"))
    reveal = failures(report, "reveal")
    # Only the tasks played are revealed (a drawn task no round needed keeps its seed secret).
    assert 1 <= len(reveal) <= len(POOL_TASKS) and all("the revealed seed and salt hash to" in f for f in reveal), reveal
    assert f"(reveal of tournament {recorded.tournament_id}): task {POOL_TASKS[0]!r}: the revealed seed and salt hash to" in reveal[0]
    assert "the commitment says" in reveal[0]


class RevealsAnotherNoiseSeed(RevealsAnotherSeed):
    """Commits to the image tasks' noise seeds, then reveals others (the split seeds as committed)."""

    def _split_seed(self, split_key: str | None) -> int:
        return Recorder._split_seed(self, split_key)

    def _noise_seed(self, definition: dict[str, Any]) -> int | None:
        seed = super()._noise_seed(definition)
        return None if seed is None else seed + (1 if self.revealing else 0)


class CommitsBeforeNoiseSeeds(RevealsAnotherSeed):
    """Commits as a platform from before image tasks had their own noise seeds (over the split seed
    alone), then reveals as today's, as a tournament committed before an upgrade and finished after."""

    def _split_seed(self, split_key: str | None) -> int:
        return Recorder._split_seed(self, split_key)

    def _noise_seed(self, definition: dict[str, Any]) -> int | None:
        return super()._noise_seed(definition) if self.revealing else None


def reveal_of(recorded: RecordedStore) -> dict[str, Any]:
    """The reveal statement's predicate, read from an export of the store."""
    bundle = recorded.export(recorded.data_dir.parent / "reveal-bundle")
    entries = [json.loads(line) for line in (bundle / "entries.jsonl").read_text().splitlines()]
    [reveal] = [envelope_payload(e["envelope"])["predicate"] for e in entries
                if envelope_payload(e["envelope"])["predicateType"].endswith("/reveal/v1")]
    return reveal


def test_an_image_pool_commits_and_reveals_each_tasks_own_noise_seed(tmp_path: Path) -> None:
    recorded = build_pool_store(tmp_path / "data", task_type=TaskType.IMAGE)
    report = verify_directory(recorded.export(tmp_path / "bundle"))
    assert report.ok, [f"{f.record}: {f.message}" for f in report.failures]
    settings, opened = recorded.settings, reveal_of(recorded)["tasks"]
    assert opened and all(set(task) == {"name", "split_seed", "salt", "noise_seed"} for task in opened)
    for task in opened:  # the seed the evaluator noised with: the task's own, not the split seed, not the public one
        definition = TaskDefinition(task["name"], TaskType.IMAGE, "tiny", {"source": "rows.jsonl"}, 1.0, 0,
                                    split_key=f"{task['name']}:0123abcd")
        assert task["noise_seed"] == noise_master_seed(definition, settings)
        assert task["noise_seed"] not in (task["split_seed"], settings.image.eval_master_seed)
    assert len({task["noise_seed"] for task in opened}) == len(opened)


def test_a_reveal_of_another_noise_seed_than_committed_is_caught(tmp_path: Path) -> None:
    recorded = build_pool_store(tmp_path / "data", recorder=RevealsAnotherNoiseSeed, task_type=TaskType.IMAGE)
    reveal = failures(verify_directory(recorded.export(tmp_path / "bundle")), "reveal")
    assert reveal and all("the revealed seed and salt hash to" in f for f in reveal), reveal


def test_a_commitment_from_before_noise_seeds_is_opened_as_it_was_made(tmp_path: Path) -> None:
    """Records without the noise seed (an image tournament committed before it existed) verify as before:
    the reveal opens what the commitment hashed, the split seed and the salt alone."""
    recorded = build_pool_store(tmp_path / "data", recorder=CommitsBeforeNoiseSeeds, task_type=TaskType.IMAGE)
    report = verify_directory(recorded.export(tmp_path / "bundle"))
    assert report.ok, [f"{f.record}: {f.message}" for f in report.failures]
    opened = reveal_of(recorded)["tasks"]
    assert opened and all(set(task) == {"name", "split_seed", "salt"} for task in opened)


def test_runs_scored_on_another_hidden_split_than_committed_are_caught(tmp_path: Path) -> None:
    changed = POOL_TASKS[1]  # the second round's task
    recorded = build_pool_store(tmp_path / "data", changed_hidden=frozenset({changed}))
    report = verify_directory(recorded.export(tmp_path / "bundle"))
    hidden = failures(report, "hidden_splits")
    assert hidden and all(f"task {changed!r}: hidden split" in f and "but entry 0 (commitment of tournament" in f for f in hidden)
    assert any("(evaluation of run" in f for f in hidden) and any("(run " in f for f in hidden)


def test_a_pool_evaluation_that_names_no_hidden_split_is_caught(tmp_path: Path) -> None:
    recorded = build_pool_store(tmp_path / "data")
    bundle = recorded.export(tmp_path / "bundle")

    def forget_the_split(statement: dict[str, Any]) -> None:
        if statement["predicateType"].endswith("/evaluation/v1"):
            statement["predicate"]["hidden_split_sha256"] = None

    resign_bundle(bundle, load_key(recorded.settings.operator_key_path), forget_the_split)
    hidden = failures(verify_directory(bundle), "hidden_splits")
    assert hidden and all("(evaluation of run" in f and "scored, but names no hidden split to hold against the commitment" in f
                          for f in hidden), hidden


class SignsLikeAnOlderEngine(Recorder):
    """Signs the decision as a platform from before ``boss_rule`` existed would have: its rules lack the
    field (it decided by the majority rule) and its reasons are worded otherwise."""

    def _append_tournament(self, session: Session, tournament: Tournament, what: str, kind: Kind, predicate: dict[str, Any]) -> None:
        if what == "decision":
            rules = {k: v for k, v in predicate["rules"].items() if k != "boss_rule"}
            decided = predicate["decided"]
            predicate = {**predicate, "rules": rules,
                         "decided": {**decided, "end": {**decided["end"], "reason": "worded by an older engine"}}}
        super()._append_tournament(session, tournament, what, kind, predicate)


def test_a_decision_signed_before_a_rule_existed_replays_under_the_rule_of_its_day(tmp_path: Path) -> None:
    recorded = build_recorded_store(tmp_path / "data", recorder=SignsLikeAnOlderEngine)  # played by the majority rule
    report = verify_directory(recorded.export(tmp_path / "bundle"))
    assert report.ok, [f"{f.record}: {f.message}" for f in report.failures]
