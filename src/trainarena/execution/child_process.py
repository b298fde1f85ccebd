"""A guarded child process: a command that dies with whatever started it and whose private scratch
folder is removed on every exit path, a SIGKILL of the starter included. The evaluation worker runs
this way (``tasks.child_evaluation``): it reads the hidden split, and nothing of it may outlive the
driver that asked for a score.

Three processes::

    starter --request on stdin--> guard --stdin--> command (cwd = TMPDIR = SCRATCH, own process group)
            <--report on stdout--       <--SCRATCH/RESULT

Why a guard between the two: a SIGKILLed process runs no cleanup, so whatever removes the scratch
folder must outlive the starter; the command cannot be relied on for it (it may sit in native code
for minutes, or be killed itself). The guard is a few lines of standard library that only wait, so
it is always ready to act. What it protects against:

- The starter dies, however (SIGKILL, a Ctrl-C handler calling ``os._exit``): the kernel sends the
  guard SIGTERM (``PR_SET_PDEATHSIG``, armed first thing; the guard then checks that its parent is
  still the starter, which closes the race where the starter died before that). The guard kills the
  command's process group, waits for it, removes the scratch folder and exits.
- The starter stops it (time limit, an exception, Ctrl-C): :func:`run_guarded` sends the guard SIGTERM,
  the same path; a guard still there after ``stop_grace`` seconds is SIGKILLed and the starter removes
  the folder itself.
- The guard is SIGKILLed (nothing else makes it skip its cleanup): the command has ``PR_SET_PDEATHSIG``
  SIGKILL against the guard, so it dies too, and :func:`run_guarded` removes the folder.
- What the command starts: its process group is killed with it; a bubblewrap sandbox in a session of
  its own (the GRPO reward sandbox) dies through ``--die-with-parent``.
- Leftover files: the request travels on stdin and is never written to disk; the command's TMPDIR is
  the scratch folder (mode 0700), so what it and its libraries put in temp files goes with it.

What it does not cover: a guard and its starter both SIGKILLed at once (the folder stays; nothing of
the platform does that); when the guard alone is SIGKILLed, processes the command started outside a
sandbox and outside its own death signal (the evaluation worker starts none). Parent-death signals are a Linux feature: elsewhere the guard polls its parent
every ``PARENT_POLL_SECONDS``. The signal follows the starter's *thread*: start a guarded command from
a thread that waits for it (as :func:`run_guarded` does), never from one that exits first.

This module imports only the standard library: :func:`run_guarded` runs it by path, so the guard
starts in milliseconds without importing the platform.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PARENT_POLL_SECONDS = 1.0  # only where the kernel cannot signal a parent's death


@dataclass(frozen=True)
class GuardedRun:
    """How a guarded command ended."""

    timed_out: bool
    exit_code: int | None  # the command's (negative: killed by that signal); None when unknown
    result: str | None  # the text of the command's result file; None when it wrote none
    stderr: str  # the command's stdout and stderr, then the guard's (empty after a time-out)


def run_guarded(
    argv: Sequence[str],
    request: str,
    *,
    env: dict[str, str],
    timeout: float,
    stop_grace: float,
    scratch_prefix: str,
    result_name: str,
) -> GuardedRun:
    """Run ``argv`` guarded in a fresh scratch folder under the system temp dir, ``request`` on its
    stdin; wait up to ``timeout`` seconds and return what it wrote to ``result_name`` in its folder."""
    scratch = Path(tempfile.gettempdir()) / f"{scratch_prefix}{secrets.token_hex(8)}"
    with subprocess.Popen(_guard_argv(scratch, result_name, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(request, timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(process, stop_grace)
            return GuardedRun(timed_out=True, exit_code=None, result=None, stderr="")
        except BaseException:
            _stop(process, stop_grace)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # left only by a guard that was SIGKILLed
    report = _read_report(stdout)
    return GuardedRun(False, report.get("exit_code", process.returncode), report.get("result"), stderr)


def _guard_argv(scratch: Path, result_name: str, argv: Sequence[str]) -> list[str]:
    return [sys.executable, "-P", str(Path(__file__).resolve()), "--parent", str(os.getpid()),
            "--scratch", str(scratch), "--result", result_name, "--", *argv]


class GuardedWorker:
    """A guarded command that stays up between requests (the warm evaluation worker): the same guard
    and scratch folder as :func:`run_guarded`, but its stdin stays open. Each request is one line on
    its stdin; the command answers request ``n`` by writing ``<result_stem>-<n>.json`` in its scratch
    folder (atomically: written aside, then renamed). Closing stdin ends it. Not thread-safe: one
    caller at a time, from the thread that started it (the guard dies with that thread)."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], stop_grace: float, scratch_prefix: str,
                 result_stem: str, poll_seconds: float) -> None:
        self.scratch = Path(tempfile.gettempdir()) / f"{scratch_prefix}{secrets.token_hex(8)}"
        self._stem, self._poll, self._grace = result_stem, poll_seconds, stop_grace
        self._served = 0
        self._report: dict[str, Any] | None = None  # the guard's, once it ended
        self._stderr = _TailReader()
        self._process = subprocess.Popen(
            _guard_argv(self.scratch, result_stem, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
        self._stderr.follow(self._process.stderr)

    @property
    def served(self) -> int:
        """Requests answered so far."""
        return self._served

    def alive(self) -> bool:
        return self._report is None and self._process.poll() is None

    def request(self, line: str, timeout: float) -> GuardedRun:
        """Send one request line and wait up to ``timeout`` s for its result. A time-out stops the
        worker (it is not used again); a worker that died is reported with its exit and stderr tail."""
        result = self.scratch / f"{self._stem}-{self._served + 1}.json"
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(line.rstrip("\n") + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._died()
        deadline = time.monotonic() + timeout
        while not result.is_file():
            if self._process.poll() is not None:
                return self._died()
            if time.monotonic() >= deadline:
                self.close(stop=True)
                return GuardedRun(timed_out=True, exit_code=None, result=None, stderr="")
            time.sleep(self._poll)
        self._served += 1
        text = result.read_text()
        result.unlink()
        return GuardedRun(False, 0, text, "")

    def _died(self) -> GuardedRun:
        self.close()
        return GuardedRun(False, self._report.get("exit_code", self._process.returncode), None, self._stderr.text())

    def close(self, stop: bool = False) -> None:
        """End the worker: its stdin closed (an idle worker exits), then, when it is still there after
        the grace period or at once with ``stop`` (a hung one), stopped as a timed-out run is."""
        if self._report is not None:
            return
        with contextlib.suppress(OSError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        if stop or not _exited_within(self._process, self._grace):
            _stop(self._process, self._grace)
        self._stderr.join()
        self._report = _read_report(self._process.stdout.read() if self._process.stdout else "")
        for stream in (self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(self.scratch, ignore_errors=True)  # left only by a guard that was SIGKILLed


class _TailReader:
    """Drains a pipe on a thread (a full pipe would block the writer) and keeps its last characters."""

    def __init__(self, keep: int = 20_000) -> None:
        self._keep, self._chunks, self._thread = keep, "", None

    def follow(self, stream: Any) -> None:
        def read() -> None:
            for line in stream:
                self._chunks = (self._chunks + line)[-self._keep :]

        self._thread = threading.Thread(target=read, daemon=True, name="guarded-worker-stderr")
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(5.0)

    def text(self) -> str:
        self.join()
        return self._chunks


def _exited_within(process: subprocess.Popen[str], seconds: float) -> bool:
    try:
        process.wait(seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def _stop(process: subprocess.Popen[str], grace: float) -> None:
    """SIGTERM the guard (it kills the command's group and removes the folder); SIGKILL after ``grace``."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read_report(stdout: str) -> dict[str, Any]:
    with contextlib.suppress(json.JSONDecodeError):
        report = json.loads(stdout or "null")
        if isinstance(report, dict):
            return report
    return {}


@functools.cache
def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True).prctl  # libc's, already loaded in every Linux process


def die_with_parent(parent: int, signum: int) -> bool:
    """Have the kernel send ``signum`` to this process when its parent exits, and send it now when the
    parent is no longer ``parent`` (it died before this call). Returns False where the kernel cannot
    (not Linux): the caller must then watch ``os.getppid()`` itself."""
    prctl = _prctl()
    if prctl is not None and prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)
    return prctl is not None


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@contextlib.contextmanager
def _held(signals: Sequence[signal.Signals]) -> Iterator[None]:
    """Signals that arrive inside the block stay pending until it ends."""
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


def _command_setup(guard_pid: int) -> None:
    """In the command, between fork and exec (the guard has one thread, so this is safe)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # the guard held them around the fork
    die_with_parent(guard_pid, signal.SIGKILL)


class _Guard:
    """What the signal handler needs: which stop signal came first, and the group to kill. The handler
    never raises, so no cleanup step can be cut short by a second signal."""

    def __init__(self) -> None:
        self.stopped_by: int | None = None
        self.group: int | None = None

    def stop(self, signum: int, _frame: object) -> None:
        self.stopped_by = self.stopped_by or signum
        if self.group is not None:
            kill_group(self.group)


def guard(parent: int, scratch: Path, result_name: str, argv: Sequence[str]) -> tuple[dict[str, Any] | None, int | None]:
    """Run ``argv`` in ``scratch`` (created here, 0700; removed on the way out) until it exits or a stop
    signal comes. Returns (the report for the starter, the stop signal), the report None when stopped."""
    state = _Guard()
    for signum in STOP_SIGNALS:
        signal.signal(signum, state.stop)
    watched_by_kernel = die_with_parent(parent, signal.SIGTERM)
    command: subprocess.Popen[bytes] | None = None
    created = False
    try:
        with _held(STOP_SIGNALS):  # so that the handler always knows the group once it exists
            scratch.mkdir(mode=0o700)
            created = True
            command = subprocess.Popen(
                list(argv), stdout=sys.stderr.fileno(), cwd=scratch, env=os.environ | {"TMPDIR": str(scratch)},
                start_new_session=True, preexec_fn=functools.partial(_command_setup, os.getpid()),
            )
            state.group = command.pid
        if state.stopped_by is not None:  # stopped before the group existed
            kill_group(command.pid)
        exit_code = _wait(command, parent, watched_by_kernel)
        result = scratch / result_name
        report = {"exit_code": exit_code, "result": result.read_text() if result.is_file() else None}
    finally:
        if command is not None:
            kill_group(command.pid)  # what the command left running dies with its group
            command.wait()
            state.group = None
        if created:
            shutil.rmtree(scratch, ignore_errors=True)
    return (None if state.stopped_by else report), state.stopped_by


def _wait(command: subprocess.Popen[bytes], parent: int, watched_by_kernel: bool) -> int:
    while True:
        try:
            return command.wait(None if watched_by_kernel else PARENT_POLL_SECONDS)
        except subprocess.TimeoutExpired:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)  # the handler kills the group; the next wait returns


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a command guarded: see trainarena.execution.child_process.")
    parser.add_argument("--parent", type=int, required=True, help="Pid of the starter; the guard dies with it.")
    parser.add_argument("--scratch", type=Path, required=True, help="Folder to create (must not exist) and remove.")
    parser.add_argument("--result", required=True, help="Name of the command's result file in the folder.")
    parser.add_argument("command", nargs="+", help="The command (after --).")
    args = parser.parse_args(argv)
    if Path(args.result).name != args.result:
        parser.error(f"--result must be a plain file name, got '{args.result}'")
    report, stopped_by = guard(args.parent, args.scratch, args.result, args.command)
    if report is None:
        return 128 + (stopped_by or signal.SIGTERM)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
