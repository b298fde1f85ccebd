"""`runs list` and `runs show` on a tournament whose driver was killed outright: its run still marked
running says it is not training (no driver since when, and what resumes it): in the table, at 80
columns too, its result reads `no driver` whole and the line under the table says it in full; in the
details and --json too; a run whose tournament a live driver holds names that driver."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from box_table import read_table
from driverless_store import DRIVERLESS, DriverlessStore, build_driverless_store, hand_lease_to
from field_lines import read_fields
from typer.testing import CliRunner, Result

from trainarena.cli import app
from trainarena.settings import Settings
from trainarena.store import open_store

NOTE = re.compile(r"no driver since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(its driver stopped or was killed\); "
                  r"`trainarena tournament run (\d+)` resumes it")  # fmt: skip
LIST_HEADERS = ["run", "tournament", "round", "task", "competitor", "result↓", "reason"]


@pytest.fixture
def driverless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DriverlessStore:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return build_driverless_store(tmp_path / "data")


def _invoke(*args: str, width: int = 80) -> Result:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result


def test_runs_list_says_a_running_run_of_a_killed_driver_is_not_training(driverless: DriverlessStore) -> None:
    runs = {run["run_id"]: run for run in json.loads(_invoke("runs", "list", "--json").output)}
    left = runs.pop(driverless.run_id)
    assert left["status"] == "running"
    assert left["driver"]["alive"] is False and left["driver"]["host"] == socket.gethostname() and left["driver"]["since"]
    assert all(run["driver"] is None for run in runs.values())  # finished, pending or in a finished tournament

    wide = {int(row[0]): row for row in read_table(_invoke("runs", "list", width=200).output, 200, LIST_HEADERS)}
    assert wide[driverless.run_id][5:] == ["no driver", ""] and wide[driverless.done_id][5] != "no driver"
    output = _invoke("runs", "list").output
    rows = {int(row[0]): row for row in read_table(output, 80, LIST_HEADERS)}  # fits 80 columns
    assert rows[driverless.run_id][5:] == ["no driver", ""]  # whole: a short value is never cut, as the reason is
    below = " ".join(output[output.index("└"):].split()[1:])  # the lines under the table, joined
    assert below.startswith(f"{DRIVERLESS}: its runs marked running are not training: no driver since"), output
    note = NOTE.search(below)
    assert note is not None and int(note[1]) == driverless.tournament_id, output


def test_runs_show_says_a_running_run_of_a_killed_driver_is_not_training(driverless: DriverlessStore) -> None:
    fields, _ = read_fields(_invoke("runs", "show", str(driverless.run_id)).output, 80)
    assert fields["status"] == "running"
    assert fields["driver"].startswith("not training: no driver since") and NOTE.search(fields["driver"]), fields
    shown = json.loads(_invoke("runs", "show", str(driverless.run_id), "--json").output)
    assert shown["driver"]["alive"] is False and shown["driver"]["host"] == socket.gethostname()
    assert json.loads(_invoke("runs", "show", str(driverless.done_id), "--json").output)["driver"] is None
    assert "driver" not in read_fields(_invoke("runs", "show", str(driverless.done_id)).output, 80)[0]


def test_a_running_run_under_a_live_driver_names_it(driverless: DriverlessStore) -> None:
    with open_store(Settings()) as store:
        hand_lease_to(store, driverless.tournament_id, "elsewhere", 4242)  # a live driver on another host
    fields, _ = read_fields(_invoke("runs", "show", str(driverless.run_id)).output, 80)
    assert (fields["status"], fields["driver"]) == ("running", "driven by elsewhere pid 4242")
    listed = {run["run_id"]: run for run in json.loads(_invoke("runs", "list", "--json").output)}
    assert listed[driverless.run_id]["driver"] == {"alive": True, "host": "elsewhere", "pid": 4242, "since": None}
    output = _invoke("runs", "list").output
    assert "not training" not in output and "no driver" not in output
