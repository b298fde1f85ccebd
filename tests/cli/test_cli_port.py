"""``--port`` of ``api`` and ``serve`` is checked by the command line, as the api.port setting is: a port
outside 0..65535 was asyncio's OverflowError traceback from bind(), after the server had been built."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from trainarena.cli import api as api_cli
from trainarena.cli import app, serve


@pytest.mark.parametrize("command", ["api", "serve"])
@pytest.mark.parametrize("port", ["99999", "65536", "-1"])
def test_a_port_outside_the_tcp_range_is_an_invalid_value_before_anything_starts(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: str, port: str) -> None:  # fmt: skip
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server was started")

    monkeypatch.setattr(api_cli, "sharing_devices", refuse)
    monkeypatch.setattr(serve, "sharing_devices", refuse)
    result = runner.invoke(app, [command, "--port", port], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output
