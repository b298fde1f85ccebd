"""A script's stderr reaches the operator's terminal through `runs show`, `runs list` and `trainarena run`:
its control characters are printed as visible escapes, so that it cannot erase lines, fake a verdict,
retitle the window or set the clipboard (OSC 52) there. The audit11s `esc` script's stderr is the input."""

from __future__ import annotations

import json

import pytest
from cli_store import FinishedStore
from rich.console import Console
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.cli.output import print_reason, printable
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.models import Run

HOSTILE = "normal line\n\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b]0;owned-title\x07\x1b[1A\x1b[2K\x1b[31mFAKE: run succeeded\x1b[0m\x9b2J\x7f\r"
CONTROL = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))]


def _controls(text: str) -> list[str]:
    return sorted({c for c in text if c in CONTROL})


def test_printable_escapes_every_control_character_but_tab_and_newline() -> None:
    every = "".join(chr(c) for c in range(0xA1))
    escaped = printable(every)
    assert _controls(escaped) == [] and "\t" in escaped and "\n" in escaped
    assert printable("\x1b[2K") == "\\x1b[2K" and printable("\x9b") == "\\x9b" and printable("é ü [x]") == "é ü [x]"


def test_a_failure_reason_and_stderr_tail_print_without_escape_sequences() -> None:
    console = Console(record=True, width=100, force_terminal=False)
    print_reason(console, f"exited with code 1. {HOSTILE}", HOSTILE, None)
    text = console.export_text()
    assert _controls(text) == [] and "\\x1b]52;c;ZWNobyBwd25lZA==\\x07" in text and "\\x1b[2K" in text


def test_runs_show_and_list_escape_what_the_script_wrote(finished_store: FinishedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = {run["competitor"]: run for run in json.loads(CliRunner().invoke(app, ["runs", "list", "--json"]).stdout)}
    run_id = runs["crasher"]["run_id"]
    with open_store(Settings()) as store, store.transaction() as session:
        attempt = session.get_one(Run, run_id).counted_attempt
        attempt.failure_reason = f"exited with code 1. {HOSTILE}\n--- stderr tail ---\n{HOSTILE}"
    log = next(finished_store.data_dir.rglob(f"run-{run_id}/attempt-1/logs/stderr.log"))
    log.write_text(log.read_text() + HOSTILE + "\n")
    for args in (["runs", "show", str(run_id)], ["runs", "list"]):
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert _controls(result.stdout) == [], args
    assert "\\x1b[2K" in result.stdout or "crasher" in result.stdout  # the list cuts the reason short
    shown = CliRunner().invoke(app, ["runs", "show", str(run_id)], env={"COLUMNS": "200"}).stdout
    assert "\\x1b]52;c;ZWNobyBwd25lZA==\\x07" in shown and shown.count("FAKE: run succeeded") == 2  # the reason, the log tail
    # --json keeps the text as it is, escaped by JSON itself.
    shown = CliRunner().invoke(app, ["runs", "show", str(run_id), "--json"]).stdout
    assert _controls(shown) == [] and HOSTILE in json.loads(shown)["failure_reason"]
