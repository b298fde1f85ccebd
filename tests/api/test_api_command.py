"""`trainarena api` as an operator starts it: it answers on the port given, and Ctrl-C or SIGTERM stops
it with status 0 (uvicorn would report the process killed by the signal)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_api_serves_on_its_port_and_stops_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    port = _free_port()
    environment = {**os.environ, "TRAINARENA_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": os.pathsep.join(sys.path)}
    api = subprocess.Popen([sys.executable, "-m", "trainarena.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
                           env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                break
            except httpx.TransportError:
                assert api.poll() is None and time.monotonic() < deadline, api.communicate()[1]
                time.sleep(0.1)
        assert health.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["paths"]["/v1/tournaments"]
        api.send_signal(stop)
        _, stderr = api.communicate(timeout=30)
    finally:
        if api.poll() is None:
            api.kill()
    assert api.returncode == 0, stderr
    assert f"{stop.name}: stopping after the current step" in stderr and "Application shutdown complete" in stderr
