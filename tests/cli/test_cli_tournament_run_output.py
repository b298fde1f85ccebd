"""What `trainarena tournament run` writes to stdout: nothing before its result (an empty line came
first, even before an error, from the progress display stopped with nothing drawn), and a last line
that says "no winner" once where nobody scored (QA of the CLI, finding 9)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from cli_store import FinishedStore
from typer.testing import CliRunner

from trainarena.cli import app, pool_tournaments
from trainarena.engine import Finished

# The engine's reason where nobody scored (engine/bracket.py).
NOBODY = "nobody produced a valid score in the last round; no champion to retain: no winner"


class _Executor:
    def close(self) -> None:
        pass


def test_an_unknown_tournament_writes_nothing_to_stdout(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_tournaments, "make_executor", lambda settings, unsafe: _Executor())
    result = runner.invoke(app, ["tournament", "run", "5"])
    assert result.exit_code == 1 and "no tournament has the name or id '5'" in result.stderr
    assert result.stdout == ""


def test_with_nobody_crowned_the_last_line_says_no_winner_once(finished_store: FinishedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    finished = Finished(None, False, None, (), NOBODY)
    monkeypatch.setattr(pool_tournaments, "make_executor", lambda settings, unsafe: _Executor())
    monkeypatch.setattr(pool_tournaments, "run_pool_tournament", lambda *args, **kwargs: SimpleNamespace(champion=finished.champion, reason=finished.reason))
    result = CliRunner().invoke(app, ["tournament", "run", str(finished_store.tournament_id)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    first, *_ = result.stdout.splitlines()
    assert first == f"champion: none ({NOBODY})" and result.stdout.count("no winner") == 1
