"""The part every backend shares: start a command, own its clock, cap its logs, end its process tree.

A backend builds the command line (bwrap, docker or plain) and a :class:`Terminator` that knows how to
reach the whole tree of what it started; :func:`supervise` does the rest as small named steps:
start -> wait until exit, the deadline or a disk cap passed -> (SIGTERM, grace, SIGKILL at the
deadline; SIGKILL at once past a disk cap) -> drain logs -> measure the disk once more -> result.

Logs: stdout and stderr go through pipes to one reader thread each, which writes at most
``log_max_bytes`` to the log file, then a truncation marker, and keeps draining (and discarding) so a
script printing gigabytes neither fills the disk nor blocks on a full pipe. Each reader also keeps a
rolling tail of the stream, so a crashed run's reason shows the real end of stderr even after
truncation.

Stopping on request: a caller that may need to end a run early (a customer cancels a training job)
wraps the blocking ``backend.run`` in :func:`stop_when` with an event; setting the event from another
thread ends the run as a deadline would (SIGTERM, grace, SIGKILL) and reports it FAILED with
:data:`STOPPED_REASON`. The event travels in a context variable, so no backend or executor signature
changes: the run is supervised in the thread that called ``backend.run``. A run still waiting for its
devices (``DevicePool``, the jobs' device gate) gives up the wait when the event is set, and is not
started (:func:`wait_unless_stopped`).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from trainarena.contract import RunStatus
from trainarena.execution.base import RunResult
from trainarena.execution.disk import DiskCap, first_breach

TRUNCATION_MARKER = "\n[trainarena: log truncated at {limit} bytes; the rest was discarded]\n"
_CHUNK = 65536
# Readers normally finish as soon as the tree is gone; a bounded join keeps a misbehaving leftover
# (only possible with the unsafe backend) from hanging the platform.
_READER_JOIN_SECONDS = 5.0
_STDOUT_HINT_CHARS = 300  # of the last stdout line a failure with nothing on stderr names in its summary
_DEADLINE = "deadline"
STOPPED_REASON = "stopped on request before it finished"
# How often a run that may be stopped on request checks its event (the wait is otherwise one long sleep).
_STOP_CHECK_SECONDS = 0.2
_stop_event: ContextVar[threading.Event | None] = ContextVar("trainarena_stop_event", default=None)
_deadline_told: ContextVar[Callable[[], None] | None] = ContextVar("trainarena_deadline_told", default=None)


class StopAtOnce(threading.Event):
    """A stop request whose run is killed at once (SIGKILL, no grace): for a run nothing of which is
    kept, so it has nothing to save (an early run its tournament dropped, ``early_runs``). A subclass
    set for more than one reason says by :meth:`at_once` whether this one kills at once."""

    def at_once(self) -> bool:
        return self.is_set()


def kills_at_once(event: threading.Event | None) -> bool:
    return isinstance(event, StopAtOnce) and event.at_once()


class EitherStop(StopAtOnce):
    """Set when ``own`` or ``outer`` is. Its own stop (nothing of the run can be kept: an early run
    dropped, a drive that lost its lease) kills at once; ``outer``, a stop around it, as ``outer`` says
    (a plain stop gives the grace any run gets)."""

    def __init__(self, own: threading.Event, outer: threading.Event | None) -> None:
        super().__init__()
        self.own, self.outer = own, outer

    def is_set(self) -> bool:
        return self.own.is_set() or (self.outer is not None and self.outer.is_set())

    def at_once(self) -> bool:
        return self.own.is_set() or kills_at_once(self.outer)


@contextmanager
def stop_when(event: threading.Event) -> Iterator[None]:
    """Runs supervised in this thread inside the block end (SIGTERM, grace, SIGKILL) once ``event`` is set."""
    token = _stop_event.set(event)
    try:
        yield
    finally:
        _stop_event.reset(token)


@contextmanager
def told_at_deadline(told: Callable[[], None]) -> Iterator[None]:
    """Runs supervised in this thread inside the block call ``told`` (on this thread) when their script
    reaches its deadline: from then the run is certain to end timed out, whatever the script does in
    its grace period (a driver looking ahead, ``early_runs``, takes it as failed)."""
    token = _deadline_told.set(told)
    try:
        yield
    finally:
        _deadline_told.reset(token)


def deadline_reached() -> None:
    """Tell the innermost ``told_at_deadline`` block, if any, that the run's script reached its deadline."""
    told = _deadline_told.get()
    if told is not None:
        told()


def current_stop_event() -> threading.Event | None:
    """The event of the innermost ``stop_when`` block this thread is in, if any (an executor that runs
    elsewhere, on a Ray node, passes it on)."""
    return _stop_event.get()


def wait_unless_stopped(changed: threading.Condition, ready: Callable[[], bool], stop: threading.Event | None) -> bool:
    """``changed.wait_for(ready)`` (the caller holds ``changed``) for a run not yet started (waiting
    for its devices), given up once ``stop`` is set: whether ``ready``. Setting an event does not notify
    the condition, so with a stop the wait wakes every ``_STOP_CHECK_SECONDS`` to look; a stop set by
    then wins over devices come free (a run asked to stop is not started)."""
    while stop is None or not stop.is_set():
        if ready():
            return True
        changed.wait(None if stop is None else _STOP_CHECK_SECONDS)
    return False


class Terminator(Protocol):
    """Reaches the whole process tree of one run."""

    def terminate(self) -> None:
        """Ask every process of the run to stop (SIGTERM), leaving time to save work."""
        ...

    def kill(self) -> None:
        """End every process of the run now (SIGKILL), daemons included."""
        ...


class CappedLogReader(threading.Thread):
    """Copies one pipe into a file, keeping at most ``limit`` bytes and a rolling tail."""

    def __init__(self, pipe: BinaryIO, path: Path, limit: int, tail_bytes: int) -> None:
        super().__init__(daemon=True, name=f"log-{path.name}")
        self._pipe = pipe
        self._path = path
        self._limit = limit
        self._tail_bytes = tail_bytes
        self._tail = bytearray()
        self.written = 0
        self.truncated = False

    def run(self) -> None:
        with self._path.open("wb") as out:
            while chunk := self._pipe.read1(_CHUNK):
                self._keep_tail(chunk)
                self._write_capped(out, chunk)
        self._pipe.close()

    def _keep_tail(self, chunk: bytes) -> None:
        self._tail += chunk
        if len(self._tail) > self._tail_bytes:
            del self._tail[: len(self._tail) - self._tail_bytes]

    def _write_capped(self, out: BinaryIO, chunk: bytes) -> None:
        if self.truncated:
            return
        room = self._limit - self.written
        out.write(chunk[:room])
        self.written += min(room, len(chunk))
        if len(chunk) > room:
            out.write(TRUNCATION_MARKER.format(limit=self._limit).encode())
            self.truncated = True
        out.flush()

    def tail(self, chars: int) -> str:
        return self._tail.decode("utf-8", errors="replace")[-chars:]


@dataclass(frozen=True)
class Launch:
    """Everything :func:`supervise` needs to start and police one run."""

    argv: Sequence[str]
    env: dict[str, str]
    cwd: Path | None
    log_dir: Path
    budget_seconds: float
    grace_seconds: float
    log_max_bytes: int
    log_tail_chars: int
    preexec: Callable[[], None] | None = None
    pass_fds: tuple[int, ...] = ()
    disk_caps: tuple[DiskCap, ...] = ()  # measured every disk_check_seconds while the run lives
    disk_check_seconds: float = 0.5


def supervise(
    launch: Launch,
    make_terminator: Callable[[subprocess.Popen[bytes]], Terminator],
    started_at: float,
) -> RunResult:
    """Run ``launch`` to completion under its budget; ``started_at`` is the unix time the deadline
    counts from (the backend already told the script its deadline)."""
    launch.log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = launch.log_dir / "stdout.log", launch.log_dir / "stderr.log"
    try:
        proc = _start(launch)
    except (OSError, subprocess.SubprocessError) as exc:  # SubprocessError: the pre-exec hook failed
        stderr_path.write_text(f"could not start: {exc}\n")
        stdout_path.write_text("")
        return RunResult(RunStatus.FAILED, None, started_at, time.time(), stdout_path, stderr_path,
                         failure_reason=f"could not start the run: {exc}")
    tail_bytes = launch.log_tail_chars * 4  # UTF-8: up to 4 bytes per character
    readers = (
        CappedLogReader(proc.stdout, stdout_path, launch.log_max_bytes, tail_bytes),  # type: ignore[arg-type]
        CappedLogReader(proc.stderr, stderr_path, launch.log_max_bytes, tail_bytes),  # type: ignore[arg-type]
    )
    for reader in readers:
        reader.start()
    terminator = make_terminator(proc)
    event = _stop_event.get()
    stop = _wait(proc, started_at + launch.budget_seconds, launch, event)
    timed_out, how_ended = False, "exited"
    if stop == _DEADLINE:
        deadline_reached()
        timed_out, how_ended = True, _stop_at_deadline(proc, terminator, launch.grace_seconds, event)
    elif stop == STOPPED_REASON and not kills_at_once(event):  # else killed just below
        # The stop may come to ask at once during the grace (an early run dropped under a drive's stop,
        # a job's try withdrawn as its service stops): it is killed then, not at the grace's end.
        _stop_at_deadline(proc, terminator, launch.grace_seconds, event)
    # Whatever happened, nothing of this run may outlive this call (a daemon left by a script that
    # exited in time included).
    terminator.kill()
    proc.wait()
    finished_at = time.time()
    for reader in readers:
        reader.join(_READER_JOIN_SECONDS)
    if stop == STOPPED_REASON:  # says it was stopped: "...; the run was stopped" said it twice
        disk_breach: str | None = stop
    elif stop not in (None, _DEADLINE):
        disk_breach = f"{stop}; the run was stopped"
    else:  # measured once more after the end: what was written in the last interval counts too
        found = first_breach(launch.disk_caps)
        disk_breach = None if found is None else f"{found}; found when the run ended"
    return _result(proc.returncode, timed_out, how_ended, disk_breach, launch, started_at, finished_at, readers)


def _stdout_hint(stderr_tail: str, stdout_reader: CappedLogReader, chars: int) -> str:
    """With nothing on stderr, the last line the script printed: a script that reports its own problem with
    print() and exits non-zero would otherwise leave a bare exit code as its whole reason."""
    if stderr_tail.strip():
        return ""
    lines = [line.strip() for line in stdout_reader.tail(chars).splitlines() if line.strip()]
    if not lines:
        return " Nothing on stderr or stdout."
    return f" Nothing on stderr; the last line on stdout: {lines[-1][:_STDOUT_HINT_CHARS]}"


def _start(launch: Launch) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(launch.argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=launch.env,
        cwd=launch.cwd,
        start_new_session=True,  # its own process group: signals never reach the platform
        preexec_fn=launch.preexec,
        pass_fds=launch.pass_fds,
        close_fds=True,
    )


def _wait(proc: subprocess.Popen[bytes], deadline: float, launch: Launch, stop: threading.Event | None) -> str | None:
    """Wait until the run exits (None), reaches the deadline (``_DEADLINE``), passes a disk cap (the
    failure reason) or is stopped on request (``STOPPED_REASON``), measuring the disk caps every
    ``disk_check_seconds``."""
    while True:
        remaining = deadline - time.time()
        step = min(remaining, launch.disk_check_seconds) if launch.disk_caps else remaining
        if stop is not None:
            step = min(step, _STOP_CHECK_SECONDS)
        try:
            proc.wait(timeout=max(0.0, step))
            return None
        except subprocess.TimeoutExpired:
            pass
        if stop is not None and stop.is_set():
            return STOPPED_REASON
        breach = first_breach(launch.disk_caps)
        if breach is not None:
            return breach
        if time.time() >= deadline:
            return _DEADLINE


def _stop_at_deadline(proc: subprocess.Popen[bytes], terminator: Terminator, grace: float,
                      stop: threading.Event | None = None) -> str:
    """SIGTERM the tree, after ``grace`` SIGKILL it (at once when a :class:`StopAtOnce` is set
    meanwhile); says how it ended."""
    terminator.terminate()
    ends = time.monotonic() + grace
    while (remaining := ends - time.monotonic()) > 0 and not kills_at_once(stop):
        try:
            proc.wait(timeout=min(remaining, _STOP_CHECK_SECONDS) if stop is not None else remaining)
            return "SIGTERM at the deadline; it stopped within the grace period"
        except subprocess.TimeoutExpired:
            pass
    terminator.kill()
    proc.wait()
    if remaining > 0:
        return "SIGTERM at the deadline, SIGKILL when it was stopped on request within the grace"
    return f"SIGTERM at the deadline, SIGKILL after {grace:g} s of grace"


def _result(
    exit_code: int,
    timed_out: bool,
    how_ended: str,
    disk_breach: str | None,
    launch: Launch,
    started_at: float,
    finished_at: float,
    readers: tuple[CappedLogReader, CappedLogReader],
) -> RunResult:
    stdout_path, stderr_path = launch.log_dir / "stdout.log", launch.log_dir / "stderr.log"
    tail = readers[1].tail(launch.log_tail_chars)
    if disk_breach is not None:
        reason = f"{disk_breach}.\n--- stderr tail ---\n{tail}"
        return RunResult(RunStatus.FAILED, exit_code, started_at, finished_at, stdout_path, stderr_path, reason)
    if timed_out:
        # Saving on SIGTERM is too late (the run is already timed out), so the fix named is the margin.
        reason = (f"still running at the budget of {launch.budget_seconds:g} s ({how_ended}); a run alive at the "
                  "deadline is not scored, even with an artifact: stop training with a margin before "
                  "TRAINARENA_DEADLINE, save and exit 0 (docs/contract.md, \"Deadline, SIGTERM and SIGKILL\")."
                  f"\n--- stderr tail ---\n{tail}")
        return RunResult(RunStatus.TIMED_OUT, exit_code, started_at, finished_at, stdout_path, stderr_path, reason)
    if exit_code != 0:
        reason = f"exited with code {exit_code}.{_stdout_hint(tail, readers[0], launch.log_tail_chars)}\n--- stderr tail ---\n{tail}"
        return RunResult(RunStatus.FAILED, exit_code, started_at, finished_at, stdout_path, stderr_path, reason)
    return RunResult(RunStatus.SUCCEEDED, 0, started_at, finished_at, stdout_path, stderr_path)
