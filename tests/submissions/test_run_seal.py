"""A run's submission folder is sealed before the sandbox binds it and checked once the script ended
(``submissions.seal``): a cached snapshot or checkout changed meanwhile, from outside the sandbox (which
binds it read-only), is never scored or signed as the clean code; an unchanged one runs as before."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from submission_repos import MANIFEST

from trainarena.contract import RunStatus, TaskType
from trainarena.execution.base import RunResult, SandboxJob
from trainarena.pipeline import SandboxedExecutor
from trainarena.records.provenance import folder_digest
from trainarena.records.signing import envelope_payload
from trainarena.runs import SUBMISSION_CHANGED_REASON, CompetitorInfo, RunReport, SubmissionChanged
from trainarena.settings import DataRules, Settings
from trainarena.store import Run, open_store
from trainarena.store.log_tables import LogEntry
from trainarena.submissions import checkout_path, register
from trainarena.submissions.seal import changes, seal
from trainarena.submissions.worktree import snapshot_digest, snapshot_worktree
from trainarena.tasks.base import TaskDefinition
from trainarena.workbench import Workbench, worktree_script

TRAIN_PY = "print('the clean code')\n"
Meddle = Callable[[Path], None]  # what another process on the host does to the bound folder while the script runs


class MeddledBackend:
    """A backend whose "script" writes the base model as its artifact while ``meddle`` edits the
    submission folder from outside, as another process with write access to the cache could."""

    name = "meddled"

    def __init__(self, model: Path, meddle: Meddle) -> None:
        self.model, self.meddle = model, meddle
        self.bound: list[Path] = []

    def run(self, job: SandboxJob) -> RunResult:
        started = time.time()
        self.bound.append(job.submission_dir)
        shutil.copytree(self.model, job.output_dir, dirs_exist_ok=True)
        self.meddle(job.submission_dir)
        job.log_dir.mkdir(parents=True, exist_ok=True)
        for name in ("stdout.log", "stderr.log"):
            (job.log_dir / name).write_text("step 1 loss 2.0\n")
        return RunResult(RunStatus.SUCCEEDED, 0, started, time.time(), job.log_dir / "stdout.log", job.log_dir / "stderr.log")

    def close(self) -> None:
        pass


def untouched(folder: Path) -> None:
    pass


def edited(folder: Path) -> None:
    (folder / "train.py").write_text(TRAIN_PY + "print('something else')\n")


def edited_and_undone(folder: Path) -> None:
    """Changed, then put back byte for byte with its old modification time: only the ctime moved."""
    path = folder / "train.py"
    before = path.stat()
    path.write_text("print('something else')\n")
    path.write_text(TRAIN_PY)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def planted(folder: Path) -> None:
    (folder / "sitecustomize.py").write_text("print('runs first')\n")


def _task(assets) -> TaskDefinition:
    return TaskDefinition("units", TaskType.INSTRUCT, str(assets.tiny_llama),
                          {"source": str(assets.datasets["units"]), **assets.dataset_fields["units"]}, 10, 1)


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "trainarena.toml").write_text(MANIFEST)
    (tree / "train.py").write_text(TRAIN_PY)
    return tree


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", data=DataRules(eval_cpu_threads=1, eval_warm_worker=False))


@pytest.mark.parametrize("meddle", [edited, edited_and_undone, planted])
def test_a_snapshot_changed_while_the_script_runs_is_not_scored(assets, tmp_path: Path, meddle: Meddle) -> None:
    settings = _settings(tmp_path)
    snapshot = snapshot_worktree(settings, _tree(tmp_path))
    competitor = CompetitorInfo("tree", str(snapshot.path), "", snapshot.source_digest, "train.py",
                                submission_dir=snapshot.snapshot_dir)
    executor = SandboxedExecutor(settings, MeddledBackend(assets.tiny_llama, meddle), gpus=[])
    run_dir = tmp_path / "run"
    with pytest.raises(SubmissionChanged, match="train.py|sitecustomize.py") as raised:
        executor.train_task(competitor, _task(assets), run_dir, "run-1")
    assert str(raised.value).startswith(f"{SUBMISSION_CHANGED_REASON} during the run (")
    assert "nothing of this try is scored" in str(raised.value)
    assert not (run_dir / "output").exists()  # nothing of it is scored or kept
    assert not snapshot.snapshot_dir.exists()  # the next run snapshots the tree afresh
    assert snapshot_worktree(settings, snapshot.path).snapshot_dir == snapshot.snapshot_dir


def test_an_unchanged_snapshot_runs_and_is_scored_as_before(assets, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    snapshot = snapshot_worktree(settings, _tree(tmp_path))
    competitor = CompetitorInfo("tree", str(snapshot.path), "", snapshot.source_digest, "train.py",
                                submission_dir=snapshot.snapshot_dir)
    backend = MeddledBackend(assets.tiny_llama, untouched)
    executor = SandboxedExecutor(settings, backend, gpus=[])
    try:
        pending = executor.train_task(competitor, _task(assets), tmp_path / "run", "run-1")
        assert not isinstance(pending, RunReport)
        report = pending.finish()
    finally:
        executor.close()
    assert report.status is RunStatus.SUCCEEDED and report.evaluation is not None and report.evaluation.score is not None
    assert report.failure_reason is None and report.artifact_digest is not None
    assert backend.bound == [snapshot.snapshot_dir] and snapshot_digest(snapshot.snapshot_dir).startswith(snapshot.snapshot_dir.name)


def test_a_snapshot_changed_before_the_run_never_runs(assets, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    snapshot = snapshot_worktree(settings, _tree(tmp_path))
    edited(snapshot.snapshot_dir)  # after `trainarena run` checked it, before the run's sandbox binds it
    competitor = CompetitorInfo("tree", str(snapshot.path), "", snapshot.source_digest, "train.py",
                                submission_dir=snapshot.snapshot_dir)
    backend = MeddledBackend(assets.tiny_llama, untouched)
    with pytest.raises(SubmissionChanged, match="changed before the run started.*no longer hash to the digest its folder is named by"):
        SandboxedExecutor(settings, backend, gpus=[]).train_task(competitor, _task(assets), tmp_path / "run", "run-1")
    assert backend.bound == [] and not snapshot.snapshot_dir.exists()


def test_a_changed_checkout_is_exported_again_and_a_change_during_the_run_is_caught(assets, tmp_path: Path, make_repo) -> None:
    settings = _settings(tmp_path)
    repo, commit = make_repo({"trainarena.toml": MANIFEST, "train.py": TRAIN_PY})
    registration = register(settings, name="alice", repo=str(repo), commit=commit)
    competitor = CompetitorInfo("alice", registration.repo_url, commit, registration.tree_hash, "train.py")
    checkout = checkout_path(settings, commit)
    edited(checkout)  # before the run: exported again from the repository, then run as registered
    backend = MeddledBackend(assets.tiny_llama, untouched)
    executor = SandboxedExecutor(settings, backend, gpus=[])
    assert not isinstance(executor.train_task(competitor, _task(assets), tmp_path / "run-1", "run-1"), RunReport)
    assert backend.bound == [checkout] and (checkout / "train.py").read_text() == TRAIN_PY

    backend.meddle = edited  # during the run: the try is lost to the platform, and tried again from a fresh export
    with pytest.raises(SubmissionChanged, match=r"changed train\.py"):
        executor.train_task(competitor, _task(assets), tmp_path / "run-2", "run-2")
    assert not checkout.exists()
    backend.meddle = untouched
    assert not isinstance(executor.train_task(competitor, _task(assets), tmp_path / "run-3", "run-3"), RunReport)
    assert (checkout / "train.py").read_text() == TRAIN_PY


def test_trainarena_run_stores_and_signs_the_changed_run_as_failed_saying_why(assets, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with open_store(settings) as store:
        executor = SandboxedExecutor(settings, MeddledBackend(assets.tiny_llama, edited), gpus=[])
        (run_id,) = Workbench(settings, store, executor).run(worktree_script(settings, _tree(tmp_path)), _task(assets))
        with store.session() as session:
            run = session.get_one(Run, run_id)
            assert run.status == RunStatus.FAILED.value and run.evaluation is None
            assert run.counted_attempt.failure_reason.startswith(f"{SUBMISSION_CHANGED_REASON} during the run (changed train.py")
            keys = set(session.scalars(select(LogEntry.key)))
        assert f"run:{run_id}:attempt:1" in keys and f"evaluation:{run_id}:attempt:1" not in keys


@pytest.mark.parametrize("tree_edit", [None, "print('the next version')\n", TRAIN_PY + "# only a comment\n"],
                         ids=["unedited", "edited", "comment"])  # a comment leaves the source digest, not the snapshot
def test_run_seeds_after_a_changed_snapshot(assets, tmp_path: Path, tree_edit: str | None) -> None:
    """`run --seeds 3` whose first seed's snapshot was changed under it: that seed is stored as failed,
    the snapshot is made again from the tree for the next seeds when the tree still holds the same code
    (they ran against a removed folder and all failed before), and the series stops, naming the seeds
    not run, when the tree was edited meanwhile (a series compares one code)."""
    settings = _settings(tmp_path)
    tree = _tree(tmp_path)
    told: list[str] = []

    def first_run_only(folder: Path) -> None:
        backend.meddle = untouched
        edited(folder)
        if tree_edit is not None:
            (tree / "train.py").write_text(tree_edit)

    backend = MeddledBackend(assets.tiny_llama, first_run_only)
    with open_store(settings) as store:
        executor = SandboxedExecutor(settings, backend, gpus=[])
        try:
            script = worktree_script(settings, tree)
            run_ids = Workbench(settings, store, executor, told.append).run(script, _task(assets), seeds=3)
        finally:
            executor.close()
        with store.session() as session:
            statuses = [session.get_one(Run, run_id).status for run_id in run_ids]
    if tree_edit is not None:
        assert statuses == [RunStatus.FAILED.value]
        assert told[-1] == ("seeds 2..3 not run: its snapshot changed and was removed, and the working tree has changed since "
                            "the first seed (a series compares one code over its seeds); run again to play them")
    else:
        assert statuses == [RunStatus.FAILED.value, RunStatus.SUCCEEDED.value, RunStatus.SUCCEEDED.value]
        assert backend.bound == [script.info.submission_dir] * 3 and (script.info.submission_dir / "train.py").read_text() == TRAIN_PY


def test_the_seal_names_what_changed(tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "a.py").write_text("a = 1\n")
    (folder / "b.py").write_text("b = 2\n")
    sealed = seal(folder, snapshot_digest)
    assert changes(sealed) is None
    os.chmod(folder / "b.py", 0o755)
    (folder / "pkg" / "c.py").write_text("c = 3\n")
    (folder / "pkg" / "a.py").unlink()
    assert changes(sealed) == "changed b.py, pkg; added pkg/c.py; removed pkg/a.py"
    folder.rename(tmp_path / "moved")
    assert changes(sealed) == "the folder is gone"
    folder.mkdir()  # while the old one still holds its inode
    assert changes(sealed) == "the folder itself was replaced"


class ChangedAfterTheRun:
    """The pipeline's executor, with the snapshot changed once the run ended (while it is scored)."""

    def __init__(self, executor: SandboxedExecutor, meddle: Meddle) -> None:
        self.executor, self.meddle = executor, meddle

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        report = self.executor.run_task(competitor, task, run_dir, run_name)
        assert competitor.submission_dir is not None
        self.meddle(competitor.submission_dir)
        return report

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        raise AssertionError("no reference is asked for")


@pytest.mark.parametrize("meddle", [untouched, edited_and_undone, edited])
def test_the_record_names_a_snapshot_only_while_it_holds_what_ran(assets, tmp_path: Path, meddle: Meddle) -> None:
    """Undone before the record is made, the snapshot still holds what ran: it is named."""
    settings = _settings(tmp_path)
    with open_store(settings) as store:
        executor = ChangedAfterTheRun(SandboxedExecutor(settings, MeddledBackend(assets.tiny_llama, untouched), gpus=[]), meddle)
        script = worktree_script(settings, _tree(tmp_path))
        (run_id,) = Workbench(settings, store, executor).run(script, _task(assets))
        with store.session() as session:
            assert session.get_one(Run, run_id).status == RunStatus.SUCCEEDED.value  # it ran the clean code
            envelope = session.scalar(select(LogEntry.envelope).where(LogEntry.key == f"run:{run_id}:attempt:1"))
    named = envelope_payload(envelope)["predicate"]["submission"]["snapshot_sha256"]
    assert named == (None if meddle is edited else folder_digest(script.info.submission_dir))


WAITING_SCRIPT = '''import shutil, sys, time
from pathlib import Path

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
output = Path(args["--output-dir"])
shutil.copytree(args["--model"], output, dirs_exist_ok=True)
(output / "started").write_text("waiting")
deadline = time.monotonic() + 60
while not Path("/submission/go").exists() and time.monotonic() < deadline:  # the bind shows the host's change
    time.sleep(0.05)
(output / "started").unlink()
'''


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_a_snapshot_changed_from_the_host_while_the_sandboxed_script_waits_is_not_scored(assets, tmp_path: Path) -> None:
    from trainarena.execution.factory import make_backend

    settings = _settings(tmp_path)
    tree = _tree(tmp_path)
    (tree / "train.py").write_text(WAITING_SCRIPT)
    snapshot = snapshot_worktree(settings, tree)
    competitor = CompetitorInfo("tree", str(snapshot.path), "", snapshot.source_digest, "train.py",
                                submission_dir=snapshot.snapshot_dir)
    run_dir = settings.work_dir / "adhoc" / "run-1"
    executor = SandboxedExecutor(settings, make_backend(settings), gpus=[])

    def meddle() -> None:
        deadline = time.monotonic() + 120
        while not (run_dir / "output" / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        (snapshot.snapshot_dir / "go").write_text("")  # from the host, while the script runs

    meddler = threading.Thread(target=meddle)
    meddler.start()
    try:
        with pytest.raises(SubmissionChanged, match=r"during the run \(added go\)"):
            executor.train_task(competitor, _task(assets), run_dir, "run-1")
    finally:
        meddler.join()
        executor.close()
    assert not (run_dir / "output").exists() and not snapshot.snapshot_dir.exists()
