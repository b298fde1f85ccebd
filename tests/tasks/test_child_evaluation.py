"""The evaluation worker dies with the driver that started it, and its scratch folder with it: on
success, failure, time-out, and when the driver is SIGKILLed in the middle of an evaluation. The
request, which names the hidden split, is never written to disk.

A real driver process calls ``evaluate_in_child`` on an evaluation that hangs on purpose: the hidden
split is a FIFO, so the worker blocks reading it (once the test opens the FIFO's other end, the test
knows the worker is reading the hidden data); the GRPO case hangs in a reward function that sleeps
inside the bubblewrap reward sandbox."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainarena.contract import Direction, TaskType
from trainarena.settings import DataRules, ImageRules, Settings
from trainarena.tasks import TaskDefinition, get_task_type
from trainarena.tasks.child_evaluation import SCRATCH_PREFIX, evaluate_in_child
from trainarena.tasks.grpo import sampling_settings
from trainarena.tasks.grpo.rewards import RewardSandbox

# The driver: one evaluation of the given type and request, then print how it ended.
DRIVER = (
    "import json, sys\n"
    "from trainarena.contract import Direction, TaskType\n"
    "from trainarena.settings import DataRules\n"
    "from trainarena.tasks.child_evaluation import evaluate_in_child\n"
    "rules = DataRules.model_validate(json.loads(sys.argv[3]))\n"
    "print(evaluate_in_child(TaskType(sys.argv[1]), Direction.LOWER, json.loads(sys.argv[2]), rules))\n"
)


@pytest.fixture
def hanging_hidden_split(tmp_path: Path) -> Path:
    """An image task's hidden captions file that is a FIFO: reading it blocks until someone writes."""
    hidden = tmp_path / "hidden" / "captions.jsonl"
    hidden.parent.mkdir()
    os.mkfifo(hidden)
    return hidden


def image_request(hidden_file: Path, tmp_path: Path) -> dict:
    return {"hidden_file": str(hidden_file), "artifact_dir": str(tmp_path / "artifact"),
            "base_model": str(tmp_path / "base"), "image_rules": ImageRules().model_dump(mode="json")}


def start_driver(task_type: str, request: dict, rules: DataRules, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", DRIVER, task_type, json.dumps(request), rules.model_dump_json()],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until(ready, driver: subprocess.Popen[bytes], what: str, seconds: float = 180.0):
    """Poll ``ready()`` until it returns something; fail early if the driver ended first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (found := ready()) is not None:
            return found
        if driver.poll() is not None:
            raise AssertionError(f"the driver ended before {what}: {driver.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {seconds:g} s")


def open_for_writing_once_read(fifo: Path) -> int | None:
    """A write end of ``fifo`` once a process has it open for reading (the worker reading the hidden
    split); None before."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:  # no reader yet
            return None
        raise


def test_killing_the_driver_mid_evaluation_leaves_no_worker_and_no_scratch(
    tmp_path, temp_root, hanging_hidden_split, leftover_processes
):
    driver = start_driver("image", image_request(hanging_hidden_split, tmp_path), DataRules(), tmp_path)
    writer = wait_until(lambda: open_for_writing_once_read(hanging_hidden_split), driver, "worker reading the hidden split")
    try:
        (scratch,) = temp_root.iterdir()
        assert scratch.name.startswith(SCRATCH_PREFIX) and stat.S_IMODE(scratch.stat().st_mode) == 0o700
        on_disk = [p for p in scratch.rglob("*") if p.is_file() and str(hanging_hidden_split) in p.read_text(errors="replace")]
        assert on_disk == [], "the request naming the hidden split must not be written to disk"
        driver.kill()  # no cleanup runs in the driver
        driver.communicate(timeout=30)
        assert leftover_processes(tmp_path) == []  # nothing still reads the hidden split, or runs at all
        assert list(temp_root.iterdir()) == []
    finally:
        os.close(writer)


def test_an_evaluation_past_its_time_limit_is_killed_and_its_scratch_removed(
    tmp_path, temp_root, hanging_hidden_split, leftover_processes
):
    rules = DataRules(eval_timeout_seconds=2.0)
    evaluation = evaluate_in_child(TaskType.IMAGE, Direction.LOWER, image_request(hanging_hidden_split, tmp_path), rules)
    assert evaluation.score is None and "exceeded its 2 s limit" in evaluation.failure
    assert leftover_processes(tmp_path) == [] and list(temp_root.iterdir()) == []


def test_a_failed_evaluation_leaves_nothing_behind(tmp_path, temp_root, leftover_processes):
    request = image_request(tmp_path / "hidden" / "missing.jsonl", tmp_path)
    evaluation = evaluate_in_child(TaskType.IMAGE, Direction.LOWER, request, DataRules())
    assert evaluation.score is None and evaluation.failure.startswith("FileNotFoundError")
    assert leftover_processes(tmp_path) == [] and list(temp_root.iterdir()) == []


def _bwrap_sandbox_below(ancestor: int) -> list[int] | None:
    """Pids of a bubblewrap sandbox started below process ``ancestor`` and of everything inside it
    (found by descent: its command line names staged binds, not the folders it binds, when the
    platform is root and starts it as ``sandbox.run_as``)."""
    children: dict[int | None, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            children.setdefault(_parent(entry), []).append(int(entry.name))
    family: list[int] = []
    pending = [(ancestor, False)]
    while pending:  # driver -> guard -> worker -> bwrap -> bwrap (pid 1 inside) -> python -> ...
        pid, inside = pending.pop()
        inside = inside or _cmdline(Path(f"/proc/{pid}")).startswith("bwrap")
        if inside:
            family.append(pid)
        pending += [(child, inside) for child in children.get(pid, [])]
    return sorted(family) or None


def _cmdline(pid: Path) -> str:
    try:
        return Path(os.readlink(pid / "exe")).name + " " + (pid / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
    except OSError:
        return ""


def _parent(pid: Path) -> int | None:
    try:
        return int((pid / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
def test_killing_the_driver_during_grpo_rewards_kills_the_reward_sandbox(assets, tmp_path, temp_root, leftover_processes):
    (data,) = assets.datasets_of("grpo")
    task = TaskDefinition("grpo", TaskType.GRPO, str(assets.tiny_llama), data.dataset_spec(), 10)
    prepared = get_task_type("grpo").prepare(task, tmp_path / "train", tmp_path / "hidden", Settings())
    sleeper = {"name": "slow", "weight": 1.0, "source": "def slow(completions, **kw):\n    import time\n    time.sleep(600)\n"}
    rules = DataRules(grpo_eval_prompts=2, grpo_eval_max_new_tokens=4, eval_cpu_threads=1)
    sandbox = RewardSandbox.from_rules(Settings().sandbox, rules).to_dict() | {"timeout_seconds": 600.0}
    request = {"hidden_file": str(prepared.hidden_file), "artifact_dir": str(assets.tiny_llama),
               "base_model": task.base_model, "dataset_spec": prepared.dataset_spec | {"reward_functions": [sleeper]},
               "kl_coef": 0.05, "sampling": sampling_settings(rules), "reward_sandbox": sandbox}
    driver = start_driver("grpo", request, rules, tmp_path)
    # bwrap, bwrap as pid 1 of the sandbox, the reward runner: polled until all three are up (under load
    # the first two can be seen before the runner starts).
    sandbox_pids = wait_until(lambda: (p if (p := _bwrap_sandbox_below(driver.pid)) and len(p) >= 3 else None),
                              driver, "reward sandbox")
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=30)
    assert leftover_processes(tmp_path) == []
    deadline = time.monotonic() + 5
    while (alive := [pid for pid in sandbox_pids if _cmdline(Path(f"/proc/{pid}"))]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive == [], "the reward sandbox outlived the evaluation"
    assert list(temp_root.iterdir()) == []  # the reward sandbox's folder (hidden prompts) went with the scratch
