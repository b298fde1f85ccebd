"""Progress of a running job, read from its script's logs: whatever new lines stdout and stderr gained
since the last look (the loss lines the house script prints, a competitor's own messages), the last
few of them, each cut to a readable length. No script's own log format is parsed, so every champion's
log reads the same way; only progress bars are: tqdm (which the Hugging Face Trainer draws) redraws its
bar with carriage returns many times a second, so the newest "line" was nearly always a bar like
``45%|####5     | 9/20 [00:03<00:04,  2.10it/s]`` and the event's message hid the step/loss lines
printed between. A bar becomes its counts (``Training 9/20 (45%), loss=1.23``), one bar's redraws
collapse to the newest, and the message is the newest line that is not a bar (the newest bar's
counts when the look found nothing else)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainarena.settings import JobRules

LOG_NAMES = ("stdout.log", "stderr.log")

# tqdm's bar: "{desc}: {percent}%|{bar}| {n}/{total} [{elapsed}<{remaining}, {rate}{, postfix}]", or
# "{desc}: {n}it [{elapsed}, {rate}]" without a total. The bracket opens with a time: a log line that
# merely has a count and brackets is no bar.
_BAR = re.compile(
    r"(?:(?P<desc>[^|\[\]:]*?):\s*)?"
    r"(?:(?P<percent>\d{1,3})%\|[^|]*\|\s*)?"
    r"(?P<count>[\d.]+[kMGT]?/[\d.]+[kMGT]?|[\d.]+[kMGT]?it)\s*"
    r"\[(?P<stats>\d+:\d\d[^\]]*)\]"
)
_LINE_ENDS = re.compile(r"\r\n|\r|\n")
# How much of a line is searched for a bar (a tqdm bar, postfix included, is far shorter): the search
# backtracks, so a script's megabyte-long line (a printed config, a JSON dump) would stall the worker.
_SCANNED_CHARS = 1000


def _bar_counts(bar: re.Match[str]) -> str:
    """A bar as its counts: description, n/total, percent, and the postfix (a loss the script set)."""
    desc, percent = (bar["desc"] or "").strip(), bar["percent"]
    postfix = [part.strip() for part in bar["stats"].split(",")[2:] if part.strip()]  # after elapsed<remaining and rate
    return " ".join(filter(None, [desc, bar["count"], f"({percent}%)" if percent else ""])) + "".join(f", {part}" for part in postfix)


@dataclass(frozen=True)
class Progress:
    """What one look at the logs found: the lines an event carries, and its message."""

    lines: list[str]
    message: str


def condense(raw_lines: list[str]) -> Progress | None:
    """The log lines a progress event shows (bars as their counts, each bar's redraws as the newest)
    and its message: the newest line that is not a bar, else the newest bar's counts; None when there
    is nothing but blank lines."""
    shown: list[str] = []
    meaningful: str | None = None
    bar_last = False  # whether shown[-1] is a bar's counts (the next redraw replaces it)
    for raw in raw_lines:
        scanned = raw[:_SCANNED_CHARS]
        bars = list(_BAR.finditer(scanned)) if "[" in scanned else []
        text = (_BAR.sub(" ", scanned) + raw[_SCANNED_CHARS:]).strip() if bars else raw.strip()
        if bars:
            counts = _bar_counts(bars[-1])
            shown[-1:] = [counts] if bar_last else [*shown[-1:], counts]
            bar_last = True
        if text:  # a line the script printed, or what it printed after a bar without a newline
            shown.append(text)
            meaningful, bar_last = text, False
    if not shown:
        return None
    return Progress(shown, meaningful if meaningful is not None else shown[-1])


class LogFollower:
    """New complete lines of the logs in ``log_dir`` since the previous :meth:`new_progress`; a
    carriage return ends a line as a newline does (a bar's redraw is one)."""

    def __init__(self, log_dir: Path, rules: JobRules) -> None:
        self._log_dir = log_dir
        self._rules = rules
        self._offsets = dict.fromkeys(LOG_NAMES, 0)

    def new_progress(self) -> Progress | None:
        lines: list[str] = []
        for name in LOG_NAMES:
            lines += self._read_new(name)
        progress = condense(lines)
        if progress is None:
            return None
        cut = self._rules.progress_line_chars
        return Progress([line[:cut] for line in progress.lines[-self._rules.progress_lines :]], progress.message[:cut])

    def _read_new(self, name: str) -> list[str]:
        path = self._log_dir / name
        try:
            with path.open("rb") as log:
                log.seek(self._offsets[name])
                data = log.read()
        except FileNotFoundError:
            return []
        complete = data[: max(data.rfind(b"\n"), data.rfind(b"\r")) + 1]  # a line still being written is read next time
        self._offsets[name] += len(complete)
        return _LINE_ENDS.split(complete.decode("utf-8", errors="replace"))


class ProgressReporter(threading.Thread):
    """Every ``rules.progress_seconds`` until stopped, hands the logs' new progress (if any) to
    ``report``; one last look when stopped, so the final lines are not lost."""

    def __init__(self, log_dir: Path, rules: JobRules, report: Callable[[Progress], None]) -> None:
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
        progress = self._follower.new_progress()
        if progress is not None:
            self._report(progress)

    def stop(self) -> None:
        self._stopped.set()
        self.join()
