"""A bad ``TRAINARENA_*`` setting is one line per variable at the CLI's entry, naming the variable, the
setting and the problem, with exit 1: it was pydantic's 40-line traceback from every command."""

from __future__ import annotations

import shutil
import sys

import pytest

from sqlite_lock import locked
from trainarena.cli import main
from trainarena.store import database


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["trainarena", *args])
    with pytest.raises(SystemExit) as ended:
        main()
    captured = capsys.readouterr()
    return ended.value.code, captured.out, captured.err


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        ("TRAINARENA_SCHEDULE__TEXT_EVERY", "garbage", "error: TRAINARENA_SCHEDULE__TEXT_EVERY='garbage' (setting schedule.text_every): "
                                                       "not a duration (seconds, or ISO 8601 such as P14D or PT10M)"),
        ("TRAINARENA_SCHEDULE__TEXT_EVERY", "P0D", "error: TRAINARENA_SCHEDULE__TEXT_EVERY='P0D' (setting schedule.text_every): "
                                                   "Input should be greater than or equal to 1 minute"),
        # A tournament due every millisecond: serve --once logged the same refusal four times in a pass.
        ("TRAINARENA_SCHEDULE__TEXT_EVERY", "PT0.001S", "error: TRAINARENA_SCHEDULE__TEXT_EVERY='PT0.001S' (setting schedule.text_every): "
                                                        "Input should be greater than or equal to 1 minute"),
        # A date past year 9999 was an OverflowError traceback from serve's schedule (latest + every).
        ("TRAINARENA_SCHEDULE__TEXT_EVERY", "P99999Y", "error: TRAINARENA_SCHEDULE__TEXT_EVERY='P99999Y' (setting schedule.text_every): "
                                                       "Input should be less than or equal to 3650 days"),
        ("TRAINARENA_SCHEDULE__ANCHOR", "notadate", "error: TRAINARENA_SCHEDULE__ANCHOR='notadate' (setting schedule.anchor): not a time"),
        ("TRAINARENA_RULES__BOSS_MARGIN", "abc", "error: TRAINARENA_RULES__BOSS_MARGIN='abc' (setting rules.boss_margin): Input should be a valid number"),
        ("TRAINARENA_SCHEDULE", "notjson", "error: TRAINARENA_SCHEDULE (setting schedule): not valid JSON"),
        ("TRAINARENA_DATABASE_URL", "foo://bar", "error: TRAINARENA_DATABASE_URL (setting database_url): no database kind 'foo' is known"),
        ("TRAINARENA_DATABASE_URL", "garbage", "error: TRAINARENA_DATABASE_URL (setting database_url): not a database URL"),
        ("TRAINARENA_RULES__BOSS_TASKS_TEXT", "1", "error: settings: 3 text task types are enabled in task_mix but rules.boss_tasks_text is 1"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(monkeypatch, capsys, variable, value, line) -> None:
    monkeypatch.setenv(variable, value)
    code, out, err = _main(monkeypatch, capsys, "status")
    assert code == 1 and out == ""
    assert err.startswith(line) and err.count("\n") == 1, err


def test_every_bad_setting_is_named_and_a_database_password_is_not_shown(monkeypatch, capsys) -> None:
    monkeypatch.setenv("TRAINARENA_WEIGHTS__TEXT_SHARE", "2")
    monkeypatch.setenv("TRAINARENA_SCHEDULE__IMAGE_ENABLED", "maybe")
    code, _, err = _main(monkeypatch, capsys, "serve", "--once")
    assert code == 1 and sorted(line.split("=")[0] for line in err.splitlines()) == [
        "error: TRAINARENA_SCHEDULE__IMAGE_ENABLED", "error: TRAINARENA_WEIGHTS__TEXT_SHARE"]
    monkeypatch.delenv("TRAINARENA_WEIGHTS__TEXT_SHARE")
    monkeypatch.delenv("TRAINARENA_SCHEDULE__IMAGE_ENABLED")
    # A well-formed URL of a database that is not there: the first connection fails.
    monkeypatch.setenv("TRAINARENA_DATABASE_URL", "postgresql+psycopg://me:hunter2@127.0.0.1:1/arena?connect_timeout=2")
    code, _, err = _main(monkeypatch, capsys, "status")
    assert code == 1 and err.startswith("error: cannot open the database postgresql+psycopg://me:***@127.0.0.1:1/arena")
    assert "hunter2" not in err and err.count("\n") == 1 and err.rstrip().endswith("(TRAINARENA_DATABASE_URL)")


def test_a_database_gone_mid_command_is_one_line_naming_it(monkeypatch, capsys, tmp_path) -> None:
    """Opened, then locked past the busy timeout while the command writes: it was a traceback."""
    path = tmp_path / "store.db"
    monkeypatch.setenv("TRAINARENA_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 0.1)
    code, _, err = _main(monkeypatch, capsys, "keys", "list")  # makes the store
    assert code in (0, None), err
    with locked(path):
        code, out, err = _main(monkeypatch, capsys, "keys", "create", "someone", "--role", "operator")
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: the database sqlite:///{path} became unavailable: database is locked")


def test_a_database_file_replaced_mid_command_is_one_line_saying_the_command_must_be_restarted(monkeypatch, capsys, tmp_path) -> None:
    """Not "(TRAINARENA_DATABASE_URL)": the setting is right, the file under it changed, and the store
    refuses that path until the command starts again."""
    path = tmp_path / "store.db"
    monkeypatch.setenv("TRAINARENA_DATABASE_URL", f"sqlite:///{path}")
    opened = database.end_runs_of_dead_drivers

    def then_replaced(session) -> None:  # the store's first transaction, as it opens; then someone replaces the file
        opened(session)
        shutil.copy(path, tmp_path / "copy.db")
        (tmp_path / "copy.db").replace(path)

    monkeypatch.setattr(database, "end_runs_of_dead_drivers", then_replaced)
    code, out, err = _main(monkeypatch, capsys, "keys", "list")
    assert code == 1 and out == ""
    assert err == (f"error: the database file {path} was deleted or replaced while the command was running; "
                   "the command must be restarted to use the file now at that path\n")


def test_a_misspelt_section_field_names_the_setting_meant(monkeypatch, capsys) -> None:
    """It read "Extra inputs are not permitted", pydantic's words, naming nothing to set instead."""
    monkeypatch.setenv("TRAINARENA_RULES__BOS_MARGIN", "0.1")
    code, out, err = _main(monkeypatch, capsys, "status")
    assert code == 1 and out == ""
    assert err == ("error: TRAINARENA_RULES__BOS_MARGIN='0.1' (setting rules.bos_margin): no such setting in section rules; "
                   "did you mean TRAINARENA_RULES__BOSS_MARGIN?\n")


@pytest.mark.parametrize(
    ("variable", "meant"),
    [("TRAINARENA_DATADIR", "TRAINARENA_DATA_DIR"),  # the store went to ./.trainarena without a word
     ("TRAINARENA_SCHEDULE_TEXT_POOL", "TRAINARENA_SCHEDULE__TEXT_POOL"),  # one underscore: serve drew from pool 'text'
     ("TRAINARENA_RULE__BOSS_MARGIN", "TRAINARENA_RULES__BOSS_MARGIN")],
)
def test_a_variable_that_looks_meant_as_a_setting_is_warned_of(monkeypatch, capsys, tmp_path, variable, meant) -> None:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(variable, "x")
    monkeypatch.setenv("TRAINARENA_RUN_ID", "3")  # the contract's, and the test suite's, are no misspellings
    monkeypatch.setenv("TRAINARENA_TEST_ARTIFACTS", str(tmp_path))
    monkeypatch.setenv("TRAINARENA_API_PORT", "8001")  # compose's, from docker/.env (docs/deploy.md)
    code, _, err = _main(monkeypatch, capsys, "keys", "list")
    assert code in (0, None)
    assert err == f"warning: {variable} names no setting and is ignored; did you mean {meant}?\n"
