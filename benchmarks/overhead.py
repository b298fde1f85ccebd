"""Platform overhead: the demo's wall time against the training budgets it granted.

Runs ``trainarena demo --json`` in a fresh data directory (reusing the built offline assets, so the
one-off build is not counted), then reads every run's granted budget from the store. Prints:

- wall / granted: the issue's ratio (target <= 1.2 on CPU);
- wall x parallel / granted: the same per run slot, which is the fairer measure when runs overlap;
- where the time beyond training went (sandboxed runs vs evaluation and the rest).

Usage: ``.venv/bin/python -m benchmarks.overhead [--parallel N] [--budget S]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trainarena.settings import Settings
from trainarena.store import list_tournaments, open_store, tournament_runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--budget", type=float, default=30.0)
    args = parser.parse_args()

    built = Settings().assets_dir
    subprocess.run([sys.executable, "-m", "trainarena.assets", str(built)], check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="trainarena-overhead-") as scratch:
        data = Path(scratch)
        (data / "cache").mkdir()
        (data / "cache" / "assets").symlink_to(built.resolve(), target_is_directory=True)
        env = os.environ | {"TRAINARENA_DATA_DIR": str(data)}
        command = [sys.executable, "-m", "trainarena.cli", "demo", "--json", "--parallel", str(args.parallel), "--budget", str(args.budget)]
        started = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        board = json.loads(done.stdout)
        settings = Settings(data_dir=data)
        with open_store(settings) as store, store.session() as session:
            runs = [run for t in list_tournaments(session) for run in tournament_runs(session, t.id)]
            granted = sum(float(run.task.definition["budget_seconds"]) for run in runs)
            in_sandbox = sum(run.wall_seconds or 0.0 for run in runs)

    print(f"demo: {len(runs)} runs, champion {board['champion']}, parallel {args.parallel}, budget {args.budget:g} s per run")
    print(f"{'measure':<44}{'seconds':>10}")
    print(f"{'wall time of the whole demo':<44}{wall:>10.1f}")
    print(f"{'training budgets granted (sum)':<44}{granted:>10.1f}")
    print(f"{'time spent inside sandboxes (sum)':<44}{in_sandbox:>10.1f}")
    print(f"ratio wall / granted:              {wall / granted:.3f}   (target <= 1.2)")
    print(f"ratio wall x parallel / granted:   {wall * args.parallel / granted:.3f}   (per run slot)")
    print(f"ratio sandbox time / granted:      {in_sandbox / granted:.3f}   (scripts finishing early < 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
