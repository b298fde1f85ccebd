"""`trainarena serve` as its own process with a fake, slow executor (run as a script by test_serve.py).

The settings come from the environment (TRAINARENA_DATA_DIR, TRAINARENA_SCHEDULE__...). Every
execution is appended to a shared file as ``start|end RUN ATTEMPT PID``, so a test that kills this
process can count what ran."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from operator_data import FakeExecutor

from trainarena.cli.serve import serve_with
from trainarena.runs import RunReport, RunRequest
from trainarena.settings import Settings


class SlowRecordingExecutor(FakeExecutor):
    def __init__(self, log: Path, seconds: float) -> None:
        super().__init__()
        self.log = log
        self.seconds = seconds

    def _record(self, what: str, request: RunRequest) -> None:
        with self.log.open("a") as handle:  # one short append per line: whole lines, even across processes
            handle.write(f"{what} {request.run_id} {request.attempt} {os.getpid()}\n")

    def execute(self, request: RunRequest) -> RunReport:
        self._record("start", request)
        time.sleep(self.seconds)
        report = super().execute(request)
        self._record("end", request)
        return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("executions", type=Path)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    serve_with(Settings(), SlowRecordingExecutor(args.executions, args.seconds), once=False, parallel=1, json_output=True)


if __name__ == "__main__":
    main()
