import json
import math
import re

import pytest
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.engine import MAX_SIMULATED_ENTRANTS, MAX_SIMULATED_NOISE, SIMULATED_EDGE_RANGE, Stage, simulate
from trainarena.settings import TournamentRules, WeightRules

RULES, WEIGHTS = TournamentRules(), WeightRules()


def test_same_seed_same_tournament_and_different_seed_differs():
    a = simulate(60, 3, 0.03, 0.0, RULES, WEIGHTS)
    assert a == simulate(60, 3, 0.03, 0.0, RULES, WEIGHTS)
    assert a.replay.record != simulate(60, 4, 0.03, 0.0, RULES, WEIGHTS).replay.record


def test_a_much_better_champion_is_retained_and_a_much_worse_one_loses():
    assert simulate(50, 1, 0.01, 0.3, RULES, WEIGHTS).finished.champion == "champion"
    dethroned = simulate(50, 1, 0.01, -0.5, RULES, WEIGHTS).finished
    assert dethroned.crowned and dethroned.champion != "champion"


def test_with_no_noise_the_best_entrant_reaches_the_boss_round():
    report = simulate(200, 7, 0.0, 0.2, RULES, WEIGHTS)
    best = min((v, n) for n, v in report.true_loss.items() if n != "champion")[1]
    assert report.finished.challenger == best


def test_bootstrap_gate_runs_in_simulation():
    report = simulate(20, 2, 0.01, -0.5, TournamentRules(boss_rule="majority", bootstrap_gate=True), WEIGHTS)
    assert report.replay.boss is not None
    assert all(t.bootstrap_met for t in report.replay.boss.tasks)  # a 2x better challenger passes the gate


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="noise"):
        simulate(5, 0, -0.1, 0.0, RULES, WEIGHTS)
    with pytest.raises(ValueError, match="champion_edge"):
        simulate(5, 0, 0.1, 1.0, RULES, WEIGHTS)
    with pytest.raises(ValueError, match=f"entrants must be from 0 to {MAX_SIMULATED_ENTRANTS:,}, got -5"):
        simulate(-5, 0, 0.1, 0.0, RULES, WEIGHTS)


def test_the_cli_refuses_more_entrants_than_the_maximum_before_playing():
    """100,000,000 entrants grew memory without bound until the process was killed."""
    result = CliRunner().invoke(app, ["tournament", "simulate", "--entrants", str(MAX_SIMULATED_ENTRANTS + 1), "--seed", "1"],
                                env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 2 and "Invalid value for '--entrants'" in result.output
    assert f"{MAX_SIMULATED_ENTRANTS:,}" in CliRunner().invoke(app, ["tournament", "simulate", "--help"], env={"COLUMNS": "200"}).output
    with pytest.raises(ValueError, match=f"got {MAX_SIMULATED_ENTRANTS + 1}"):
        simulate(MAX_SIMULATED_ENTRANTS + 1, 0, 0.1, 0.0, RULES, WEIGHTS)


def test_noise_past_the_maximum_is_refused_and_the_json_stays_json():
    """--noise inf played a tournament of inf and -inf scores and printed JSON's non-standard Infinity."""
    result = CliRunner().invoke(app, ["tournament", "simulate", "--entrants", "5", "--seed", "2", "--noise", "inf"],
                                env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 2 and "Invalid value for '--noise'" in result.output
    with pytest.raises(ValueError, match=f"noise must be from 0 to {MAX_SIMULATED_NOISE:g}, got inf"):
        simulate(5, 2, float("inf"), 0.0, RULES, WEIGHTS)
    loud = CliRunner().invoke(app, ["tournament", "simulate", "--entrants", "5", "--seed", "2", "--noise", str(MAX_SIMULATED_NOISE), "--json"])
    assert loud.exit_code == 0
    json.loads(loud.output, parse_constant=lambda token: pytest.fail(f"not JSON: {token}"))


@pytest.mark.parametrize("edge", ["-inf", "-1e308", "-9.5", "nan", "1"])
def test_a_champion_edge_out_of_range_is_refused(edge: str) -> None:
    """--champion-edge -inf played a tournament whose champion "failed" every boss task (its loss was inf)."""
    result = CliRunner().invoke(app, ["tournament", "simulate", "--entrants", "3", "--seed", "1", f"--champion-edge={edge}"],
                                env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 2 and "Invalid value for '--champion-edge'" in result.output
    with pytest.raises(ValueError, match=rf"champion_edge must be from -9 to 0\.99 .*, got {re.escape(str(float(edge)))}"):
        simulate(3, 1, 0.03, float(edge), RULES, WEIGHTS)


def test_the_edges_of_the_champion_edge_play() -> None:
    for edge in SIMULATED_EDGE_RANGE:
        result = CliRunner().invoke(app, ["tournament", "simulate", "--entrants", "3", "--seed", "1", f"--champion-edge={edge}", "--json"])
        assert result.exit_code == 0, result.output
    assert simulate(3, 1, 0.0, SIMULATED_EDGE_RANGE[0], RULES, WEIGHTS).finished.champion != "champion"


def test_ten_thousand_entrants_stays_linear():
    report = simulate(10_000, 0, 0.03, 0.0, RULES, WEIGHTS)
    stages = report.stages
    assert stages[0] == Stage.GROUP and stages[-1] == Stage.BOSS
    assert math.isclose(sum(report.weights.weights.values()) + report.weights.undistributed, 1.0)


def test_cli_simulate_json_goes_group_knockout_boss_with_one_champion():
    result = CliRunner().invoke(app, ["tournament", "simulate", "--entrants", "37", "--seed", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    stages = [s["stage"] for s in data["stages"]]
    assert stages[0] == "group" and stages[-1] == "boss" and "knockout" in stages
    assert stages.index("knockout") > stages.index("group")
    assert data["champion"] in {"champion", data["challenger"]}
    assert data["weights"][data["champion"]] == WEIGHTS.champion_share
    assert math.isclose(sum(data["weights"].values()) + data["undistributed"], 1.0)
    group = data["stages"][0]["matches"][0]
    assert len(group["advancers"]) == TournamentRules().group_advance
    boss = data["stages"][-1]["matches"][0]
    assert len(boss["tasks"]) == TournamentRules().boss_tasks_text and "required_lead" in boss["tasks"][0]


def test_cli_simulate_prints_bracket_boss_and_weights():
    result = CliRunner().invoke(app, ["tournament", "simulate", "--entrants", "37", "--seed", "1", "--champion-edge", "-0.1"])
    assert result.exit_code == 0, result.output
    for text in ("group r1-g001", "knockout", "boss round", "champion:", "weights", "undistributed"):
        assert text in result.output
