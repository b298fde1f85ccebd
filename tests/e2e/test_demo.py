"""End to end: `trainarena demo` and `trainarena run` through the real sandbox, store, engine and
evaluator, with stand-in competitors that finish in a second (the real example scripts train for
tens of seconds each; the benchmarks and the README's demo exercise those)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stand_ins import copier
from trainarena.cli import app
from trainarena.cli.demo import EXIT_TOURNAMENT_BUSY
from trainarena.demo.example_repos import example_commit, make_example_repo
from trainarena.demo.text import set_up_demo
from trainarena.settings import Settings
from trainarena.store import get_competitor, list_tournaments, open_store, tournament_runs
from trainarena.store.leases import DriverIdentity, try_acquire

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "competitors"

@pytest.fixture()
def examples(tmp_path: Path) -> Path:
    """Stand-ins under the demo's names: two copiers (baseline and the default champion), plus the
    real crasher and hostile examples."""
    root = tmp_path / "examples"
    copier(root / "baseline")
    copier(root / "trl_defaults")
    for name in ("crasher", "hostile"):
        make_example_repo(EXAMPLES / name, root / name)  # `demo --examples` plays git repositories
    return root


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, assets) -> Path:
    data = tmp_path / "data"
    # Reuse the session's asset build instead of building the tiny model again.
    (data / "cache").mkdir(parents=True)
    (data / "cache" / "assets").symlink_to(assets.root.parent, target_is_directory=True)
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(data))
    monkeypatch.setenv("TRAINARENA_SANDBOX__GRACE_SECONDS", "1")
    # Instruct tasks only: the stand-ins declare instruct alone (the mix of types has its own tests).
    monkeypatch.setenv("TRAINARENA_TASK_MIX__DPO", "0")
    monkeypatch.setenv("TRAINARENA_TASK_MIX__GRPO", "0")
    return data


@pytest.mark.parametrize("sandbox", ["bwrap", pytest.param("docker", marks=pytest.mark.docker)])
def test_demo_plays_to_a_champion_and_records_every_failure(
    sandbox: str, examples: Path, data_dir: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if sandbox == "docker":
        request.getfixturevalue("docker_daemon")  # a daemon, or a skip saying why
        monkeypatch.setenv("TRAINARENA_SANDBOX__BACKEND", "docker")
    result = CliRunner().invoke(app, ["demo", "--examples", str(examples), "--budget", "20", "--json"])
    assert result.exit_code == 0, result.output
    board = json.loads(result.stdout)
    standings = {s["competitor"]: s for s in board["leaderboard"]}
    assert set(standings) == {"baseline", "crasher", "hostile", "trl_defaults"}
    # Equal scores cannot clear the boss margin: the defending champion keeps the title.
    assert board["champion_before"] == "trl_defaults"
    assert board["champion"] == "trl_defaults" and not board["crowned"]
    assert [s["competitor"] for s in board["leaderboard"] if s["rank"] == 1] == ["trl_defaults"]
    assert any(line["stage"] == "boss" for line in board["runs"])
    assert standings["baseline"]["runs_ok"] == standings["baseline"]["runs"] > 0
    # The crasher's reason carries its own traceback line; the hostile script left no artifact.
    assert "deliberate failure" in " ".join(standings["crasher"]["failures"].values())
    assert "output directory is empty" in " ".join(standings["hostile"]["failures"].values())
    assert standings["crasher"]["rank"] is None and standings["hostile"]["rank"] is None
    scores = [line["score"] for line in board["runs"] if line["status"] == "succeeded"]
    assert scores and all(0 < score < 20 for score in scores)
    # Every run's folder holds its result.json, as `runs show --json` prints it.
    results = [json.loads(p.read_text()) for p in (data_dir / "runs").glob("tournament-*/run-*/attempt-*/result.json")]
    assert sorted(r["run_id"] for r in results) == sorted(line["run_id"] for line in board["runs"])
    reports = [p.read_text() for p in (data_dir / "runs").rglob("sandbox.txt")]
    assert len(reports) == len(results) and all(r.startswith(f"backend={sandbox}") for r in reports)

    # A second demo is a new tournament against the same champion; the first is kept as it was.
    with open_store(Settings()) as store, store.session() as session:
        assert [t.status for t in list_tournaments(session)] == ["finished"]


def test_unfinished_demo_is_resumed_not_replaced(examples: Path, data_dir: Path) -> None:
    settings = Settings()
    with open_store(settings) as store:
        first = set_up_demo(store, settings, seed=3, examples=examples)
        again = set_up_demo(store, settings, seed=3, examples=examples)
    assert not first.resumed and set(first.registered) == {"baseline", "crasher", "hostile", "trl_defaults"}
    assert again.resumed and again.tournament_id == first.tournament_id and again.registered == ()


def _half_made_example_repo(data_dir: Path, name: str = "baseline") -> Path:
    """What a set-up of the bundled examples killed inside an older make_example_repo left: the copied
    folder, no commit."""
    repo = data_dir / "example-repos" / name
    shutil.copytree(EXAMPLES / name, repo)
    return repo


def test_a_demo_set_up_killed_while_making_an_example_repo_resumes(data_dir: Path) -> None:
    repo = _half_made_example_repo(data_dir)
    settings = Settings()
    with open_store(settings) as store:
        setup = set_up_demo(store, settings, seed=3)
        with store.session() as session:
            commit = get_competitor(session, "baseline").commit
    assert "baseline" in setup.registered and commit == example_commit(repo)
    assert [p.name for p in (data_dir / "example-repos").iterdir() if p.name.startswith(".")] == []


def test_a_half_made_example_repo_inside_a_checkout_is_not_taken_for_the_checkout(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's data dir is ./.trainarena inside the trainarena checkout: git asked in the half-made
    folder walks up and answers the checkout's HEAD, which must not be registered as the example's."""
    checkout = tmp_path / "checkout"
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "PATH": "/usr/bin:/bin",
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}  # fmt: skip
    subprocess.run(["git", "init", "-q", str(checkout)], check=True, env=env)
    subprocess.run(["git", "-C", str(checkout), "commit", "-q", "--allow-empty", "-m", "x"], check=True, env=env)
    checkout_head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], check=True, env=env,
                                   capture_output=True, text=True).stdout.strip()  # fmt: skip
    inside = checkout / ".trainarena"
    (inside / "cache").mkdir(parents=True)
    (inside / "cache" / "assets").symlink_to((data_dir / "cache" / "assets").resolve(), target_is_directory=True)
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(inside))
    repo = _half_made_example_repo(inside)
    settings = Settings()
    with open_store(settings) as store:
        set_up_demo(store, settings, seed=3)
        with store.session() as session:
            commit = get_competitor(session, "baseline").commit
    assert commit != checkout_head and commit == example_commit(repo)


def test_a_failed_example_repo_leaves_no_folder(examples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trainarena.demo import example_repos

    def refused(repo: Path, *args: str) -> str:
        if args[0] == "commit":
            raise RuntimeError("git commit failed")
        return real(repo, *args)

    real = example_repos._git
    monkeypatch.setattr(example_repos, "_git", refused)
    with pytest.raises(RuntimeError, match="git commit failed"):
        make_example_repo(examples / "baseline", tmp_path / "repos" / "baseline")
    assert list((tmp_path / "repos").iterdir()) == []


def test_demos_started_together_all_end_with_the_one_tournament_result(examples: Path, data_dir: Path) -> None:
    """Today's failure: on a fresh data dir the second demo crashed creating the schema, and later ones
    ran runs twice and crashed. Now one drives; the others wait and print the same result."""
    argv = [sys.executable, "-m", "trainarena.cli", "demo", "--examples", str(examples), "--budget", "20", "--json"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [proc.communicate(timeout=900) for proc in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    boards = [json.loads(stdout) for stdout, _ in outputs]
    assert len({(board["tournament"], board["champion"], board["reason"]) for board in boards}) == 1
    assert sum("waiting:" in stderr for _, stderr in outputs) == 2
    with open_store(Settings()) as store, store.session() as session:
        [tournament] = list_tournaments(session)
        runs = tournament_runs(session, tournament.id)
    assert tournament.status == "finished" and runs and all(run.attempts == 1 for run in runs)


def test_a_demo_told_not_to_wait_names_the_driver_and_exits_busy(examples: Path, data_dir: Path) -> None:
    settings = Settings()
    with open_store(settings) as store:
        setup = set_up_demo(store, settings, seed=1, examples=examples)
        with store.transaction() as session:
            assert try_acquire(session, setup.tournament_id, DriverIdentity("x", "other-host", 777), settings.lease) is None
    result = CliRunner().invoke(app, ["demo", "--examples", str(examples), "--no-wait"], env={"COLUMNS": "200"})
    assert result.exit_code == EXIT_TOURNAMENT_BUSY, result.output
    assert "is being driven by other-host pid 777 since" in result.output


def test_run_command_scores_one_script_on_a_task_file(examples: Path, data_dir: Path, assets, tmp_path: Path) -> None:
    runner = CliRunner()
    repo_setup = set_up_demo  # registration goes through the demo's idempotent helper
    with open_store(Settings()) as store:
        repo_setup(store, Settings(), seed=1, examples=examples)
    task = tmp_path / "task.toml"
    task.write_text(
        textwrap.dedent(
            f"""
            name = "units-check"
            type = "instruct"
            base_model = "{assets.tiny_llama}"
            budget_seconds = 20
            seed = 5
            [dataset]
            source = "{assets.datasets['units']}"
            field_instruction = "instruction"
            field_input = "input"
            field_output = "output"
            """
        )
    )
    ok = runner.invoke(app, ["run", "--competitor", "baseline", "--task", str(task), "--json", "--no-reference"])
    assert ok.exit_code == 0, ok.output
    [report] = json.loads(ok.stdout)["runs"]
    assert report["status"] == "succeeded" and report["score"] > 0 and len(report["artifact_digest"]) == 64
    assert Path(report["artifact_path"], "model.safetensors").is_file()

    crashed = runner.invoke(app, ["run", "--competitor", "crasher", "--task", str(task), "--json", "--no-reference"])
    assert crashed.exit_code == 1
    assert "deliberate failure" in json.loads(crashed.stdout)["runs"][0]["failure_reason"]

    unknown = runner.invoke(app, ["run", "--competitor", "nobody", "--task", str(task)])
    assert unknown.exit_code == 2 and unknown.output.strip() == "error: --competitor nobody: no such competitor; register it with `trainarena competitor add`"


def test_run_of_a_working_tree_prints_both_references(data_dir: Path, assets, tmp_path: Path) -> None:
    """The real house script's folder run unregistered, through the real sandbox, next to the base
    model's score and the house script's own (the references, computed here once)."""
    task = tmp_path / "task.toml"
    task.write_text(
        textwrap.dedent(
            f"""
            name = "units-workbench"
            type = "instruct"
            base_model = "{assets.tiny_llama}"
            budget_seconds = 12
            [dataset]
            source = "{assets.datasets['units']}"
            field_instruction = "instruction"
            field_input = "input"
            field_output = "output"
            """
        )
    )
    ran = CliRunner().invoke(app, ["run", "--repo", str(EXAMPLES / "baseline"), "--task", str(task), "--json"])
    assert ran.exit_code == 0, ran.output
    [run] = json.loads(ran.stdout)["runs"]
    references = {line["kind"]: line for line in run["references"]}
    assert run["status"] == "succeeded" and run["origin"] == "adhoc" and run["repo_url"] == str(EXAMPLES / "baseline")
    assert set(references) == {"base_model", "house"}
    # Training lowers the loss: the trained script beats the untrained base model.
    assert run["score"] < references["base_model"]["score"] and references["base_model"]["improvement"] > 0
    assert references["house"]["score"] < references["base_model"]["score"]
    assert Path(run["log_path"]).parent.joinpath("result.json").is_file()
