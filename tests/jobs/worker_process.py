"""A job worker as its own process, to be killed mid-job (run as a script: DATA_DIR [DATABASE_URL]).

Its executor hangs in the job it claims, after printing ``running JOB_ID`` on stdout."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from job_support import fast_settings

from trainarena.jobs import JobWorker


class Hanging:
    def run_task(self, competitor, task, run_dir, run_name):  # noqa: ANN001, ANN201
        print(f"running {task.name}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    settings = fast_settings(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
    JobWorker(settings, executor=Hanging(), worker_id="doomed").start()
    threading.Event().wait()
