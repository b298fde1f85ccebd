"""The small benchmarks' command lines: ``eval_speed``, ``engine_scale``, ``list_scale`` and
``scheduling`` parse their arguments (``--help`` is help, not a cache folder) and print one JSON
object with ``--json``."""

from __future__ import annotations

import json

import pytest

from benchmarks import engine_scale, eval_speed, list_scale, scheduling


def test_eval_speed_help_builds_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        eval_speed.main(["--help"])
    assert exit_info.value.code == 0
    assert "--cache-dir" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # it used to build the assets in ./--help/


def test_eval_speed_rejects_a_bare_folder_argument(capsys):
    with pytest.raises(SystemExit) as exit_info:
        eval_speed.main(["some-folder"])
    assert exit_info.value.code == 2 and "unrecognized arguments: some-folder" in capsys.readouterr().err


def test_engine_scale_json(capsys):
    assert engine_scale.main(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    sizes = [str(n) for n in engine_scale.SIZES]
    assert set(report["seconds"]) == set(report["us_per_entrant"]) == set(sizes)
    small, large = sizes
    per_entrant = {n: report["seconds"][n] / int(n) for n in sizes}
    assert report["per_entrant_ratio"] == pytest.approx(per_entrant[large] / per_entrant[small])
    assert report["target_met"] is (report["seconds"][large] < engine_scale.TARGET_SECONDS)


def test_list_scale_json_on_small_stores(capsys, monkeypatch):
    monkeypatch.setenv("TRAINARENA_DATA_DIR", "unused")  # each store sets its own
    assert list_scale.main(["--small", "50", "--large", "60", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["small"]["rows"], report["large"]["rows"]) == (50, 60)
    for name, ratio in report["ratios"].items():
        assert ratio == pytest.approx(report["large"][name] / report["small"][name])
    assert report["met"] is all(report["ratios"][name] < list_scale.TARGET_RATIO for name in list_scale.JUDGED)


def test_list_scale_refuses_a_small_store_larger_than_the_large(capsys):
    with pytest.raises(SystemExit) as exit_info:
        list_scale.main(["--small", "200", "--large", "100"])
    assert exit_info.value.code == 2 and "--small < --large" in capsys.readouterr().err


def test_scheduling_json_on_small_tournaments(capsys):
    assert scheduling.main(["--small", "3", "--large", "6", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    small, large = report["sizes"]
    assert (small["entrants"], large["entrants"]) == (3, 6) and small["runs"] < large["runs"]
    assert small["champion"] is not None and large["champion"] is not None
    assert report["per_run_ratio_large_to_small"] == pytest.approx(large["seconds_per_run"] / small["seconds_per_run"])


def test_scheduling_refuses_a_small_tournament_larger_than_the_large(capsys):
    with pytest.raises(SystemExit) as exit_info:
        scheduling.main(["--small", "300", "--large", "100"])
    assert exit_info.value.code == 2 and "--small < --large" in capsys.readouterr().err


@pytest.mark.slow  # the evaluator and a forward pass over a task's training split (about 40 s)
def test_eval_speed_json_on_the_cached_assets(assets, capsys):
    assert eval_speed.main(["--json", "--cache-dir", str(assets.root.parent)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"] == "cpu" and report["examples"] > 0
    assert report["evaluator_tokens_per_s"] > 0 and report["forward_tokens_per_s"] > 0
    assert report["evaluator_over_forward"] == pytest.approx(
        report["evaluator_tokens_per_s"] / report["forward_tokens_per_s"], rel=0.01)
    assert report["met"] is (report["evaluator_over_forward"] >= eval_speed.TARGET)


def test_grpo_scorer_noise_defaults_fit_the_hidden_split(assets, tmp_path):
    """The default settings score the shipped GRPO task's whole hidden split (no setting asks for
    more prompts than it has, which would score the same prompts under another name), once with one
    completion per prompt and once with the platform's default number."""
    from benchmarks.grpo_scorer_noise import build_parser, parse_settings
    from benchmarks.quality_runs import task_definition
    from trainarena.settings import Settings
    from trainarena.tasks import get_task_type
    from trainarena.tasks.text.rows import read_jsonl

    settings = Settings(data_dir=tmp_path / "data")
    task, _ = task_definition("grpo", assets.datasets_of("grpo")[0].name, assets, 30.0, 1)
    prepared = get_task_type("grpo").prepare(task, tmp_path / "train", tmp_path / "hidden", settings)
    hidden = len(read_jsonl(prepared.hidden_file))
    defaults = parse_settings(build_parser().parse_args([]).settings)
    assert defaults == [(hidden, 1), (hidden, settings.data.grpo_eval_samples)]
