"""A script cannot regain a full capability set in a nested user namespace (``unshare -Urm`` worked inside
the sandbox before, audit11s ``fd``): bwrap's ``--disable-userns``, in the run sandbox and in the GRPO
reward sandbox, and `trainarena doctor` says when this bwrap cannot do it."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from execution_helpers import MakeJob, needs_bwrap

from trainarena.execution.bwrap import BwrapBackend, userns_disable_supported
from trainarena.execution.capabilities import probe_capabilities
from trainarena.execution.stdlib_sandbox import StdlibSandbox, run_stdlib_program
from trainarena.settings import DataRules, SandboxRules, Settings

# unshare(CLONE_NEWUSER), then CLONE_NEWNS inside it: both succeed when nested user namespaces are allowed.
NEST = """import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
first = libc.unshare(0x10000000)
errno = ctypes.get_errno()
second = libc.unshare(0x00020000) if first == 0 else -1
print(f"NESTED {first} {errno} {second}", flush=True)
"""
pytestmark = [pytest.mark.sandbox, needs_bwrap]


def _needs_disable_userns() -> None:
    if not userns_disable_supported(shutil.which("bwrap") or "bwrap"):
        pytest.skip("this bwrap has no --disable-userns (bubblewrap < 0.8)")


def test_a_run_cannot_create_a_nested_user_namespace(settings: Settings, rules: SandboxRules, make_job: MakeJob, tmp_path: Path) -> None:
    _needs_disable_userns()
    submission = tmp_path / "nest"
    submission.mkdir()
    (submission / "train.py").write_text(NEST)
    job = make_job(submission)
    result = BwrapBackend(rules, protected=(settings.data_dir,)).run(job)
    line = next(line for line in (job.log_dir / "stdout.log").read_text().splitlines() if line.startswith("NESTED"))
    first, errno, second = (int(value) for value in line.split()[1:])
    assert result.exit_code == 0 and first == -1 and errno != 0 and second == -1, line


def test_a_reward_program_cannot_create_a_nested_user_namespace(tmp_path: Path) -> None:
    _needs_disable_userns()
    job, out = tmp_path / "job", tmp_path / "out"
    job.mkdir()
    out.mkdir()
    out.chmod(0o777)
    (job / "program.py").write_text(NEST.replace('print(f"NESTED', 'open("/out/report", "w").write(f"NESTED').replace(", flush=True)", ")"))
    rules = SandboxRules()
    sandbox = StdlibSandbox(20.0, DataRules().reward_memory_limit_mb, rules.etc_files, rules.sandbox_uid, 16, 4)
    assert not run_stdlib_program(job, out, "program.py", sandbox)
    first, errno, second = (int(value) for value in (out / "report").read_text().split()[1:])
    assert first == -1 and errno != 0 and second == -1


def test_doctor_reports_a_bwrap_without_disable_userns(make_job: MakeJob, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which("bwrap")
    assert real is not None
    here = {f.name: f for f in probe_capabilities(SandboxRules(), dev_root=tmp_path, docker=str(tmp_path / "no-docker")).features}
    assert here["no nested user namespace"].ok == userns_disable_supported(real)
    old = tmp_path / "bin" / "bwrap"  # an older bubblewrap: refuses the option it does not know
    old.parent.mkdir()
    old.write_text(f'#!/bin/sh\nfor a in "$@"; do [ "$a" = --disable-userns ] && exit 1; done\nexec {real} "$@"\n')
    old.chmod(old.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{old.parent}:{os.environ['PATH']}")
    features = {f.name: f for f in probe_capabilities(SandboxRules(), dev_root=tmp_path, docker=str(tmp_path / "no-docker")).features}
    missing = features["no nested user namespace"]
    assert not missing.ok and not missing.required and "unshare -Urm" in missing.consequence and "0.8" in missing.fix
    # The run sandbox still starts, without the option this bwrap lacks.
    assert "--disable-userns" not in BwrapBackend(SandboxRules()).bwrap_args(make_job("baseline"), {})
