"""The quality benchmark's CPU clock (benchmarks/cpu_clock): a script run with it sees time pass only
while it computes, so load on the machine (or a sleep) does not eat its budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.script_runner import run_contract_script
from trainarena.contract import TaskType

# Sleeps (no CPU), then burns CPU until its clock passes the deadline the platform set, as a
# clock-driven training script stops; prints how far its clock moved in each part.
SCRIPT = """
import os, time
began = time.time()
time.sleep(1.0)
slept = time.time() - began
deadline = float(os.environ["TRAINARENA_DEADLINE"])
while time.time() < deadline:
    sum(range(10_000))
print(f"slept {slept:.3f} total {time.time() - began:.3f}")
"""


@pytest.mark.parametrize("clock_threads", [None, 1, 2])
def test_a_sleep_costs_a_script_on_the_cpu_clock_nothing_of_its_budget(tmp_path: Path, clock_threads: int | None) -> None:
    script = tmp_path / "competitor" / "train.py"
    script.parent.mkdir()
    script.write_text(SCRIPT)
    code, wall, line = run_contract_script(script, TaskType.INSTRUCT, tmp_path, tmp_path / "train.jsonl", tmp_path / "out",
                                           budget=1.5, seed=1, cpu_clock_threads=clock_threads)
    assert code == 0, line
    slept = float(line.split()[1])
    if clock_threads is None:
        assert slept >= 1.0  # the wall clock: the sleep took two thirds of the budget
    else:
        assert slept < 0.3, line  # the CPU clock: the sleep took (almost) nothing
        # It computed until its clock reached the deadline: at least the budget's CPU seconds, times
        # the threads it was granted (one thread burns here), on top of the second it slept.
        assert wall >= 1.0 + clock_threads * 1.5 * 0.9 - 0.3, (wall, line)
