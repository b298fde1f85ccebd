"""`trainarena tournament ...`: tournament commands. `simulate` plays a seeded tournament in memory.

Each command is a thin shell: build ``Settings()`` in the command, call the engine, render. Rendering
lives in helpers (``simulation_json``, ``print_simulation``) so other commands can reuse them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from trainarena.cli import pool_tournaments
from trainarena.cli.output import seed_option
from trainarena.engine import (
    MAX_SIMULATED_ENTRANTS,
    MAX_SIMULATED_NOISE,
    SIMULATED_EDGE_RANGE,
    BossDecision,
    PlayedMatch,
    PlayedRound,
    RoundDecision,
    SimulationReport,
    simulate,
)
from trainarena.settings import Settings

app = typer.Typer(help="Tournaments on task pools (create, run, show, list); simulate one in memory.", no_args_is_help=True)
app.command("create")(pool_tournaments.create_command)
app.command("run")(pool_tournaments.run_command)
app.command("show")(pool_tournaments.show_command)
app.command("list")(pool_tournaments.list_command)
app.command("cancel")(pool_tournaments.cancel_command)

# Rows of the weights table printed by `simulate` (the JSON always carries every weight).
WEIGHT_ROWS_SHOWN = 10


@app.command("simulate")
def simulate_command(
    entrants: Annotated[int, typer.Option("--entrants", min=0, max=MAX_SIMULATED_ENTRANTS,
                                          help=f"Simulated competitors, at most {MAX_SIMULATED_ENTRANTS:,}.")],
    seed: Annotated[int, seed_option("--seed", help="Tournament seed: same seed, same tournament.")],
    noise: Annotated[float, typer.Option("--noise", min=0.0, max=MAX_SIMULATED_NOISE,
                                         help=f"Relative per-task score noise (0.03 = 3%), at most {MAX_SIMULATED_NOISE:g}.")] = 0.03,
    champion_edge: Annotated[
        float, typer.Option("--champion-edge", min=SIMULATED_EDGE_RANGE[0], max=SIMULATED_EDGE_RANGE[1],
                            help="How much lower the champion's true loss is than the field's best (its loss is the best "
                            "times 1 - E; below 0: worse).")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    show: Annotated[int, typer.Option("--show", min=1, help="Groups or pairs printed per round.")] = 8,
) -> None:
    """Play a whole simulated tournament (latent skill + noise) against a simulated champion."""
    settings = Settings()
    report = simulate(entrants, seed, noise, champion_edge, settings.rules, settings.weights)
    if as_json:
        typer.echo(json.dumps(simulation_json(report)))
    else:
        print_simulation(Console(), report, show)


# --- JSON -------------------------------------------------------------------------------------------


def _played_match_json(played: PlayedMatch) -> list[list[dict[str, Any]]]:
    return [[{"competitor": o.competitor, "score": o.score, "failure": o.failure} for o in task] for task in played.tasks]


def _round_json(played: PlayedRound, decided: RoundDecision) -> dict[str, Any]:
    matches = []
    for match, decision in zip(played.matches, decided.decisions, strict=True):
        matches.append(
            {
                "match_id": decision.match_id,
                "competitors": list(match.match.competitors),
                "outcomes": _played_match_json(match),
                "ranking": list(decision.ranking),
                "points": list(decision.points),
                "advancers": list(decision.advancers),
                "task_winners": list(decision.task_winners),
            }
        )
    return {"stage": str(played.plan.stage), "round": played.plan.index + 1, "matches": matches, "byes": list(played.plan.byes)}


def _boss_json(index: int, boss: BossDecision) -> dict[str, Any]:
    tasks = [
        {
            "task": t.task_index + 1,
            "challenger_score": t.challenger_score,
            "champion_score": t.champion_score,
            "lead": t.lead,
            "required_lead": t.required_lead,
            "margin_met": t.margin_met,
            "bootstrap_win_fraction": t.bootstrap_win_fraction,
            "bootstrap_met": t.bootstrap_met,
            "taken": t.taken,
            "reason": t.reason,
            "relative_lead": t.relative_lead,
        }
        for t in boss.tasks
    ]
    match = {"match_id": "boss", "challenger": boss.challenger, "champion": boss.champion, "tasks": tasks,
             "taken": boss.taken, "needed": boss.needed, "crowned": boss.crowned, "rule": boss.rule, "reason": boss.reason,
             "mean_lead": boss.mean_lead, "lower_bound": boss.lower_bound, "upper_bound": boss.upper_bound}  # fmt: skip
    return {"stage": "boss", "round": index + 1, "matches": [match], "byes": []}


def simulation_json(report: SimulationReport) -> dict[str, Any]:
    """One JSON-ready object: stages (group | knockout | boss, with matches), champion, weights."""
    replay, finished = report.replay, report.finished
    rounds = replay.record.rounds
    stages = [_round_json(played, decided) for played, decided in zip(rounds, replay.rounds, strict=False)]
    if replay.boss is not None:
        stages.append(_boss_json(rounds[-1].plan.index, replay.boss))
    return {
        "entrants": len(replay.record.entrants),
        "seed": replay.record.seed,
        "defending_champion": replay.record.champion,
        "stages": stages,
        "champion": finished.champion,
        "crowned": finished.crowned,
        "challenger": finished.challenger,
        "reason": finished.reason,
        "standings": list(finished.standings),
        "weights": report.weights.weights,
        "undistributed": report.weights.undistributed,
    }


# --- rich tables ------------------------------------------------------------------------------------


def _fmt(score: float | None) -> str:
    return "failed" if score is None else f"{score:.4f}"


def _scores_by_competitor(played: PlayedMatch) -> dict[str, list[float | None]]:
    scores: dict[str, list[float | None]] = {c: [None] * len(played.tasks) for c in played.match.competitors}
    for i, task in enumerate(played.tasks):
        for o in task:
            scores[o.competitor][i] = o.score
    return scores


def _print_group_round(console: Console, played: PlayedRound, decided: RoundDecision, show: int) -> None:
    for match, decision in list(zip(played.matches, decided.decisions, strict=True))[:show]:
        scores = _scores_by_competitor(match)
        table = Table(title=f"group {decision.match_id}", title_justify="left")
        for header in ("competitor", "scores", "points", ""):
            table.add_column(header)
        for name, points in zip(decision.ranking, decision.points, strict=True):
            mark = "advances" if name in decision.advancers else ""
            table.add_row(name, " ".join(_fmt(s) for s in scores[name]), str(points), mark)
        console.print(table)
    if len(played.matches) > show:
        console.print(f"... and {len(played.matches) - show} more groups")


def _print_knockout_round(console: Console, played: PlayedRound, decided: RoundDecision, show: int) -> None:
    table = Table(title=f"round {played.plan.index + 1}: knockout", title_justify="left")
    for header in ("pair", "competitor A", "score", "competitor B", "score", "advances"):
        table.add_column(header)
    for match, decision in list(zip(played.matches, decided.decisions, strict=True))[:show]:
        scores = _scores_by_competitor(match)
        a, b = match.match.competitors
        winner = decision.advancers[0] if decision.advancers else "nobody"
        table.add_row(decision.match_id, a, " ".join(map(_fmt, scores[a])), b, " ".join(map(_fmt, scores[b])), winner)
    console.print(table)
    if len(played.matches) > show:
        console.print(f"... and {len(played.matches) - show} more pairs")
    for name in played.plan.byes:
        console.print(f"bye: {name} advances without playing (fewest byes so far, then the seeded draw)")


def _print_boss(console: Console, boss: BossDecision) -> None:
    table = Table(title=f"boss round: {boss.challenger} (challenger) vs {boss.champion} (champion)", title_justify="left")
    majority = boss.rule == "majority"
    extra = ("required", "margin", "bootstrap") if majority else ("relative",)
    for header in ("task", "challenger", "champion", "lead", *extra, "taken"):
        table.add_column(header)
    for t in boss.tasks:
        lead = "-" if t.lead is None else f"{t.lead:+.4f}"
        if majority:
            gate = "-" if t.bootstrap_met is None else f"{t.bootstrap_met} ({t.bootstrap_win_fraction})"
            required = "-" if t.required_lead is None else f"{t.required_lead:.4f}"
            cells: tuple[str, ...] = (required, "met" if t.margin_met else "not met", gate)
        else:
            cells = ("left out" if t.relative_lead is None else f"{t.relative_lead:+.2%}",)
        table.add_row(str(t.task_index + 1), _fmt(t.challenger_score), _fmt(t.champion_score), lead, *cells,
                      "yes" if t.taken else "no")  # fmt: skip
    console.print(table)
    if majority:
        console.print(f"challenger took {boss.taken} of {len(boss.tasks)} tasks; a strict majority is {boss.needed}")
    else:
        console.print(f"paired rule: {boss.reason}")


def _print_weights(console: Console, report: SimulationReport) -> None:
    table = Table(title="weights", title_justify="left")
    table.add_column("competitor")
    table.add_column("weight", justify="right")
    paid = sorted(((w, n) for n, w in report.weights.weights.items() if w > 0), reverse=True)
    for weight, name in paid[:WEIGHT_ROWS_SHOWN]:
        table.add_row(name, f"{weight:.6f}")
    if len(paid) > WEIGHT_ROWS_SHOWN:
        rest = sum(w for w, _ in paid[WEIGHT_ROWS_SHOWN:])
        table.add_row(f"{len(paid) - WEIGHT_ROWS_SHOWN} others", f"{rest:.6f}")
    table.add_row("[italic]undistributed[/italic]", f"{report.weights.undistributed:.6f}")
    console.print(table)


def print_simulation(console: Console, report: SimulationReport, show: int) -> None:
    replay, finished = report.replay, report.finished
    for played, decided in zip(replay.record.rounds, replay.rounds, strict=False):
        console.rule(f"round {played.plan.index + 1}: {played.plan.stage} ({len(played.matches)} matches)")
        if played.plan.stage == "group":
            _print_group_round(console, played, decided, show)
        else:
            _print_knockout_round(console, played, decided, show)
    if replay.boss is not None:
        console.rule("boss round")
        _print_boss(console, replay.boss)
    console.rule("result")
    console.print(f"champion: [bold]{finished.champion or 'none'}[/bold]  ({finished.reason})")  # a reason without one says "no winner"
    _print_weights(console, report)
