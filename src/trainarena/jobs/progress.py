"""Progress of a running job, read from its script's logs: whatever new lines stdout and stderr gained
since the last look (the loss lines the house script prints, a competitor's own messages), the last
few of them, each cut to a readable length. Generic on purpose: no script's log format is parsed, so
every champion's log reads the same way."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from trainarena.settings import JobRules

LOG_NAMES = ("stdout.log", "stderr.log")


class LogFollower:
    """New complete lines of the logs in ``log_dir`` since the previous :meth:`new_lines`."""

    def __init__(self, log_dir: Path, rules: JobRules) -> None:
        self._log_dir = log_dir
        self._rules = rules
        self._offsets = dict.fromkeys(LOG_NAMES, 0)

    def new_lines(self) -> list[str]:
        lines: list[str] = []
        for name in LOG_NAMES:
            lines += self._read_new(name)
        shown = [line.strip()[: self._rules.progress_line_chars] for line in lines if line.strip()]
        return shown[-self._rules.progress_lines :]

    def _read_new(self, name: str) -> list[str]:
        path = self._log_dir / name
        try:
            with path.open("rb") as log:
                log.seek(self._offsets[name])
                data = log.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written is read next time
        self._offsets[name] += len(complete)
        return complete.decode("utf-8", errors="replace").splitlines()


class ProgressReporter(threading.Thread):
    """Every ``rules.progress_seconds`` until stopped, hands the logs' new lines (if any) to
    ``report``; one last look when stopped, so the final lines are not lost."""

    def __init__(self, log_dir: Path, rules: JobRules, report: Callable[[list[str]], None]) -> None:
        super().__init__(daemon=True, name=f"progress-{log_dir.parent.name}")
        self._follower = LogFollower(log_dir, rules)
        self._interval = rules.progress_seconds
        self._report = report
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            self._look()
        self._look()

    def _look(self) -> None:
        lines = self._follower.new_lines()
        if lines:
            self._report(lines)

    def stop(self) -> None:
        self._stopped.set()
        self.join()
