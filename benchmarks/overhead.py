"""Platform overhead per run: each run slot's time against the competitors' own script time.

Runs ``trainarena demo --json`` in a fresh data directory (reusing the built offline assets, so the
one-off build is not counted), then reads what the platform recorded: each run's ``timings.json``
(written by the pipeline and the orchestrator as they do each step) and the tournament's end from the
store. Definitions (docs/benchmarks.md#overhead):

- script time: the competitor's process tree from its start to its exit, as the sandbox measures it
  (the clock the budget runs on);
- slot time: a run slot's wall time from claiming a run to claiming its next one (for its last run:
  to the tournament's end), so every second a slot waits (for scores, for a round's last run) counts.

Prints the ratio slot time / script time (target <= 1.15 on the demo), the seconds each run spent
outside its script by step, and the load average while it ran (the machine is shared: the ratio is
measured within one run, so load hits both sides alike).

Usage: ``.venv/bin/python -m benchmarks.overhead [--parallel N] [--budget S] [--seed N] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainarena.runs import TIMINGS_FILE
from trainarena.settings import Settings
from trainarena.store import list_tournaments, open_store, tournament_runs

TARGET = 1.15
# Steps outside the script, in the order a run does them (keys of timings.json).
STEPS = {
    "prepare": "prepare (task data, inputs)",
    "sandbox": "sandbox start and stop",
    "artifact_check": "artifact checks",
    "eval_startup": "evaluation start-up",
    "eval_compute": "evaluation compute",
    "store": "store (report, record)",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1, help="The demo's tournament seed: its draw and tasks.")
    parser.add_argument("--json", action="store_true", help="Print the numbers as JSON.")
    parser.add_argument("--keep", type=Path, help="Play in this new folder and keep it (run folders, timings.json).")
    args = parser.parse_args()
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep}: the folder exists; name a new one")

    built = Settings().assets_dir
    subprocess.run([sys.executable, "-m", "trainarena.assets", str(built)], check=True, capture_output=True)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="trainarena-overhead-") as scratch:
        data = args.keep.resolve() if args.keep else Path(scratch)
        (data / "cache").mkdir(parents=True)
        (data / "cache" / "assets").symlink_to(built.resolve(), target_is_directory=True)
        env = os.environ | {"TRAINARENA_DATA_DIR": str(data)}
        command = [sys.executable, "-m", "trainarena.cli", "demo", "--json", "--parallel", str(args.parallel),
                   "--budget", str(args.budget), "--seed", str(args.seed)]
        started = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        board = json.loads(done.stdout)
        result = measure(Settings(data_dir=data), args.parallel)
    result |= {"demo_wall_seconds": round(wall, 1), "champion": board["champion"], "seed": args.seed, "parallel": args.parallel,
               "budget_seconds": args.budget, "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)]}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


def measure(settings: Settings, parallel: int) -> dict[str, Any]:
    """Slot time / script time and the per-step seconds, from the runs' timings and the store."""
    with open_store(settings) as store, store.session() as session:
        (tournament,) = list_tournaments(session)
        end = _unix(tournament.finished_at)
        folders = [settings.work_dir / f"tournament-{tournament.id}" / f"run-{run.id}" / f"attempt-{run.counted_attempt.number}"
                   for run in tournament_runs(session, tournament.id)]
    runs = [json.loads((folder / TIMINGS_FILE).read_text()) for folder in folders]
    first_claim = min(run["claimed_at"] for run in runs)
    slot_total = parallel * (end - first_claim)  # every slot's every second from the first claim to the end
    script_total = sum(run.get("script", 0.0) for run in runs)
    idle = [interval for slot in {run["slot"] for run in runs} for interval in _idle_intervals(runs, slot, first_claim, end)]
    training = [(run["claimed_at"], run["slot_freed_at"]) for run in runs]
    round_tail = sum(_overlap(interval, training) for interval in idle)
    steps = {step: sum(run.get(step, 0.0) for run in runs) for step in STEPS}
    return {
        "slot_over_script": round(slot_total / script_total, 3),
        "runs": len(runs),
        "slot_seconds": round(slot_total, 1),
        "script_seconds": round(script_total, 1),
        "slot_waiting_seconds": round(sum(b - a for a, b in idle), 1),
        # Waiting while another slot still ran a script: the round had no run left to claim.
        "slot_waiting_round_tail_seconds": round(round_tail, 1),
        "per_run_seconds": {step: round(total / len(runs), 2) for step, total in steps.items()},
        "scored_runs": sum("eval_compute" in run for run in runs),
    }


def _idle_intervals(runs: list[dict[str, Any]], slot: int, first_claim: float, end: float) -> list[tuple[float, float]]:
    """When ``slot`` held no run: before its first claim, and from each ``slot_freed_at`` to its next claim."""
    mine = sorted((run for run in runs if run["slot"] == slot), key=lambda run: run["claimed_at"])
    nexts = [run["claimed_at"] for run in mine[1:]] + [end]
    return [(first_claim, mine[0]["claimed_at"])] + [(run["slot_freed_at"], following) for run, following in zip(mine, nexts, strict=True)]


def _overlap(interval: tuple[float, float], others: list[tuple[float, float]]) -> float:
    """Seconds of ``interval`` covered by the union of ``others``."""
    start, stop = interval
    covered, reach = 0.0, start
    for a, b in sorted(others):
        a, b = max(a, reach), min(b, stop)
        if b > a:
            covered += b - a
            reach = b
    return covered


def _unix(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def print_table(result: dict[str, Any]) -> None:
    runs = result["runs"]
    print(f"demo (seed {result['seed']}): {runs} runs ({result['scored_runs']} scored), champion {result['champion']}, "
          f"{result['parallel']} slots, budget {result['budget_seconds']:g} s per run")
    print(f"load average {result['load_average'][0]} before, {result['load_average'][1]} after; "
          f"demo wall {result['demo_wall_seconds']} s")
    print(f"{'seconds outside the script, per run (mean)':<46}{'s':>8}")
    for step, label in STEPS.items():
        print(f"  {label:<44}{result['per_run_seconds'][step]:>8.2f}")
    print(f"{'script time (sum)':<46}{result['script_seconds']:>8.1f}")
    print(f"{'slot time (sum)':<46}{result['slot_seconds']:>8.1f}")
    print(f"  {'of which slots held no run':<44}{result['slot_waiting_seconds']:>8.1f}")
    print(f"    {'while another slot ran its last script':<42}{result['slot_waiting_round_tail_seconds']:>8.1f}")
    scores = result["slot_waiting_seconds"] - result["slot_waiting_round_tail_seconds"]
    print(f"    {'while the last scores and store were done':<42}{scores:>8.1f}")
    ratio = result["slot_over_script"]
    print(f"slot time / script time: {ratio:.3f}   (target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'})")


if __name__ == "__main__":
    raise SystemExit(main())
