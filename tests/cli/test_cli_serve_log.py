"""`trainarena serve --json` prints one JSON object per line, even when the schedule's thread, the API's
drivers and a signal handler log at the same moment: a machine reading the log must never meet two
events on one line. (print wrote the text and its newline apart, and other threads' lines fell between:
the serve e2e test once read a "stopping" and a "sleeping" event on one line.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

from trainarena.cli.serve import print_event
from trainarena.operations.serving import ServeEvent

# Four threads log at once to serve's real stdout, a pipe (pytest's capture is another kind of stream).
LOGGING_AT_ONCE = """
import threading
from datetime import UTC, datetime
from trainarena.cli.serve import print_event
from trainarena.operations.serving import ServeEvent

log, start = print_event(json_output=True), threading.Barrier(4)

def logging(n):
    start.wait()
    for i in range(5000):
        log(ServeEvent(datetime.now(UTC), "sleeping", f"thread {n} event {i}", {}))

threads = [threading.Thread(target=logging, args=(n,)) for n in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def test_events_logged_from_several_threads_at_once_stay_one_per_line() -> None:
    done = subprocess.run([sys.executable, "-c", LOGGING_AT_ONCE], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4 * 5000
    assert len({json.loads(line)["message"] for line in lines}) == 4 * 5000  # each line one whole event


def test_a_scripts_stderr_in_a_text_line_reaches_the_terminal_escaped(capsys) -> None:  # noqa: ANN001
    """A failed run's line ends with the last line of the script's stderr: `serve` printed it raw, so a
    script could retitle the operator's window, set the clipboard (OSC 52) or erase lines there."""
    hostile = "\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b]0;owned\x07\x1b[1A\x1b[2KFAKE\x9b2J"
    print_event(json_output=False)(ServeEvent(datetime(2026, 1, 2, tzinfo=UTC), "run_finished", f"w1: x on t: failed: {hostile}", {}))
    line = capsys.readouterr().out
    assert line == ("2026-01-02T00:00:00Z w1: x on t: failed: \\x1b]52;c;ZWNobyBwd25lZA==\\x07\\x1b]0;owned\\x07"
                    "\\x1b[1A\\x1b[2KFAKE\\x9b2J\n")
