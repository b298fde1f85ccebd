"""A guarded command dies with whatever started it, with its whole process group, and its scratch folder
goes with it on every exit path: the starter finishing, failing, timing out or being killed. Real
processes throughout; the commands are tiny Python programs."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainarena.execution import child_process
from trainarena.execution.child_process import run_guarded

# Starts a grandchild in its own process group (it has no parent-death signal of its own), says it is
# ready in its scratch folder, then waits forever.
HANGING = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "open('ready', 'w').close()\n"
    "time.sleep(600)\n"
)

# A starter process: runs HANGING guarded (scratch under its TMPDIR) and prints how it ended. Ctrl-C
# raises KeyboardInterrupt in it even when the tests run in the background of a shell (which starts them
# with SIGINT ignored, inherited by every child).
STARTER = (
    "import dataclasses, json, os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from trainarena.execution.child_process import run_guarded\n"
    "run = run_guarded([sys.executable, '-c', sys.argv[1]], 'request', env=dict(os.environ), timeout=600,\n"
    "                  stop_grace=5, scratch_prefix='guarded-', result_name='result.json')\n"
    "print(json.dumps(dataclasses.asdict(run)))\n"
)


def wait_for_ready(root: Path, seconds: float = 30.0) -> Path:
    """The scratch folder of the one guarded command under ``root``, once the command said it is ready."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready = list(root.glob("guarded-*/ready"))
        if ready:
            return ready[0].parent
        time.sleep(0.05)
    raise AssertionError(f"the guarded command did not start within {seconds:g} s: {list(root.iterdir())}")


def run(program: str, request: str = "", timeout: float = 60.0) -> child_process.GuardedRun:
    return run_guarded([sys.executable, "-c", program], request, env=dict(os.environ), timeout=timeout,
                       stop_grace=5.0, scratch_prefix="guarded-", result_name="result.json")


def test_the_command_gets_the_request_on_stdin_and_a_private_scratch_folder(temp_root, leftover_processes):
    program = (
        "import json, os, stat, sys, tempfile\n"
        "print('library chatter on stdout')\n"
        "seen = {'stdin': sys.stdin.read(), 'cwd': os.getcwd(), 'tmp': tempfile.gettempdir(),\n"
        "        'mode': stat.S_IMODE(os.stat('.').st_mode)}\n"
        "open('result.json', 'w').write(json.dumps(seen))\n"
    )
    outcome = run(program, request='{"hidden_file": "/secret/hidden.jsonl"}')
    seen = json.loads(outcome.result)
    assert seen["stdin"] == '{"hidden_file": "/secret/hidden.jsonl"}' and outcome.exit_code == 0
    scratch = Path(seen["cwd"])
    assert scratch.parent == temp_root and scratch.name.startswith("guarded-") and seen["tmp"] == str(scratch)
    assert seen["mode"] == stat.S_IRWXU  # 0700: nobody else may list or read it
    assert "library chatter on stdout" in outcome.stderr  # the command's stdout cannot spoil the report
    assert list(temp_root.iterdir()) == [] and leftover_processes(temp_root) == []


def test_a_command_that_fails_reports_its_exit_code_and_leaves_nothing(temp_root, leftover_processes):
    outcome = run("import sys\nopen('scratch-file', 'w').close()\nsys.exit('broken artifact')")
    assert outcome.exit_code == 1 and outcome.result is None and "broken artifact" in outcome.stderr
    assert not outcome.timed_out and list(temp_root.iterdir()) == [] and leftover_processes(temp_root) == []


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_killing_the_starter_leaves_no_process_and_no_scratch(tmp_path, temp_root, leftover_processes, how):
    # No pipes: a failing assertion must not leave an open pipe for a later test's garbage collection.
    starter = subprocess.Popen([sys.executable, "-c", STARTER, HANGING], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scratch = wait_for_ready(temp_root)
    # The command and its grandchild; on a busy machine the grandchild may be mid-exec (its /proc
    # entry unreadable) for a moment, so look again for a while.
    deadline = time.monotonic() + 10
    while len(running := leftover_processes(scratch, wait=0)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(running) == 2, running
    starter.send_signal(how)  # SIGKILL/SIGTERM: no cleanup runs in the starter; SIGINT: KeyboardInterrupt
    starter.wait(timeout=30)
    assert leftover_processes(tmp_path) == []
    assert list(temp_root.iterdir()) == []


def test_a_time_limit_kills_the_whole_group_and_removes_the_scratch(temp_root, leftover_processes):
    started = time.monotonic()
    outcome = run(HANGING, timeout=3.0)
    assert outcome.timed_out and outcome.result is None and time.monotonic() - started < 3.0 + 5.0
    assert leftover_processes(temp_root) == [] and list(temp_root.iterdir()) == []


def test_a_guard_whose_starter_is_already_gone_stops_at_once(tmp_path, temp_root, leftover_processes):
    # The starter died before the guard armed its parent-death signal: the guard's parent is not the
    # pid it was given, so it must stop by itself, since no signal will ever come.
    scratch = temp_root / "guarded-orphan"
    guard = [sys.executable, "-P", child_process.__file__, "--parent", "1", "--scratch", str(scratch),
             "--result", "result.json", "--", sys.executable, "-c", HANGING]
    finished = subprocess.run(guard, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert finished.returncode == 128 + signal.SIGTERM and finished.stdout == ""
    assert not scratch.exists() and leftover_processes(tmp_path) == []


def test_the_command_dies_with_a_killed_guard(tmp_path, temp_root, leftover_processes):
    scratch = temp_root / "guarded-direct"
    program = "import time\nopen('ready', 'w').close()\ntime.sleep(600)\n"
    guard = subprocess.Popen([sys.executable, "-P", child_process.__file__, "--parent", str(os.getpid()),
                              "--scratch", str(scratch), "--result", "result.json", "--", sys.executable, "-c", program])
    wait_for_ready(temp_root)
    guard.kill()
    guard.wait()
    assert leftover_processes(scratch) == []  # the command had SIGKILL as its parent-death signal


def test_without_parent_death_signals_the_guard_polls_for_its_starter(tmp_path, temp_root, leftover_processes):
    guard = (
        "import sys\n"
        "from trainarena.execution import child_process\n"
        "child_process._prctl = lambda: None  # as where the kernel has no PR_SET_PDEATHSIG\n"
        "raise SystemExit(child_process.main(sys.argv[1:]))\n"
    )
    starter = (
        "import os, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', sys.argv[1], '--parent', str(os.getpid()), '--scratch', sys.argv[2],\n"
        "                  '--result', 'result.json', '--', sys.executable, '-c', sys.argv[3]])\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", starter, guard, str(temp_root / "guarded-polled"), HANGING], cwd=tmp_path)
    wait_for_ready(temp_root)
    process.kill()
    process.wait()
    assert leftover_processes(tmp_path, wait=child_process.PARENT_POLL_SECONDS + 5) == []
    assert list(temp_root.iterdir()) == []
