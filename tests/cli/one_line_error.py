"""The one line a command ends with when an argument is wrong: ``error: --opt VALUE: what is wrong``."""

from __future__ import annotations

from typer.testing import CliRunner

from trainarena.cli import app


def one_line_error(runner: CliRunner, args: list[str]) -> str:
    """Invoke ``args``; assert exit 2 with no traceback and no usage box; the single line printed."""
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "Usage:" not in result.output
    [line] = result.output.strip().splitlines()
    return line
