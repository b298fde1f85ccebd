"""`trainarena api`'s serving (the API with its job worker beside it) as its own process, to be sent
stop signals mid-job (run as a script: DATA_DIR). Its executor prints ``running JOB_ID`` on stdout
once the job's try runs, and then ignores the stop (a run slow to die), so a first stop signal leaves
the service waiting for it and a second one makes it leave at once."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from job_support import fast_settings

from trainarena.cli.api import serve_api
from trainarena.jobs import JobWorker


class SlowToDie:
    def run_task(self, competitor, task, run_dir, run_name):  # noqa: ANN001, ANN201
        print(f"running {task.name}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    settings = fast_settings(Path(sys.argv[1]))
    serve_api(settings, "127.0.0.1", 0, jobs=JobWorker(settings, executor=SlowToDie(), worker_id="serving"))
