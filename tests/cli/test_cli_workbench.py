"""`trainarena run` as a workbench, with a fake executor (no training): ad-hoc runs stored and listed
beside a tournament's, references computed once per task and cached, working trees run unregistered
(committed or not) after registration's checks, several seeds summarised, result.json in every run
folder, and the per-task leaderboard."""

from __future__ import annotations

import json
import os
import re
import subprocess
from html import escape
from pathlib import Path

import pytest
from cli_store import COMPETITORS, FinishedStore, ScriptedExecutor, fake_task
from fastapi.testclient import TestClient
from field_lines import read_fields
from sqlalchemy import select
from typer.testing import CliRunner, Result

import trainarena.cli.run as run_cli
from trainarena.api import create_app
from trainarena.cli import app
from trainarena.contract import Direction, RunStatus
from trainarena.engine.scores import PER_EXAMPLE_FORM, shares
from trainarena.orchestrator import create_tournament, drive
from trainarena.pipeline import SandboxedExecutor
from trainarena.reporting.run_detail import write_result_json
from trainarena.runs import CompetitorInfo, DiskFull, RunReport
from trainarena.settings import Settings
from trainarena.store import Run, add_competitor, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, RunOrigin
from trainarena.submissions.service import register_competitor
from trainarena.tasks.base import Evaluation, TaskDefinition

MANIFEST = '[trainarena]\ncontract = 1\nentrypoint = "train.py"\ntask_types = ["instruct"]\n'
CHAT_ONLY = MANIFEST.replace('["instruct"]', '["chat"]')
EXAMPLES = 8
FULL_DISK = "the data directory's disk is full: /data has 3.0 MB free (a run failed writing its output there); free space and run again"


class CountingExecutor:
    """Scores without training: the base model 4.0, the house script 2.0, anything else 2.5 + seed/100
    (lower is better), each with per-example shares of the score; counts what it was asked to do.
    ``legacy_house``: the house script's evaluation as stored before shares (no per_example_form).
    ``house``, ``script``: (base, step) of a score base + step * seed, to make either depend on the seed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.legacy_house = False
        self.house, self.script = (2.0, 0.0), (2.5, 0.01)
        self.script_fails = False  # the script's runs exit with code 1 (the references still score)
        self.house_fails = False  # the house script's runs exit with code 1
        self.ctrl_c = False  # Ctrl-C while the script runs, after its first log lines
        self.disk_full = False  # the script's runs fail on the platform's full disk, after their first log lines

    def _report(self, run_dir: Path | None, score: float, *, legacy: bool = False) -> RunReport:
        logs = None
        if run_dir is not None:
            logs = run_dir / "logs"
            logs.mkdir(parents=True)
            (logs / "stderr.log").write_text("step 1 loss 2.0\n")
        values = [score + (k % 3 - 1) * 0.1 for k in range(EXAMPLES)]
        per_example = tuple(values if legacy else shares(values, EXAMPLES))
        details = {} if legacy else {"per_example_form": PER_EXAMPLE_FORM}
        return RunReport(RunStatus.SUCCEEDED, 1_700_000_000.0, 1_700_000_030.0, log_path=logs,
                         artifact_path=None if run_dir is None else run_dir / "output", artifact_digest="cd" * 32,
                         evaluation=Evaluation(score, Direction.LOWER, per_example=per_example, details=details))  # fmt: skip

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        self.calls.append((competitor.name, task.seed))
        assert competitor.submission_dir is None or (competitor.submission_dir / "train.py").is_file()
        house = competitor.name == "house script"
        if (self.script_fails and not house) or (self.house_fails and house):
            return RunReport(RunStatus.FAILED, 1_700_000_000.0, 1_700_000_001.0, failure_reason="exited with code 1")
        if (self.ctrl_c or self.disk_full) and not house:
            (run_dir / "logs").mkdir(parents=True)
            (run_dir / "logs" / "stderr.log").write_text("step 7 loss 1.5\n")
            if self.disk_full:
                raise DiskFull(f"run {run_name} not counted: {FULL_DISK}")
            raise KeyboardInterrupt
        base, step = self.house if house else self.script
        return self._report(run_dir, base + step * task.seed, legacy=house and self.legacy_house)

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        self.calls.append(("base model", task.seed))
        return self._report(None, 4.0)

    def close(self) -> None:
        pass


@pytest.fixture
def executor(finished_store: FinishedStore, monkeypatch: pytest.MonkeyPatch) -> CountingExecutor:
    fake = CountingExecutor()
    monkeypatch.setattr(run_cli, "make_executor", lambda settings, unsafe: fake)
    return fake


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "task.toml"
    # Real rows (`task show` prepares them); the model is never loaded, the executor is a fake.
    rows = [{"instruction": f"How many cm in {n} m?", "output": f"{100 * n}"} for n in range(1, 41)]
    (tmp_path / "units.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    path.write_text('name = "units"\ntype = "instruct"\nbase_model = "tiny"\nbudget_seconds = 30\nseed = 5\n'
                    '[dataset]\nsource = "units.jsonl"\nfield_instruction = "instruction"\nfield_output = "output"\n')  # fmt: skip
    return path


def _tree(root: Path, commit: bool, manifest: str = MANIFEST) -> Path:
    root.mkdir()
    (root / "trainarena.toml").write_text(manifest)
    (root / "train.py").write_text("print('v1')\n")
    if commit:
        _commit_all(root)
        (root / "train.py").write_text("print('v2, not committed')\n")
    return root


def _commit_all(root: Path) -> str:
    """``git init`` and commit everything in ``root``; returns the commit's SHA."""
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})


def test_a_run_gets_the_cpu_share_of_a_tournament_run_alone(finished_store: FinishedStore, task_file: Path,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/contract.md: `trainarena run` runs a script as a tournament would; a tournament's driver gives
    each run cores // --parallel threads (and the CPU cap), so a run alone gets every core, as with
    --parallel 1, unless the operator set sandbox.cpus_per_run."""
    fake, given = CountingExecutor(), []
    monkeypatch.setattr(run_cli, "make_executor", lambda settings, unsafe: given.append(settings.sandbox.cpus_per_run) or fake)
    tree = _tree(tmp_path / "tree", commit=False)
    assert _invoke("run", "--repo", str(tree), "--task", str(task_file), "--no-reference").exit_code == 0
    monkeypatch.setenv("TRAINARENA_SANDBOX__CPUS_PER_RUN", "3")
    assert _invoke("run", "--repo", str(tree), "--task", str(task_file), "--no-reference").exit_code == 0
    assert given == [os.cpu_count(), 3]


def test_references_are_computed_once_per_task_and_cached(executor: CountingExecutor, task_file: Path, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "mine", commit=False)
    first = _invoke("run", "--repo", str(tree), "--task", str(task_file))
    assert first.exit_code == 0, first.output
    assert executor.calls == [("base model", 5), ("house script", 5), ("mine", 5)]
    lines = {line.split("  ")[0]: line for line in first.stdout.splitlines()}
    assert "2.5500 (lower is better)" in lines["score"]
    assert "4.0000, the script is 36.3% better" in lines["base model"]
    assert "2.0000, the script is 27.5% worse" in lines["house script"]
    assert all(len(line) <= 80 for line in first.stdout.splitlines() if not line.startswith(("script", "artifact", "logs")))

    second = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--json")
    assert second.exit_code == 0, second.output
    assert executor.calls[3:] == [("crasher", 5)]  # the references came from the store
    [run] = json.loads(second.stdout)["runs"]
    assert [(r["label"], r["score"]) for r in run["references"]] == [("base model", 4.0), ("house script", 2.0)]

    skipped = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--no-reference")
    assert executor.calls[4:] == [("crasher", 5)]
    # No reference line: the QA saw "house script  not run on this seed", as if the house run were still owed.
    lines = {line.split("  ")[0]: line for line in skipped.stdout.splitlines()}
    assert "house script" not in lines and "base model" not in lines and "not run on this seed" not in skipped.stdout
    assert lines["references"].split()[1:] == ["skipped", "(--no-reference)"]
    [run] = json.loads(_invoke("run", "--competitor", "crasher", "--task", str(task_file), "--no-reference", "--json").stdout)["runs"]
    assert run["references"] == []


def test_a_script_scoring_exactly_as_the_base_model_is_told_why_that_may_be(executor: CountingExecutor, task_file: Path,
                                                                           tmp_path: Path) -> None:  # fmt: skip
    """The QA's copy of the house script scored as the base model on a GRPO seed: its guard kept the base
    weights. "the script is 0.0% better" read as a run that failed to do anything."""
    executor.script = (4.0, 0.0)
    shown = _invoke("run", "--repo", str(_tree(tmp_path / "mine", commit=False)), "--task", str(task_file))
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert ("base model 4.0000, exactly the script's score: it saved the base weights or a model scoring as they do "
            "(its stdout log may say why)") in text
    assert "house script 2.0000, the script is 100.0% worse" in text


def test_adhoc_runs_are_listed_and_shown_beside_tournament_runs(executor: CountingExecutor, task_file: Path, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "mine", commit=True)
    ran = _invoke("run", "--repo", str(tree), "--task", str(task_file), "--json")
    assert ran.exit_code == 0, ran.output
    [run] = json.loads(ran.stdout)["runs"]
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert (run["origin"], run["repo_url"], run["commit"], run["dirty"]) == ("adhoc", str(tree.resolve()), head, True)
    # The sandbox ran a snapshot holding the uncommitted edit; the tree itself is not registered.
    assert (Path(run["snapshot_path"]) / "train.py").read_text() == "print('v2, not committed')\n"
    assert "mine" not in _invoke("competitor", "list").stdout

    listed = json.loads(_invoke("runs", "list", "--json").stdout)
    origins = [line["origin"] for line in listed]
    assert origins[0] == "tournament" and origins[-3:] == ["base_model", "house", "adhoc"]
    assert [line["run_id"] for line in json.loads(_invoke("runs", "list", "--tournament", "ad hoc", "--json").stdout)] == \
        [line["run_id"] for line in listed[-3:]]  # fmt: skip
    assert [line["origin"] for line in json.loads(_invoke("runs", "list", "--task", "units", "--json").stdout)] == origins[-3:]
    table = _invoke("runs", "list", "--tournament", "ad hoc")
    assert table.exit_code == 0 and all(len(line) <= 80 for line in table.stdout.splitlines())
    assert "mine (tree)" in table.stdout and "house scr" in table.stdout and "ad hoc" in table.stdout

    shown = _invoke("runs", "show", str(run["run_id"]))
    fields, _ = read_fields(shown.stdout, 80)
    assert fields["played"] == "ad hoc (`trainarena run`)"
    assert f"at {head}, with uncommitted changes" in fields["competitor"]
    assert "(run " in fields["house script"] and "this run 27.5% worse" in fields["house script"]
    assert json.loads(_invoke("runs", "show", str(run["run_id"]), "--json").stdout)["score"] == pytest.approx(2.55)


def test_a_customer_job_run_is_shown_as_a_job_not_a_reference(executor: CountingExecutor, task_file: Path) -> None:
    """`runs show` (the operator's view of a job's run) said `played  reference: job`."""
    [run] = json.loads(_invoke("run", "--competitor", "crasher", "--task", str(task_file), "--no-reference", "--json").stdout)["runs"]
    with open_store(Settings()) as store, store.transaction() as session:
        session.get_one(Run, run["run_id"]).origin = RunOrigin.JOB  # as the job runner records its runs
    fields, _ = read_fields(_invoke("runs", "show", str(run["run_id"])).stdout, 80)
    assert fields["played"] == "a customer's training job (units; `trainarena jobs show units`)"


def test_result_json_holds_what_runs_show_prints(executor: CountingExecutor, task_file: Path, finished_store: FinishedStore) -> None:
    ran = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--json")
    [run] = json.loads(ran.stdout)["runs"]
    shown = json.loads(_invoke("runs", "show", str(run["run_id"]), "--json").stdout)
    written = json.loads((finished_store.data_dir / "runs" / "adhoc" / f"run-{run['run_id']}" / "result.json").read_text())
    assert written == shown and written["status"] == "succeeded" and written["stderr_tail"] == "step 1 loss 2.0"


def test_working_tree_gets_registrations_checks(executor: CountingExecutor, task_file: Path, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "heavy", commit=False)
    (tree / "weights.safetensors").write_bytes(b"0" * 16)
    refused = _invoke("run", "--repo", str(tree), "--task", str(task_file))
    assert refused.exit_code == 2 and "model weights or datasets must not be in the repository" in refused.output
    assert "weights.safetensors" in refused.output
    (tree / "weights.safetensors").unlink()
    (tree / "trainarena.toml").write_text(MANIFEST.replace("train.py", "missing.py"))
    refused = _invoke("run", "--repo", str(tree), "--task", str(task_file))
    assert refused.exit_code == 2 and "'missing.py'" in refused.output
    assert executor.calls == []
    both = _invoke("run", "--repo", str(tree), "--competitor", "crasher", "--task", str(task_file))
    assert both.exit_code == 2 and "give one, not both: --competitor NAME" in both.output
    missing = _invoke("run", "--repo", str(tmp_path / "nope"), "--task", str(task_file))
    assert missing.exit_code == 2 and f"--repo {tmp_path / 'nope'}: no such folder" in missing.output
    assert missing.output.count("--repo") == 1  # the prefix once, not "--repo nope: --repo nope: ..."


def test_a_missing_house_script_is_named_with_the_fix(executor: CountingExecutor, task_file: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("TRAINARENA_WORKBENCH__HOUSE_SCRIPT", str(tmp_path / "gone"))
    refused = _invoke("run", "--competitor", "crasher", "--task", str(task_file))
    assert refused.exit_code == 2 and f"the house script at {tmp_path / 'gone'} cannot be run" in refused.output
    assert "--no-reference" in refused.output and executor.calls == [("base model", 5)]


def test_a_house_run_stored_before_shares_is_compared_by_score_alone(executor: CountingExecutor, task_file: Path) -> None:
    """Per-example means (old rows) and shares are on different scales: never paired."""
    executor.legacy_house = True
    ran = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--seeds", "3", "--json")
    assert ran.exit_code == 0, ran.output
    lead = json.loads(ran.stdout)["summary"]["lead_over_house"]
    assert lead["estimate"] == pytest.approx(-0.56) and not lead["paired_per_example"]


def test_seeds_are_summarised_against_the_house_script(executor: CountingExecutor, task_file: Path) -> None:
    ran = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--seeds", "3", "--json")
    assert ran.exit_code == 0, ran.output
    assert [call for call in executor.calls if call[0] == "crasher"] == [("crasher", 5), ("crasher", 6), ("crasher", 7)]
    result = json.loads(ran.stdout)
    assert [run["seed"] for run in result["runs"]] == [5, 6, 7]
    summary = result["summary"]
    assert summary["mean"] == pytest.approx(2.56) and summary["min"] == pytest.approx(2.55) and summary["max"] == pytest.approx(2.57)
    assert summary["std"] == pytest.approx(0.01)
    lead = summary["lead_over_house"]
    assert lead["estimate"] == pytest.approx(-0.56) and lead["paired_per_example"] and lead["clear"]
    assert lead["low"] <= lead["estimate"] <= lead["high"] < 0

    text = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--seeds", "2")
    assert text.exit_code == 0, text.output
    assert "2 seeds" in text.stdout and "std 0.0071" in text.stdout and "a clear difference" in text.stdout
    assert "95%: -0.6185 to -0.4915, paired per example" in text.stdout
    assert "both scripts' seed noise, over 2 seeds run by both" in text.stdout
    assert "4.0000, the mean is 36.1% better" in text.stdout and "2.0000 over the same 2 seeds, the mean is 27.7% worse" in text.stdout
    assert all(len(line) <= 80 for line in text.stdout.splitlines())


def test_the_house_script_runs_once_per_seed_and_is_cached(executor: CountingExecutor, task_file: Path) -> None:
    ran = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--seeds", "3", "--json")
    assert ran.exit_code == 0, ran.output
    house = [call for call in executor.calls if call[0] == "house script"]
    assert house == [("house script", 5), ("house script", 6), ("house script", 7)]
    assert json.loads(ran.stdout)["summary"]["house_scores"] == [2.0, 2.0, 2.0]
    again = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--seeds", "4")
    assert again.exit_code == 0, again.output
    # Seeds 5-7 come from the store; only the new seed 8 is run, and a single seed runs no house script.
    assert [call for call in executor.calls if call[0] == "house script"] == [*house, ("house script", 8)]
    assert _invoke("run", "--competitor", "crasher", "--task", str(task_file)).exit_code == 0
    assert len([call for call in executor.calls if call[0] == "house script"]) == 4


def test_an_exact_copy_of_the_house_script_is_no_clear_difference(executor: CountingExecutor, task_file: Path) -> None:
    """Both score 2.0 + 0.1 per seed above the task's: against one house run (seed 5) the copy's later
    seeds looked worse; seed by seed they are equal."""
    executor.house = executor.script = (1.5, 0.1)
    ran = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--seeds", "4", "--json")
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.stdout)["summary"]
    lead = summary["lead_over_house"]
    assert lead["estimate"] == pytest.approx(0.0) and not lead["clear"] and lead["seeds_paired"] == 4
    assert summary["house_scores"] == pytest.approx([2.0, 2.1, 2.2, 2.3])
    text = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--seeds", "4")
    assert "within the noise" in text.stdout and "a clear difference" not in text.stdout


def test_a_script_better_on_every_seed_is_a_clear_difference(executor: CountingExecutor, task_file: Path) -> None:
    """0.1 better than the house script on each seed, while both move by 0.3 a seed: against the
    house run on the task's seed alone the script looked worse."""
    executor.house, executor.script = (0.5, 0.3), (0.4, 0.3)
    ran = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--seeds", "4", "--json")
    assert ran.exit_code == 0, ran.output
    lead = json.loads(ran.stdout)["summary"]["lead_over_house"]
    assert lead["estimate"] == pytest.approx(0.1) and lead["clear"] and lead["low"] > 0.09


def test_task_leaderboard_ranks_everything_run_on_the_task(executor: CountingExecutor, task_file: Path, tmp_path: Path) -> None:
    _invoke("run", "--repo", str(_tree(tmp_path / "mine", commit=False)), "--task", str(task_file), "--seeds", "2")
    _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--seeds", "2")
    shown = _invoke("task", "show", str(task_file), "--leaderboard", "--json")
    assert shown.exit_code == 0, shown.output
    board = json.loads(shown.stdout)["leaderboard"]
    lines = [(line["rank"], line["entrant"], line["best_score"], line["runs"]) for line in board["lines"]]
    assert lines == [(1, "house script", 2.0, 2), (2, str((tmp_path / "mine").resolve()), 2.55, 2),
                     (3, "crasher", 2.55, 2), (4, "base model", 4.0, 1)]  # fmt: skip
    assert board["direction"] == "lower" and board["other_digests"] == []
    digest = json.loads(_invoke("task", "show", str(task_file), "--json").stdout)["task_digest"]  # docs/workbench.md
    listed = _invoke("runs", "list", "--task", digest, "--json")
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.stdout)) == sum(line[3] for line in lines)
    text = _invoke("task", "show", str(task_file), "--leaderboard")
    assert text.exit_code == 0 and "house script" in text.stdout
    assert all(len(line) <= 80 for line in text.stdout.splitlines() if line.startswith(("│", "┃")))
    untried = task_file.with_name("untried.toml")  # another budget: another task, on which nothing ran
    untried.write_text(task_file.read_text().replace("budget_seconds = 30", "budget_seconds = 31"))
    shown = _invoke("task", "show", str(untried), "--leaderboard", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["leaderboard"] is None
    assert "no run is stored on this task yet" in _invoke("task", "show", str(untried), "--leaderboard").stdout



def test_tournament_runs_write_result_json_once_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's drive writes each run's result.json through ``on_stored`` (the same writer as ad hoc)."""
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    settings = Settings()
    names = list(COMPETITORS)
    with open_store(settings) as store:
        with store.transaction() as session:
            for name in names:
                add_competitor(session, name=name, repo_url=f"https://x/{name}", commit="1" * 40, tree_hash=name,
                               source_digest=name, entrypoint="train.py")  # fmt: skip
            tournament_id = create_tournament(session, name="week-1", kind="text", seed=1, entrants=names).id
        drive(store, tournament_id, task_source=fake_task, executor=ScriptedExecutor(), rules=settings.rules,
              weight_rules=settings.weights, work_dir=settings.work_dir,
              on_stored=lambda run_id, run_dir: write_result_json(store, run_id, run_dir))  # fmt: skip
    written = sorted(settings.work_dir.glob("tournament-*/run-*/attempt-1/result.json"))
    listed = json.loads(_invoke("runs", "list", "--json").stdout)
    assert len(written) == len(listed) > 0
    for path in written:
        data = json.loads(path.read_text())
        shown = json.loads(_invoke("runs", "show", str(data["run_id"]), "--json").stdout)
        # written while the run is stored: the store step's seconds, recorded after, are not in it yet
        assert data | {"steps": None} == shown | {"steps": None}
        assert (data["steps"] or {}) == {step: seconds for step, seconds in shown["steps"].items() if step != "store"}
        assert data["origin"] == "tournament" and data["tournament"] == "week-1" and data["task_digest"]


def test_image_tasks_are_compared_with_the_house_script_alone(executor: CountingExecutor, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """An image artifact is a LoRA; the base model is not one, so it is no reference there."""
    house = _tree(tmp_path / "image_house", commit=False)
    monkeypatch.setenv("TRAINARENA_WORKBENCH__IMAGE_HOUSE_SCRIPT", str(house))
    monkeypatch.setattr(run_cli, "_check_dataset", lambda *args: None)  # no images: the fake executor reads none
    task = tmp_path / "image.toml"
    task.write_text('name = "style"\ntype = "image"\nbase_model = "tiny-sd"\nbudget_seconds = 30\n'
                    '[dataset]\nsource = "images"\n')  # fmt: skip
    ran = _invoke("run", "--competitor", "crasher", "--task", str(task), "--json")
    assert ran.exit_code == 0, ran.output
    assert executor.calls == [("house script", 0), ("crasher", 0)]
    assert [line["kind"] for line in json.loads(ran.stdout)["runs"][0]["references"]] == ["house"]


def test_status_shows_the_latest_runs_outside_tournaments(executor: CountingExecutor, task_file: Path, tmp_path: Path) -> None:
    """An ad-hoc score is not only in scrollback: `status` lists the latest runs made with `trainarena run`."""
    assert "outside tournaments" not in _invoke("status").stdout  # nothing run yet
    _invoke("run", "--repo", str(_tree(tmp_path / "mine", commit=False)), "--task", str(task_file))
    text = _invoke("status")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert "Latest runs outside tournaments" in text.stdout
    title = next(i for i, line in enumerate(lines) if "Latest runs outside tournaments" in line)
    rows = [line for line in lines[title:] if line.startswith("│")]
    assert all(len(row) <= 80 for row in rows)
    assert len(rows) == 3 and "2.5500" in rows[-1] and "ad hoc" in rows[-1]  # the two references, then the run
    latest = json.loads(_invoke("status", "--json").stdout)["latest_adhoc_runs"]
    assert [(run["origin"], run["score"]) for run in latest][-1] == ("adhoc", 2.55)


def test_a_task_type_the_manifest_does_not_declare_is_one_line_and_stores_nothing(executor: CountingExecutor, task_file: Path,
                                                                                 tmp_path: Path) -> None:  # fmt: skip
    """QA cli 5: it stored a failed ad-hoc run each try; the manifest is read before anything runs."""
    tree = _tree(tmp_path / "chatty", commit=False, manifest=CHAT_ONLY)
    refused = _invoke("run", "--repo", str(tree), "--task", str(task_file))
    assert refused.exit_code == 2, refused.output
    assert refused.output == ("error: chatty: the script does not support instruct tasks (its trainarena.toml declares "
                              "task_types: chat); not run\n")
    assert executor.calls == []
    with open_store(Settings()) as store, store.session() as session:
        assert set(session.scalars(select(Run.origin))) == {RunOrigin.TOURNAMENT}  # the finished store's, no other


def test_a_dataset_problem_known_up_front_is_one_line_and_stores_nothing(executor: CountingExecutor, task_file: Path) -> None:
    """QA cli 5: a missing column (which `task check` reports in one line) stored three failed runs per
    try (the base model, the house script, the script); the dataset is checked as `task check` does."""
    task_file.write_text(task_file.read_text().replace('field_output = "output"', 'field_output = "wrongcol"'))
    checked = _invoke("task", "check", str(task_file))
    for args in ((), ("--json",)):
        refused = _invoke("run", "--repo", str(_tree(task_file.parent / f"t{len(args)}", commit=False)), "--task", str(task_file), *args)
        assert refused.exit_code == 2, refused.output
        if args:
            assert json.loads(refused.stdout) == {"ok": False, "task": str(task_file), "error": "--task " + checked.output.removeprefix("error: ").strip()}
        else:
            assert refused.output == "error: --task " + checked.output.removeprefix("error: ")
            assert "missing column 'wrongcol' (field_output)" in refused.output
    assert executor.calls == []
    with open_store(Settings()) as store, store.session() as session:
        assert set(session.scalars(select(Run.origin))) == {RunOrigin.TOURNAMENT}  # the finished store's, no other


class NeverRun:
    """A sandbox backend that must not be reached: the script is refused before it would start."""

    def run(self, job):
        raise AssertionError(f"nothing should run in a sandbox here: {job}")

    def close(self) -> None:
        pass


def test_a_registered_competitor_whose_manifest_leaves_the_type_out_costs_no_reference(
    finished_store: FinishedStore, task_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The QA found `run --competitor` paid for the base model's score and the house script's run
    (minutes) before its run refused the task type; then it stored a failed run: now nothing runs or is stored."""
    commit = _commit_all(_tree(tmp_path / "chatty", commit=False, manifest=CHAT_ONLY))
    settings = Settings()
    with open_store(settings) as store, store.transaction() as session:
        register_competitor(session, settings, name="chatty", repo=str(tmp_path / "chatty"), commit=commit)
        before = set(session.scalars(select(Run.id)))
    # The real executor, whose base model scoring or house script run would fail on the fake model.
    monkeypatch.setattr(run_cli, "make_executor", lambda settings, unsafe: SandboxedExecutor(settings, NeverRun()))
    ran = _invoke("run", "--competitor", "chatty", "--task", str(task_file), "--json")
    assert ran.exit_code == 2, ran.output
    assert json.loads(ran.stdout) == {"ok": False, "task": str(task_file), "error": "chatty: the script does not support "
                                      "instruct tasks (its trainarena.toml declares task_types: chat); not run"}
    with open_store(settings) as store, store.session() as session:
        assert set(session.scalars(select(Run.id))) == before


def test_a_failed_house_run_is_named_not_taken_for_a_missing_one(executor: CountingExecutor, task_file: Path) -> None:
    """The house line said 'not run on this seed' also when the house script had run there and failed:
    each place that shows the line says it failed instead, with the run and why."""
    executor.house_fails = True
    ran = _invoke("run", "--competitor", "crasher", "--task", str(task_file))
    assert ran.exit_code == 0, ran.output
    [house_id] = _runs_of(RunOrigin.HOUSE)
    said = f"failed on this seed (run {house_id}: exited with code 1)"
    assert read_fields(ran.stdout, 80)[0]["house script"] == said
    run_id = json.loads(_invoke("runs", "list", "--json").stdout)[-1]["run_id"]
    assert read_fields(_invoke("runs", "show", str(run_id)).stdout, 80)[0]["house script"] == said
    house = {"kind": "house", "label": "house script", "run_id": house_id, "score": None, "improvement": None, "missing": said}
    assert json.loads(_invoke("runs", "show", str(run_id), "--json").stdout)["references"][-1] == house
    settings = Settings()
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as client:
        with store.transaction() as session:
            key = create_key(session, "reader", ApiRole.COMPETITOR).secret
        detail = client.get(f"/v1/runs/{run_id}", headers={"Authorization": f"Bearer {key}"})
        assert detail.status_code == 200 and detail.json()["references"][-1] == house
        page = client.get(f"/runs/{run_id}").text
    assert f'<a href="/runs/{house_id}">house script</a></td><td colspan="2">{escape(said)}</td>' in page


def _runs_of(origin: str) -> list[int]:
    with open_store(Settings()) as store, store.session() as session:
        return list(session.scalars(select(Run.id).where(Run.origin == origin).order_by(Run.id)))


def test_a_run_is_compared_with_the_house_run_on_its_own_seed_for_good(executor: CountingExecutor, task_file: Path) -> None:
    """The QA found that once `--seeds 2` stored a house run for seed 6, every run on the task, those
    stored before included, was compared with it: a stored comparison changed after the fact, and the
    summary set a 2-seed mean against one seed's house score."""
    executor.house = (1.5, 0.1)  # the house script scores 2.0 on seed 5, 2.1 on seed 6
    first = json.loads(_invoke("run", "--competitor", "crasher", "--task", str(task_file), "--json").stdout)["runs"][0]
    [house_5] = [line for line in first["references"] if line["kind"] == RunOrigin.HOUSE]
    assert house_5["score"] == pytest.approx(2.0)

    seeds = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--seeds", "2", "--json")
    assert seeds.exit_code == 0, seeds.output
    result = json.loads(seeds.stdout)
    by_seed = {run["seed"]: next(line for line in run["references"] if line["kind"] == RunOrigin.HOUSE) for run in result["runs"]}
    assert by_seed[5]["run_id"] == house_5["run_id"] and by_seed[6]["score"] == pytest.approx(2.1)
    assert result["summary"]["house_mean"] == pytest.approx(2.05)

    # Afterwards: the first run still reads against the seed-5 house run, everywhere it is shown.
    shown = json.loads(_invoke("runs", "show", str(first["run_id"]), "--json").stdout)
    assert shown["references"] == first["references"]
    fields, _ = read_fields(_invoke("runs", "show", str(first["run_id"])).stdout, 80)
    assert fields["house script"] == f"2.000000 (run {house_5['run_id']}, this run 27.5% worse)"
    seed_6 = result["runs"][1]
    fields, _ = read_fields(_invoke("runs", "show", str(seed_6["run_id"])).stdout, 80)
    assert fields["house script"] == f"2.100000 (run {by_seed[6]['run_id']}, this run 21.9% worse)"

    # The summary's house line is the house mean over the same seeds (2.05), not the last seed's 2.1.
    text = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--seeds", "2")
    fields, _ = read_fields(text.stdout.split("└")[-1].split("\n", 1)[1], 80)  # the lines under the table
    assert fields["house script"] == "2.0500 over the same 2 seeds, the mean is 24.6% worse"
    rows = [line for line in text.stdout.splitlines() if line.startswith("│")]
    assert "27.5% worse" in rows[0] and "21.9% worse" in rows[1]


def test_runs_list_filters_by_the_names_its_table_shows(executor: CountingExecutor, task_file: Path, tmp_path: Path) -> None:
    """The QA found `--competitor` refused `mine (tree)`, `house script` and `base model`, and
    `--tournament` refused `reference`, all of which the table itself shows."""
    _invoke("run", "--repo", str(_tree(tmp_path / "mine", commit=False)), "--task", str(task_file))
    _invoke("run", "--competitor", "crasher", "--task", str(task_file))

    def listed(*filters: str) -> list[tuple[str, str]]:
        result = _invoke("runs", "list", "--json", *filters)
        assert result.exit_code == 0, result.output
        return [(run["origin"], run["competitor"]) for run in json.loads(result.stdout)]

    assert listed("--competitor", "mine (tree)") == [("adhoc", "mine (tree)")]
    assert listed("--competitor", str((tmp_path / "mine").resolve())) == [("adhoc", "mine (tree)")]  # as the task board shows it
    assert listed("--competitor", "house script") == [("house", "house script")]
    assert listed("--competitor", "base model") == [("base_model", "base model")]
    assert listed("--tournament", "reference") == [("base_model", "base model"), ("house", "house script")]
    assert listed("--tournament", "ad hoc", "--competitor", "crasher") == [("adhoc", "crasher")]
    table = _invoke("runs", "list", "--tournament", "reference")
    assert table.exit_code == 0 and "house scr" in table.stdout and "mine" not in table.stdout
    unknown = _invoke("runs", "list", "--competitor", "other (tree)")
    assert unknown.exit_code == 1
    assert ("the competitor filter takes a registered competitor's name, a working tree's as the list shows it "
            "('NAME (tree)') or its path, 'base model' or 'house script'") in " ".join(unknown.stderr.split())
    unknown = _invoke("runs", "list", "--tournament", "nope")
    assert "or 'ad hoc' for the runs outside tournaments ('reference' for the references alone, 'audit' for the audits)" \
        in " ".join(unknown.stderr.split())  # fmt: skip


def test_a_failed_run_says_it_has_no_comparison(executor: CountingExecutor, task_file: Path) -> None:
    """The QA saw `base model  8.2464, the script is -`: a sentence with no comparison in it."""
    executor.script_fails = True
    ran = _invoke("run", "--competitor", "crasher", "--task", str(task_file))
    assert ran.exit_code == 1, ran.output
    fields, _ = read_fields(ran.stdout, 80)
    assert fields["status"] == "failed"
    assert fields["base model"] == "4.0000 (no comparison: the run has no score)"
    assert fields["house script"] == "2.0000 (no comparison: the run has no score)"


def test_ctrl_c_keeps_the_runs_logs_and_names_the_run(executor: CountingExecutor, task_file: Path) -> None:
    """The QA saw exit 130 with nothing printed, and the run stored with no log path although its logs
    were on disk: `runs show` and the dashboard said no log was kept."""
    executor.ctrl_c = True
    ran = _invoke("run", "--competitor", "crasher", "--task", str(task_file), "--no-reference")
    assert ran.exit_code == 130, ran.output
    [run_id] = [int(word) for word in ran.output.split() if word.isdigit()]
    assert ran.output.strip().splitlines()[-1] == f"interrupted: run {run_id} stored as failed"
    shown = json.loads(_invoke("runs", "show", str(run_id), "--json").stdout)
    assert shown["status"] == "failed" and shown["failure_reason"] == "stopped before it finished: KeyboardInterrupt"
    assert shown["log_path"] == str(Settings().work_dir / "adhoc" / f"run-{run_id}" / "logs")
    assert "step 7 loss 1.5" in _invoke("runs", "show", str(run_id)).stdout


@pytest.mark.parametrize("json_output", [False, True])
def test_a_full_disk_is_one_line_and_stores_no_failed_run(executor: CountingExecutor, task_file: Path, json_output: bool) -> None:
    """The platform's full disk is not the script's failure: nothing of the run is stored (as a tournament's
    run withdrawn, docs/rules.md), and the command ends with the demo's one line, not a traceback."""
    executor.disk_full = True
    before = _runs_of(RunOrigin.ADHOC)
    ran = _invoke("run", "--competitor", "crasher", "--task", str(task_file), *(["--json"] if json_output else []))
    assert ran.exit_code == 1 and "Traceback" not in ran.output, ran.output
    found = re.search(r"run (adhoc-run\d+) not counted", ran.output)
    assert found is not None, ran.output
    run_name = found.group(1)
    message = f"run {run_name} not counted: {FULL_DISK}"
    if json_output:
        assert json.loads(ran.stdout) == {"ok": False, "task": str(task_file), "error": message}
    else:
        assert ran.stderr.strip().splitlines()[-1] == f"error: {message}"
    assert _runs_of(RunOrigin.ADHOC) == before  # no failed run held against the script
    assert [origin for origin in (RunOrigin.BASE_MODEL, RunOrigin.HOUSE) if _runs_of(origin)] == [RunOrigin.BASE_MODEL, RunOrigin.HOUSE]
    assert not (Settings().work_dir / "adhoc" / run_name.replace("adhoc-", "")).exists()
