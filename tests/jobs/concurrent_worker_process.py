"""One job worker as its own process, for the concurrent-worker test (run as a script: DATA_DIR
DATABASE_URL LOG GATE). It waits for the gate file (so several start at the same moment), then runs
jobs with an executor that trains nothing and appends ``start|end JOB PID TIME`` to LOG for each,
until it is sent SIGTERM (the worker then stops as the API's shutdown stops it)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from job_support import FakeExecutor, fast_settings

from trainarena.jobs import JobWorker

JOB_SECONDS = 0.3  # long enough for the other workers to claim jobs meanwhile


class RecordingExecutor(FakeExecutor):
    def __init__(self, log: Path) -> None:
        super().__init__()
        self.log = log

    def _record(self, what: str, job: str) -> None:
        with self.log.open("a") as handle:  # one short append per line: whole lines, even across processes
            handle.write(f"{what} {job} {os.getpid()} {time.time()}\n")

    def run_task(self, competitor, task, run_dir, run_name):  # noqa: ANN001, ANN201
        self._record("start", task.name)
        time.sleep(JOB_SECONDS)
        report = super().run_task(competitor, task, run_dir, run_name)
        self._record("end", task.name)
        return report


if __name__ == "__main__":
    data_dir, url, log, gate = sys.argv[1:5]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not Path(gate).exists():
        time.sleep(0.01)
    worker = JobWorker(fast_settings(Path(data_dir), url), executor=RecordingExecutor(Path(log)), worker_id=f"w{os.getpid()}")
    worker.start()
    stop.wait()
    worker.stop()
