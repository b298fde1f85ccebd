"""`trainarena runs show | list` on a finished tournament: a run's whole reason, stderr tail, files, score
and timings; a clear error for an unknown id; lists filtered by tournament, competitor and status."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from box_table import read_table
from cli_store import (
    COMPETITORS,
    CRASH_REASON,
    CRASH_TAIL,
    INVALID_REASON,
    LONG_NAME,
    TIMEOUT_REASON,
    FinishedStore,
    build_retried_store,
)
from field_lines import read_block, read_fields
from typer.testing import CliRunner, Result

from trainarena.cli import app
from trainarena.reporting.reasons import short_reason, split_reason

CRASH_SUMMARY = "exited with code 1."
LAST_STDERR_LINE = CRASH_TAIL.splitlines()[-1]
DETAIL_FIELDS = ["run", "tournament", "round", "task", "competitor", "status", "attempts", "score", "house script", "started",
                 "finished", "wall time", "steps (s)", "log path", "artifact", "artifact digest"]  # fmt: skip


def _invoke(*args: str, width: int = 80) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(width)})


def _run_ids() -> dict[str, int]:
    """Each competitor's run id (one run each in the fixture's tournament), read through `runs list`."""
    result = _invoke("runs", "list", "--json")
    assert result.exit_code == 0, result.output
    return {run["competitor"]: run["run_id"] for run in json.loads(result.stdout)}


def test_short_reason_is_the_summary_and_the_exception() -> None:
    assert short_reason(CRASH_REASON) == f"{CRASH_SUMMARY} {LAST_STDERR_LINE}"
    assert short_reason(TIMEOUT_REASON) == TIMEOUT_REASON.splitlines()[0]  # the tail of a cut run is progress, not a cause
    assert short_reason(INVALID_REASON) == INVALID_REASON
    assert short_reason(None) == "" and split_reason(None) == ("", None)
    assert split_reason(CRASH_REASON) == (CRASH_SUMMARY, CRASH_TAIL)


@pytest.mark.parametrize("width", [80, 120])
def test_show_prints_a_failed_run_in_full(finished_store: FinishedStore, width: int) -> None:
    run_id = _run_ids()["crasher"]
    result = _invoke("runs", "show", str(run_id), width=width)
    assert result.exit_code == 0, result.output
    fields, lines = read_fields(result.stdout, width)
    assert list(fields) == list(DETAIL_FIELDS)
    assert fields["run"] == str(run_id) and fields["tournament"] == "week-1 (id 1)"
    assert fields["round"].startswith("1 (knockout), match ")
    assert fields["task"].startswith("instruct-r1-") and fields["task"].endswith("(instruct on tiny, budget 1.0 s)")
    assert fields["competitor"] == "crasher (https://github.com/x/crasher at " + "1" * 40 + ")"
    assert (fields["status"], fields["attempts"], fields["score"]) == ("failed", "1", "-")
    assert fields["house script"] == "not run on this seed"  # a tournament run: no house run beside it, and it says so
    assert fields["started"] == "2023-11-14 22:13:20 UTC" and fields["wall time"] == "12.5 s"
    log_dir = finished_store.data_dir / "runs" / "tournament-1" / f"run-{run_id}" / "attempt-1" / "logs"
    assert fields["log path"] == str(log_dir) and fields["artifact"] == fields["artifact digest"] == "-"
    assert read_block(lines, width)[:2] == ("reason", [CRASH_SUMMARY])
    # the heading names the log file whole, folded within the width where the path is longer than a line
    heading, tail, rest = read_block(read_block(lines, width)[2], width)
    assert "".join(heading.split()) == "".join(f"stderr tail ({log_dir / 'stderr.log'})".split()) and rest == []
    assert len(tail) == 20 and tail[-len(CRASH_TAIL.splitlines()) :] == CRASH_TAIL.splitlines()  # the log's last lines, verbatim


def test_show_prints_a_scored_run_with_its_artifact(finished_store: FinishedStore) -> None:
    run_id = _run_ids()[LONG_NAME]
    result = _invoke("runs", "show", str(run_id))
    assert result.exit_code == 0, result.output
    fields, _ = read_fields(result.stdout, 80)
    assert fields["status"] == "succeeded" and fields["score"].endswith("(lower is better)")
    assert fields["artifact digest"] == "ab" * 32 and fields["artifact"].endswith(f"run-{run_id}/attempt-1/output")
    assert "\nreason\n" not in result.stdout  # nothing failed, so no reason block


def test_show_json_and_tail_options(finished_store: FinishedStore) -> None:
    run_id = _run_ids()["crasher"]
    detail = json.loads(_invoke("runs", "show", str(run_id), "--json").stdout)
    assert detail["run_id"] == run_id and detail["competitor"] == "crasher" and detail["tournament"] == "week-1"
    assert (detail["round"], detail["stage"], detail["attempts"], detail["status"]) == (1, "knockout", 1, "failed")
    assert detail["failure_reason"] == CRASH_REASON and detail["summary"] == CRASH_SUMMARY
    assert detail["reason"] == short_reason(CRASH_REASON) and detail["score"] is None
    assert detail["wall_seconds"] == 12.5 and detail["budget_seconds"] == 1.0 and detail["task_type"] == "instruct"
    assert detail["started_at"].startswith("2023-11-14T22:13:20") and detail["artifact_digest"] is None
    assert detail["stderr_tail"].endswith(LAST_STDERR_LINE) and detail["stderr_tail_from"].endswith("stderr.log")
    assert detail["references"] == [{"kind": "house", "label": "house script", "run_id": None, "score": None,
                                     "improvement": None, "missing": "not run on this seed"}]  # fmt: skip

    three = json.loads(_invoke("runs", "show", str(run_id), "--json", "--tail", "3").stdout)
    assert three["stderr_tail"].splitlines() == CRASH_TAIL.splitlines()[-3:]
    none = json.loads(_invoke("runs", "show", str(run_id), "--json", "--tail", "0").stdout)
    assert none["stderr_tail"] is None and none["failure_reason"] == CRASH_REASON

    Path(detail["log_path"], "stderr.log").unlink()  # work dirs get cleaned: the recorded tail remains
    recorded = json.loads(_invoke("runs", "show", str(run_id), "--json").stdout)
    assert recorded["stderr_tail"] == CRASH_TAIL and recorded["stderr_tail_from"] == "recorded with the failure reason"


def test_show_an_unknown_run_is_a_clear_error(finished_store: FinishedStore) -> None:
    result = _invoke("runs", "show", "999")
    assert result.exit_code == 1 and result.stdout == ""
    assert "error: no run with id 999; `trainarena runs list` lists the runs" in result.stderr
    as_json = _invoke("runs", "show", "999", "--json")  # asked for JSON: the error is JSON too
    assert as_json.exit_code == 1 and json.loads(as_json.stdout) == {
        "ok": False, "run_id": 999, "error": "no run with id 999; `trainarena runs list` lists the runs"}


def test_list_filters_by_tournament_competitor_and_status(finished_store: FinishedStore) -> None:
    everything = json.loads(_invoke("runs", "list", "--json", "--tournament", "week-1").stdout)
    assert sorted(run["competitor"] for run in everything) == sorted(COMPETITORS)
    crasher = json.loads(_invoke("runs", "list", "--json", "--competitor", "crasher").stdout)
    assert [(run["status"], run["reason"]) for run in crasher] == [("failed", short_reason(CRASH_REASON))]
    scored = json.loads(_invoke("runs", "list", "--json", "--status", "succeeded").stdout)
    (honest,) = [run for run in everything if run["competitor"] == LONG_NAME]
    assert honest["score"] is not None and [run["run_id"] for run in scored] == [honest["run_id"]]
    assert json.loads(_invoke("runs", "list", "--json", "--status", "running").stdout) == []
    assert _invoke("runs", "list", "--status", "running").stdout.strip() == "no runs match the filters"
    assert json.loads(_invoke("runs", "list", "--json", "--status", "cancelled").stdout) == []  # as listed: no tournament cancelled

    by_id = json.loads(_invoke("runs", "list", "--json", "--tournament", str(finished_store.tournament_id)).stdout)
    assert by_id == everything  # as `tournament show ID` takes it
    unknown = _invoke("runs", "list", "--tournament", "week-9")
    assert unknown.exit_code == 1 and unknown.stdout == ""
    assert unknown.stderr.startswith("error: no tournament has the name or id 'week-9'; the tournament filter takes a "
                                     "tournament's name or its id, or 'ad hoc' ")
    no_id = _invoke("runs", "list", "--tournament", "99", "--json")
    assert no_id.exit_code == 1 and json.loads(no_id.stdout)["tournament"] == "99"
    assert "no tournament has the name or id '99'" in json.loads(no_id.stdout)["error"]
    assert "no competitor named 'nobody'" in _invoke("runs", "list", "--competitor", "nobody").stderr
    no_task = _invoke("runs", "list", "--task", "nosuch")
    assert no_task.exit_code == 1 and no_task.stdout == "" and no_task.stderr.count("\n") == 1
    assert no_task.stderr.startswith("error: no task named 'nosuch'; the task filter takes a task's name, or the first 6 ")
    assert json.loads(_invoke("runs", "list", "--task", "nosuch", "--json").stdout)["task"] == "nosuch"
    # a task that is there lists its runs, none when the other filters leave none
    task = everything[0]["task"]
    listed = [run["run_id"] for run in json.loads(_invoke("runs", "list", "--json", "--task", task).stdout)]
    assert listed == [run["run_id"] for run in everything if run["task"] == task] and listed
    assert _invoke("runs", "list", "--task", task, "--status", "running").stdout.strip() == "no runs match the filters"


@pytest.mark.parametrize("width", [80, 120])
def test_list_keeps_the_names_whole_and_cuts_the_reason(finished_store: FinishedStore, width: int) -> None:
    result = _invoke("runs", "list", width=width)
    assert result.exit_code == 0, result.output
    rows = read_table(result.stdout, width, ["run", "tournament", "round", "task", "competitor", "result↓", "reason"])
    runs = json.loads(_invoke("runs", "list", "--json").stdout)
    assert [row[:2] + row[3:5] for row in rows] == [[str(run["run_id"]), "week-1", run["task"], run["competitor"]] for run in runs]
    assert [row[5] for row in rows] == [f"{run['score']:.4f}" if run["status"] == "succeeded" else run["status"] for run in runs]
    (crash_row,) = [row for row in rows if row[4] == "crasher"]
    assert crash_row[6].endswith("…") and short_reason(CRASH_REASON).startswith(crash_row[6][:-1])


def test_list_on_an_empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    assert "no runs yet" in _invoke("runs", "list").stdout
    assert json.loads(_invoke("runs", "list", "--json").stdout) == []


def test_show_lists_every_attempt_and_marks_the_one_that_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose first try died with the platform is run again: `runs show` keeps both tries, the
    interrupted one with its driver, and says which one the score belongs to."""
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    build_retried_store()

    shown = {}
    for run_id in _run_ids().values():
        result = _invoke("runs", "show", str(run_id), "--json")
        assert result.exit_code == 0, result.output
        detail = json.loads(result.stdout)
        shown[detail["competitor"]] = detail
    retried = next(detail for detail in shown.values() if len(detail["attempt_history"]) == 2)
    first, second = retried["attempt_history"]
    assert (first["status"], first["counts"], second["counts"]) == ("interrupted", False, True)
    assert first["driver"].endswith(f":{os.getpid()}")
    assert retried["attempts"] == 2 and second["status"] == retried["status"]

    text = _invoke("runs", "show", str(retried["run_id"]), width=80).stdout.splitlines()
    assert "attempts" in [line.strip() for line in text]
    rows = [line for line in text if line.startswith("│")]
    assert any("interrupted" in row for row in rows) and any("(counts)" in row for row in rows)
    assert all(len(row) <= 80 for row in rows)  # the table keeps to the width; fields print whole values
