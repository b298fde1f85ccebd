"""The unsafe local backend and the backend factory (the docker backend: test_docker_backend.py)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from execution_helpers import MakeJob, needs_bwrap, processes_of_run

from trainarena.contract import RunStatus
from trainarena.execution import make_backend
from trainarena.execution.factory import never_bound
from trainarena.execution.local import LocalUnsafeBackend, UnsafeBackendWarning, host_path
from trainarena.execution.runtime import SandboxUnavailable, check_hidden
from trainarena.execution.supervise import told_at_deadline
from trainarena.settings import PoolRules, RecordsRules, SandboxRules, Settings


@pytest.fixture
def local(rules: SandboxRules) -> LocalUnsafeBackend:
    with pytest.warns(UnsafeBackendWarning, match="WITHOUT A SANDBOX"):
        return LocalUnsafeBackend(rules)


PATHS = '''
import json, os, sys
open(os.path.join(sys.argv[sys.argv.index("--output-dir") + 1], "done"), "w").write("ok")
print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ)}), flush=True)
'''


def test_local_backend_rewrites_sandbox_paths_to_host_paths(
    local: LocalUnsafeBackend, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    job = make_job(script_dir(PATHS))
    result = local.run(job)
    assert result.status is RunStatus.SUCCEEDED, result.failure_reason
    seen = json.loads(result.stdout_path.read_text())
    argv = seen["argv"]
    assert argv[argv.index("--output-dir") + 1] == str(job.output_dir.resolve())
    assert argv[argv.index("--dataset") + 1] == str(job.inputs_dir.resolve() / "train.jsonl")
    assert seen["cwd"] == str(job.submission_dir.resolve())
    assert seen["env"]["HOME"] != "/tmp" and "trainarena-" in seen["env"]["HOME"]  # private scratch
    assert (job.output_dir / "done").read_text() == "ok"


def test_a_failure_with_nothing_on_stderr_names_the_last_line_on_stdout(
    local: LocalUnsafeBackend, make_job: MakeJob, script_dir: Callable[[str], Path]
) -> None:
    # A script that reports its own problem with print() and exits non-zero left a bare "exited with code 3."
    said = local.run(make_job(script_dir('print("loading")\nprint("no network: URLError")\nraise SystemExit(3)\n')))
    assert said.status is RunStatus.FAILED
    assert (said.failure_reason or "").startswith("exited with code 3. Nothing on stderr; the last line on stdout: "
                                                  "no network: URLError")
    silent = local.run(make_job(script_dir("raise SystemExit(5)\n")))
    assert (silent.failure_reason or "").startswith("exited with code 5. Nothing on stderr or stdout.")
    crashed = local.run(make_job(script_dir('print("stdout line")\nraise RuntimeError("on stderr")\n')))
    assert "stdout line" not in (crashed.failure_reason or "") and "RuntimeError: on stderr" in (crashed.failure_reason or "")


def test_local_backend_keeps_the_budget_and_reports_crashes(local: LocalUnsafeBackend, make_job: MakeJob) -> None:
    overtime, told = make_job("overtime", budget=1.0, grace=0.5), []
    with told_at_deadline(lambda: told.append(time.time())):
        result = local.run(overtime)
    assert result.status is RunStatus.TIMED_OUT
    assert len(told) == 1 and 0.9 < told[0] - result.started_at < 1.3  # told at the deadline, not at the end
    # The fix it names is the contract's margin, not a save on SIGTERM (too late: the run is timed out then).
    assert ("stop training with a margin before TRAINARENA_DEADLINE, save and exit 0 (docs/contract.md"
            in (result.failure_reason or ""))
    assert "SIGTERM at the deadline" in (result.failure_reason or "") and "save on SIGTERM" not in (result.failure_reason or "")
    assert processes_of_run(overtime.spec.run_id) == []
    crashed = local.run(make_job("crasher"))
    assert crashed.status is RunStatus.FAILED and "deliberate failure" in (crashed.failure_reason or "")


def test_host_path_maps_only_contract_roots(make_job: MakeJob) -> None:
    job = make_job("crasher")
    assert host_path("/output/model.safetensors", job) == f"{job.output_dir.resolve()}/model.safetensors"
    assert host_path("/outputs", job) == "/outputs"
    assert host_path("instruct", job) == "instruct"


@needs_bwrap
def test_factory_builds_bwrap_by_default(settings: Settings) -> None:
    assert make_backend(settings).name == "bwrap"


def test_factory_refuses_local_unsafe_without_the_flag(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, sandbox=SandboxRules(backend="local-unsafe"))
    with pytest.raises(SandboxUnavailable, match="--unsafe"):
        make_backend(settings)
    with pytest.warns(UnsafeBackendWarning):
        assert make_backend(settings, unsafe=True).name == "local-unsafe"
    allowed = Settings(data_dir=tmp_path, sandbox=SandboxRules(backend="local-unsafe", allow_unsafe=True))
    with pytest.warns(UnsafeBackendWarning):
        assert make_backend(allowed).name == "local-unsafe"


def test_factory_rejects_an_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(SandboxUnavailable, match="unknown sandbox backend 'firejail'"):
        make_backend(Settings(data_dir=tmp_path, sandbox=SandboxRules(backend="firejail")))


def test_missing_bwrap_tells_the_operator_what_to_do(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(SandboxUnavailable, match=r"apt-get install bubblewrap.*--unsafe"):
        make_backend(settings)


# A secret file the settings put outside the data dir, under the training interpreter's prefix (bound read-only).
SECRETS_IN_PREFIX = {
    "signing key": lambda prefix: {"records": RecordsRules(key_file=prefix / "keys" / "operator.pem")},
    "split secret": lambda prefix: {"pools": PoolRules(split_secret_file=prefix / "keys" / "split.key")},
    "sqlite store": lambda prefix: {"database_url": f"sqlite:///{prefix}/state/trainarena.db"},
}
SANDBOX_FACTORIES = [pytest.param("bwrap", marks=needs_bwrap, id="bwrap"),
                     pytest.param("docker", id="docker", marks=pytest.mark.skipif(
                         not (shutil.which("docker-init") or shutil.which("tini")), reason="no tini (docker-init) here"))]


@pytest.mark.parametrize("backend", SANDBOX_FACTORIES)
@pytest.mark.parametrize("secret", sorted(SECRETS_IN_PREFIX))
def test_a_python_prefix_containing_a_secret_file_is_refused(tmp_path: Path, backend: str, secret: str) -> None:
    import sys

    prefix = Path(sys.prefix).resolve()
    settings = Settings(data_dir=tmp_path / "data", sandbox=SandboxRules(backend=backend),
                        **SECRETS_IN_PREFIX[secret](prefix))
    # The check comes before the docker backend asks for its daemon: no daemon is needed here.
    with pytest.raises(SandboxUnavailable, match=rf"refusing to bind {prefix} .*protected path {prefix}/(keys|state)/"):
        make_backend(settings)


def test_every_secret_file_of_the_settings_is_never_bound(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/db/ta.db",
                        records=RecordsRules(key_file=tmp_path / "keys" / "op.pem"),
                        pools=PoolRules(split_secret_file=tmp_path / "keys" / "split.key"))
    protected = never_bound(settings)
    assert settings.data_dir in protected and settings.hidden_dir in protected
    assert {tmp_path / "keys" / "op.pem", tmp_path / "keys" / "split.key", tmp_path / "db" / "ta.db",
            tmp_path / "db" / "ta.db-wal", tmp_path / "db" / "ta.db-journal"} <= set(protected)
    with pytest.raises(SandboxUnavailable, match="protected path"):
        check_hidden([tmp_path / "keys"], protected)  # an input folder that holds the key
    check_hidden([tmp_path / "inputs"], protected)  # a folder beside them is fine
    in_postgres = Settings(data_dir=tmp_path / "data", database_url="postgresql+psycopg://u@host/db")
    assert [what for _, what in in_postgres.secret_files] == ["signing key", "split secret"]


def test_a_python_prefix_containing_the_data_dir_is_refused(tmp_path: Path) -> None:
    import sys

    settings = Settings(data_dir=Path(sys.prefix) / "trainarena-data")
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    with pytest.raises(SandboxUnavailable, match="protected path"):
        make_backend(settings)
