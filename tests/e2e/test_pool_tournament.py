"""An operator's tournament through the real sandbox, on data the test writes (not the demo's
datasets): tasks added from a JSONL, a CSV and a save_to_disk folder on the tiny offline model, three
example competitors registered, `tournament create --json` then `tournament run ID --json`."""

from __future__ import annotations

import csv
import json
import shutil
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


def test_a_pool_tournament_plays_to_a_champion_in_the_sandbox(assets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
                "--field-instruction", "question", "--field-output", "answer", "--budget", "20", "--pool", "weekly", "--json")
    for name in ("baseline", "instruct_only", "crasher"):
        repo, commit = make_example_repo(examples_root() / name, tmp_path / "repos" / name)
        _invoke("competitor", "add", name, str(repo), commit, "--json")

    created = _invoke("tournament", "create", "--kind", "text", "--pool", "weekly", "--seed", "1", "--json")
    assert created["entrants"] == ["baseline", "instruct_only", "crasher"]
    result = _invoke("tournament", "run", str(created["id"]), "--json")
    assert result["champion"] in ("baseline", "instruct_only")
    assert result["weights"][result["champion"]] > 0 and result["weights"]["crasher"] == 0
    shown = _invoke("tournament", "show", str(created["id"]), "--json")
    scored = [run for run in shown["runs"] if run["score"] is not None]
    assert scored and {run["task"] for run in shown["runs"]} <= set(created["tasks"])
