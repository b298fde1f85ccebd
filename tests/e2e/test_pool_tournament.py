"""An operator's tournaments through the real sandbox, on data the test writes (not the demo's
datasets): tasks added from a JSONL, a CSV and a save_to_disk folder on the tiny offline model, three
example competitors registered; then `tournament create --json` and `tournament run ID --json`, or
`trainarena serve` on a short cadence, killed mid-tournament and started again."""

from __future__ import annotations

import csv
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.demo.example_repos import make_example_repo
from trainarena.demo.text import examples_root

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")]

ROWS = [{"question": f"add {a} and {b}", "answer": str(a + b)} for a in range(12) for b in range(10)]


def _invoke(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _operator_set_up(assets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: str) -> None:
    """Three tasks in pool `weekly` (from a JSONL, a CSV and a save_to_disk folder), three competitors."""
    import datasets

    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    with open(tmp_path / "rows.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, ["question", "answer"])
        writer.writeheader()
        writer.writerows(ROWS)
    datasets.disable_progress_bars()
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    for name, source in (("sums-jsonl", "rows.jsonl"), ("sums-csv", "rows.csv"), ("sums-saved", "saved")):
        _invoke("task", "add", name, "--type", "instruct", "--base-model", str(assets.tiny_llama), "--dataset", source,
                "--field-instruction", "question", "--field-output", "answer", "--budget", budget, "--pool", "weekly", "--json")
    for name in ("baseline", "instruct_only", "crasher"):
        repo, commit = make_example_repo(examples_root() / name, tmp_path / "repos" / name)
        _invoke("competitor", "add", name, str(repo), commit, "--json")


def test_a_pool_tournament_plays_to_a_champion_in_the_sandbox(assets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _operator_set_up(assets, tmp_path, monkeypatch, budget="20")
    created = _invoke("tournament", "create", "--kind", "text", "--pool", "weekly", "--seed", "1", "--json")
    assert created["entrants"] == ["baseline", "instruct_only", "crasher"]
    result = _invoke("tournament", "run", str(created["id"]), "--json")
    assert result["champion"] in ("baseline", "instruct_only")
    assert result["weights"][result["champion"]] > 0 and result["weights"]["crasher"] == 0
    shown = _invoke("tournament", "show", str(created["id"]), "--json")
    scored = [run for run in shown["runs"] if run["score"] is not None]
    assert scored and {run["task"] for run in shown["runs"]} <= set(created["tasks"])


class ServeProcess:
    """`trainarena serve --json` as a process (text tournaments from pool `weekly` every 10 minutes);
    its log lines are read as they come."""

    def __init__(self, stderr: Path) -> None:
        environment = {**os.environ, "TRAINARENA_SCHEDULE__TEXT_POOL": "weekly", "TRAINARENA_SCHEDULE__TEXT_EVERY": "600",
                       "TRAINARENA_SCHEDULE__IMAGE_ENABLED": "false", "PYTHONPATH": os.pathsep.join(sys.path),
                       "TRAINARENA_API__PORT": "0"}  # serve serves the API too: on any free port
        with stderr.open("w") as errors:  # the child keeps its own copy
            self.process = subprocess.Popen([sys.executable, "-m", "trainarena.cli", "serve", "--json"], env=environment,
                                            stdout=subprocess.PIPE, stderr=errors, text=True)
        self.stderr = stderr
        self.lines: queue.Queue[dict] = queue.Queue()
        self.log: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def wait_for(self, event: str, timeout: float = 240.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            entry = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            self.log.append(entry)
            if entry["event"] == event:
                return entry
            assert entry["event"] != "fault", (entry, self.stderr.read_text())

    def end(self, how: signal.Signals) -> int:
        self.process.send_signal(how)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        self.process.stdout.close()
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return code


@pytest.mark.serial  # 10 s runs: under a second worker's load both scored runs can time out, and nobody is crowned
def test_serve_killed_mid_tournament_resumes_to_one_champion_and_weights(assets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _operator_set_up(assets, tmp_path, monkeypatch, budget="10")
    first = ServeProcess(tmp_path / "serve-1.err")
    created = first.wait_for("created")
    assert created["entrants"] == ["baseline", "instruct_only", "crasher"]
    first.wait_for("run_finished")
    assert first.end(signal.SIGKILL) == -signal.SIGKILL  # mid-tournament: a run in flight or next

    second = ServeProcess(tmp_path / "serve-2.err")
    finished = second.wait_for("finished")
    published = second.wait_for("published")
    assert second.end(signal.SIGTERM) == 0
    assert second.log[-1]["event"] == "stopped"
    assert not any(entry["event"] == "created" for entry in second.log)  # resumed, not created again
    assert finished["tournament_id"] == created["id"] and finished["champion"] in ("baseline", "instruct_only")

    champions = _invoke("champions", "--json")
    assert [(reign["champion"], reign["tournament_id"]) for reign in champions] == [(finished["champion"], created["id"])]
    exported = _invoke("weights", "export", "--format", "json")
    assert exported["id"] == published["vector"] and exported["tournaments"]["text"]["id"] == created["id"]
    weights = {row["competitor"]: row["weight"] for row in exported["weights"]}
    assert weights[finished["champion"]] == max(weights.values()) > 0 and weights.get("crasher", 0) == 0
    shown = _invoke("tournament", "show", str(created["id"]), "--json")
    assert all(run["status"] in ("succeeded", "failed", "timed_out", "invalid") for run in shown["runs"])
