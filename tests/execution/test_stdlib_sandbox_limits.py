"""The reward-function sandbox keeps its process and disk limits (a fork bomb, a huge file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from execution_helpers import FORK_BOMB, needs_bwrap, needs_cgroups

from trainarena.execution.disk import MB
from trainarena.execution.stdlib_sandbox import StdlibSandbox, run_stdlib_program
from trainarena.settings import DataRules, SandboxRules

pytestmark = [pytest.mark.sandbox, needs_bwrap]

HOSTILE_REWARD = FORK_BOMB + '''
size = 0
try:
    with open("/out/huge", "wb") as fh:
        for _ in range(64):
            fh.write(b"x" * (1 << 20))
            fh.flush()
            size += 1 << 20
except OSError as exc:
    size = f"{size} {type(exc).__name__}"
open("/out/report", "w").write(f"{children} {error} {size}")
'''


def _sandbox(max_processes: int) -> StdlibSandbox:
    rules, data = SandboxRules(), DataRules()
    return StdlibSandbox(20.0, data.reward_memory_limit_mb, rules.etc_files, rules.sandbox_uid, max_processes, 4,
                         run_as=rules.run_as)


@needs_cgroups
def test_a_forking_reward_program_stops_at_its_process_limit_and_file_cap(tmp_path: Path) -> None:
    job, out = tmp_path / "job", tmp_path / "out"
    job.mkdir()
    out.mkdir()
    out.chmod(0o777)
    (job / "program.py").write_text(HOSTILE_REWARD)
    timed_out = run_stdlib_program(job, out, "program.py", _sandbox(8))
    assert not timed_out
    children, error, size, size_error = (out / "report").read_text().split()
    # 8 tasks: bwrap's two, the program, at most 5 children.
    assert 0 < int(children) <= 5 and error == "BlockingIOError"
    assert int(size) == 4 * MB and size_error == "OSError"  # EFBIG at the 4 MB file cap

