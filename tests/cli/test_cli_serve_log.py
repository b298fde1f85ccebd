"""`trainarena serve --json` prints one JSON object per line, even when the schedule's thread, the API's
drivers and a signal handler log at the same moment: a machine reading the log must never meet two
events on one line. (print wrote the text and its newline apart, and other threads' lines fell between:
the serve e2e test once read a "stopping" and a "sleeping" event on one line.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
